import { describe, expect, it } from 'vitest';
import { httpsRedirectLocation } from '../../src/ingress/https-redirect.js';

describe('httpsRedirectLocation', () => {
  it.each([
    ['Fn-Org.Example.com', '/a?b=1', 443, 'https://fn-org.example.com/a?b=1'],
    ['fn-org.example.com:80', '/', 8443, 'https://fn-org.example.com:8443/'],
    // Latin-1 above ASCII is what Node reads a raw UTF-8 byte as, and writes back the same.
    ['fn-org.example.com', '/caf\u00c3\u00a9', 443, 'https://fn-org.example.com/caf\u00c3\u00a9'],
  ])('sends %s %s to HTTPS port %i', (host, path, port, location) => {
    expect(httpsRedirectLocation(host, path, port)).toBe(location);
  });

  it.each([
    ['a Host that is no DNS name', 'bad_host!', '/', 443],
    ['an IP literal in brackets', '[::1]', '/', 443],
    ['no HTTPS listener', 'fn-org.example.com', '/', 0],
    ['an absolute-form target', 'fn-org.example.com', 'http://evil.example/', 443],
    ['a path starting with //', 'fn-org.example.com', '//evil.example/', 443],
    // Node's header check refuses these: writeHead threw, from inside a request event.
    ['a form feed in the path', 'fn-org.example.com', '/a\fb', 443],
    ['a line feed', 'fn-org.example.com', '/a\nLocation: x', 443],
    ['DEL', 'fn-org.example.com', '/a\x7f', 443],
    // Node would write these, but no URL holds them raw.
    ['a tab in the query', 'fn-org.example.com', '/a?\tb', 443],
    ['a space', 'fn-org.example.com', '/a b', 443],
  ])('gives none for %s', (_name, host, path, port) => {
    expect(httpsRedirectLocation(host, path, port)).toBeNull();
  });
});
