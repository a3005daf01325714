import { describe, expect, it } from 'vitest';
import { portOf, requestTarget, type TargetInput } from '../../src/ingress/request-target.js';

const h1 = (url: string, ...hosts: string[]): TargetInput => ({ httpVersionMajor: 1, url, rawHeaders: hosts.flatMap((h) => ['Host', h]), authority: undefined });
const h2 = (url: string, authority: string | undefined, host?: string): TargetInput => ({ httpVersionMajor: 2, url, rawHeaders: host === undefined ? [] : ['host', host], authority });

describe('requestTarget', () => {
  it.each([
    ['origin-form path', h1('/a?b=1', 'fn-org.example.com'), { ok: true, host: 'fn-org.example.com', path: '/a?b=1' }],
    ['absolute-form agreeing with Host', h1('https://fn-org.example.com/x?y', 'fn-org.example.com'), { ok: true, host: 'fn-org.example.com', path: '/x?y' }],
    // RFC 9112 §3.2.2: the target's authority is the request's host, its scheme's default port left out.
    ['absolute-form, Host with the default port', h1('http://fn-org.example.com/x', 'fn-org.example.com:80'), { ok: true, host: 'fn-org.example.com', path: '/x' }],
    ['absolute-form https, Host with its default port', h1('https://fn-org.example.com/x', 'fn-org.example.com:443'), { ok: true, host: 'fn-org.example.com', path: '/x' }],
    ['absolute-form with another port, Host the same', h1('https://fn-org.example.com:8443/x', 'FN-org.example.com:8443'), { ok: true, host: 'fn-org.example.com:8443', path: '/x' }],
    ['absolute-form with the scheme in capitals (schemes are case-insensitive)', h1('HTTP://fn-org.example.com/x', 'fn-org.example.com'), { ok: true, host: 'fn-org.example.com', path: '/x' }],
    ['HTTP/1.0 absolute-form without Host', { ...h1('http://fn-org.example.com/x'), httpVersionMinor: 0 }, { ok: true, host: 'fn-org.example.com', path: '/x' }],
    // The path and query as written, as the origin form's: not resolved, not re-escaped by a URL parser.
    ['absolute-form path and query as sent', h1("http://fn-org.example.com/a/%2e%2e/b/../c?q=it's^", 'fn-org.example.com'), { ok: true, host: 'fn-org.example.com', path: "/a/%2e%2e/b/../c?q=it's^" }],
    ['absolute-form with dot segments ending in //, as the origin form passes it', h1('http://fn-org.example.com/x/..//evil.example/x', 'fn-org.example.com'), { ok: true, host: 'fn-org.example.com', path: '/x/..//evil.example/x' }],
    ['absolute-form with an empty query', h1('http://fn-org.example.com/x?', 'fn-org.example.com'), { ok: true, host: 'fn-org.example.com', path: '/x?' }],
    // RFC 9112 §3.2.1: an empty path goes as /.
    ['absolute-form without a path', h1('http://fn-org.example.com', 'fn-org.example.com'), { ok: true, host: 'fn-org.example.com', path: '/' }],
    ['absolute-form with a query and no path', h1('https://fn-org.example.com:8443?q=1', 'fn-org.example.com:8443'), { ok: true, host: 'fn-org.example.com:8443', path: '/?q=1' }],
    ['HTTP/2 :authority', h2('/p', 'fn-org.example.com'), { ok: true, host: 'fn-org.example.com', path: '/p' }],
    ['HTTP/2 :authority and an agreeing host (any case)', h2('/p', 'FN-org.example.com', 'fn-org.example.com'), { ok: true, host: 'FN-org.example.com', path: '/p' }],
    ['HTTP/2 host only', h2('/p', undefined, 'fn-org.example.com'), { ok: true, host: 'fn-org.example.com', path: '/p' }],
    // RFC 9113 §8.3.1 refuses only a host naming another site: HTTPS's default port and a trailing dot name the same one.
    ['HTTP/2 :authority with HTTPS\'s default port, host without', h2('/p', 'fn-org.example.com:443', 'fn-org.example.com'), { ok: true, host: 'fn-org.example.com:443', path: '/p' }],
    ['HTTP/2 host with a trailing dot', h2('/p', 'fn-org.example.com', 'Fn-org.example.com.'), { ok: true, host: 'fn-org.example.com', path: '/p' }],
    // Percent-encoded, a '#' is data: passed on as sent.
    ['an encoded # in the path and query', h1('/a%23b?c=%23', 'fn-org.example.com'), { ok: true, host: 'fn-org.example.com', path: '/a%23b?c=%23' }],
  ])('accepts %s', (_name, input, expected) => {
    expect(requestTarget(input)).toEqual(expected);
  });

  it.each([
    ['two Host headers', h1('/', 'a.example.com', 'b.example.com'), 'more than one Host header'],
    ['no Host', h1('/'), 'the request has no Host'],
    ['an empty Host', h1('/', ''), 'the request has no Host'],
    ['user information in Host', h1('/', 'user@fn-org.example.com'), 'the Host must not carry user information'],
    ['a path starting with //', h1('//evil.example/x', 'fn-org.example.com'), 'the path must not start with //'],
    ['a path starting with /\\ (a slash, to a URL parser)', h1('/\\evil.example/x', 'fn-org.example.com'), 'the path must not start with /\\'],
    ['an HTTP/2 path starting with /\\', h2('/\\evil.example/x', 'fn-org.example.com'), 'the path must not start with /\\'],
    // nghttp2 lets one through under a :scheme other than http(s).
    ['an HTTP/2 :path that is an absolute URL', h2('https://fn-org.example.com/x', 'fn-org.example.com'), 'an HTTP/2 :path must be a path, not an absolute URL'],
    ['an absolute target whose path starts with //', h1('http://fn-org.example.com//evil.example/x', 'fn-org.example.com'), 'the path must not start with //'],
    ['an absolute target with a back slash ending its host (a slash to a URL parser)', h1('http://fn-org.example.com\\evil.example/x', 'fn-org.example.com'), 'the absolute request target must not carry a back slash in its host'],
    ['an absolute target naming another host', h1('https://evil.example/x', 'fn-org.example.com'), 'the absolute request target names another host than Host'],
    ['user information in the target', h1('https://u:p@fn-org.example.com/x', 'fn-org.example.com'), 'the request target must not carry user information'],
    ['an invalid absolute URL', h1('http://[bad/x', 'fn-org.example.com'), 'the absolute request target is not a valid URL'],
    ['an asterisk-form target', h1('*', 'fn-org.example.com'), 'an asterisk-form target (OPTIONS *) asks about no function: name one by its path'],
    ['an https target with Host on port 80 (the port does not default for https)', h1('https://fn-org.example.com/x', 'fn-org.example.com:80'), 'the absolute request target names another host than Host'],
    ['an http target with Host on port 443', h1('http://fn-org.example.com/x', 'fn-org.example.com:443'), 'the absolute request target names another host than Host'],
    ['HTTP/1.1 absolute-form without Host (required in 1.1)', { ...h1('http://fn-org.example.com/x'), httpVersionMinor: 1 }, 'the request has no Host'],
    ['an HTTP/1.0 absolute target that is no URL, without Host', { ...h1('http://[bad/x'), httpVersionMinor: 0 }, 'the absolute request target is not a valid URL'],
    ['an HTTP/1.0 absolute target with a fragment, without Host', { ...h1('http://fn-org.example.com/a#x'), httpVersionMinor: 0 }, 'the request target must not carry a fragment (#)'],
    ['an authority-form target', h1('fn-org.example.com:443', 'fn-org.example.com'), 'the request target must be a path or an absolute http(s) URL'],
    ['HTTP/2 host differing from :authority', h2('/p', 'a.example.com', 'b.example.com'), 'the host header differs from :authority'],
    ['HTTP/2 host on another port than :authority', h2('/p', 'a.example.com:8443', 'a.example.com'), 'the host header differs from :authority'],
    // RFC 9112 §3.2: a request-target carries no fragment (it stays with the client); Envoy refuses one too.
    ['a fragment in the path', h1('/a#frag', 'fn-org.example.com'), 'the request target must not carry a fragment (#)'],
    ['a fragment after a query', h1('/a?b=1#frag', 'fn-org.example.com'), 'the request target must not carry a fragment (#)'],
    ['an empty fragment', h1('/a#', 'fn-org.example.com'), 'the request target must not carry a fragment (#)'],
    ['an HTTP/2 :path with a fragment', h2('/a#frag', 'fn-org.example.com'), 'the request target must not carry a fragment (#)'],
    // new URL() would drop it silently, forwarding /x: refused as the origin form is.
    ['an absolute target with a fragment', h1('http://fn-org.example.com/x#frag', 'fn-org.example.com'), 'the request target must not carry a fragment (#)'],
  ])('refuses %s', (_name, input, message) => {
    expect(requestTarget(input)).toEqual({ ok: false, message });
  });
});

describe('portOf', () => {
  it.each([
    ['fn-org.example.com:8443', ':8443'],
    ['fn-org.example.com', ''],
    ['Name.Example.:443', ':443'],
  ])('%s → %j', (host, port) => expect(portOf(host)).toBe(port));
});
