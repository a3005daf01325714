import { describe, expect, it } from 'vitest';
import { pathWithoutQuery, protocolOf } from '../../src/ingress/request-context.js';

describe('request context', () => {
  it.each([
    [1, 1, '1.1', 'HTTP/1.1'],
    [1, 0, '1.0', 'HTTP/1.0'],
    [2, 0, '2.0', 'HTTP/2.0'],
    [0, 9, '0.9', 'HTTP/0.9'],
    [3, 0, '3.0', 'HTTP/3.0'],
  ])('names HTTP %d.%d as %s → %s', (httpVersionMajor, httpVersionMinor, httpVersion, protocol) => {
    expect(protocolOf({ httpVersionMajor, httpVersionMinor, httpVersion })).toBe(protocol);
  });

  it.each([
    ['/a?b=1', '/a'],
    ['/a', '/a'],
    ['?x', ''],
    ['', ''],
  ])('logs %j without its query as %j', (path, logged) => expect(pathWithoutQuery(path)).toBe(logged));
});
