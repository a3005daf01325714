import { describe, expect, it } from 'vitest';
import { pathWithoutQuery, protocolOf, unroutedPathOf } from '../../src/ingress/request-context.js';

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

  it.each([
    // A target nobody routed is logged as sent, but without an absolute-form target's scheme and
    // authority: its user information is the client's credentials.
    ['http://user:secret@echo-demo.telnyxcompute.com/a?token=1', '/'],
    ['HTTPS://user:secret@echo-demo.telnyxcompute.com', '/'],
    ['http://user:secret@echo-demo.telnyxcompute.com?token=1', '/'],
    ['http://echo-demo.telnyxcompute.com/a?token=1', '/a'],
    ['HTTP://echo-demo.telnyxcompute.com?token=1', '/'],
    ['ws://h/x/y', '/x/y'],
    // An @ before the query: where the authority ends is not to be trusted (a / in the password).
    ['http://user:pa/ss@host/x', '/'],
    ['ws://u:p@h/x/y', '/'],
    // Origin-form, asterisk-form and authority-form are left as they are (without the query).
    ['/a?b=1', '/a'],
    ['/x/http://u:p@h/', '/x/http://u:p@h/'],
    ['*', '*'],
    ['echo-demo.telnyxcompute.com:443', 'echo-demo.telnyxcompute.com:443'],
  ])('logs the unrouted target %j as %j', (target, logged) => {
    expect(unroutedPathOf(target)).toBe(logged);
  });
});
