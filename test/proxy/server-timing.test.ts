import { describe, expect, it } from 'vitest';
import { validateHeaderValue } from 'node:http';
import { lastFlattenedFirst, serverTimingValue, withoutEdgeMetrics } from '../../src/proxy/server-timing.js';

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

describe('withoutEdgeMetrics', () => {
  it.each([
    // A function's forgery of the edge's metrics goes, in any case, with or without parameters.
    ['route;dur=0, upstream;dur=0', undefined],
    ['ROUTE', undefined],
    ['db;dur=53, Route ;dur=0.01, cache;desc="Cache Read";dur=23.2', 'db;dur=53, cache;desc="Cache Read";dur=23.2'],
    ['upstream;dur=1, app', 'app'],
    // A comma inside a quoted description does not split an entry, escapes included.
    ['db;desc="a, route;dur=0", route;dur=0', 'db;desc="a, route;dur=0"'],
    ['db;desc="q\\", route", route', 'db;desc="q\\", route"'],
    // The function's own metrics pass as they came, even with names that contain the edge's.
    ['db;dur=53, cache;desc="Cache Read";dur=23.2', 'db;dur=53, cache;desc="Cache Read";dur=23.2'],
    ['router;dur=1,upstreams;dur=2', 'router;dur=1,upstreams;dur=2'],
    ['total;desc="route, upstream"', 'total;desc="route, upstream"'],
  ])('%j → %j', (value, kept) => expect(withoutEdgeMetrics(value)).toBe(kept));
});
