import { describe, expect, it } from 'vitest';
import { validateHeaderValue } from 'node:http';
import { lastFlattenedFirst, serverTimingValue } from '../../src/proxy/server-timing.js';

describe('serverTimingValue', () => {
  it('gives the route and upstream durations with two decimals each, as the router always sent them', () => {
    expect(serverTimingValue(0.004, 1.23456)).toBe('route;dur=0.00, upstream;dur=1.23');
    expect(serverTimingValue(0.125, 12)).toBe('route;dur=0.13, upstream;dur=12.00');
    expect(serverTimingValue(2.999, 1234.005)).toBe('route;dur=3.00, upstream;dur=1234.01');
  });

  it('makes a value Node accepts in a head, having read its first character', () => {
    for (const [route, upstream] of [[0, 0], [0.51, 7.5], [33.3, 90_000]] as const) {
      const value = serverTimingValue(route, upstream);
      expect(() => validateHeaderValue('server-timing', value)).not.toThrow();
      expect(lastFlattenedFirst()).toBe('r'.charCodeAt(0));
    }
  });
});
