import { describe, expect, it } from 'vitest';
import { resolveHost } from '../../src/routing/hostname.js';

const ZONE = 'telnyxcompute.com';

describe('resolveHost', () => {
  it.each([
    ['my-function-abc123.telnyxcompute.com', 'my-function', 'abc123'],
    ['echo-demo.telnyxcompute.com', 'echo', 'demo'],
    ['a-b-c-d-e-1.telnyxcompute.com', 'a-b-c-d-e', '1'],
    ['MY-Function-ABC123.TelnyxCompute.COM', 'my-function', 'abc123'],
    ['echo-demo.telnyxcompute.com.', 'echo', 'demo'],
    ['echo-demo.telnyxcompute.com:8443', 'echo', 'demo'],
    ['echo-demo.telnyxcompute.com.:443', 'echo', 'demo'],
    [`${'f'.repeat(56)}-org123.telnyxcompute.com`, 'f'.repeat(56), 'org123'],
  ])('resolves %s to fn %s, org %s', (host, fn, org) => {
    expect(resolveHost(host, ZONE)).toMatchObject({ ok: true, fn, org, customDomain: false });
  });

  it.each([
    ['', 'empty_host'],
    [':8443', 'empty_host'],
    ['.', 'empty_host'],
    ['127.0.0.1', 'ip_literal'],
    ['127.0.0.1:8443', 'ip_literal'],
    ['[::1]:8443', 'ip_literal'],
    ['[2001:db8::1]', 'ip_literal'],
    ['2001:db8::1', 'ip_literal'],
    ['echo-demo.example.com', 'host_outside_zone'],
    ['echo-demo.nottelnyxcompute.com', 'host_outside_zone'],
    ['telnyxcompute.com.evil.com', 'host_outside_zone'],
    ['localhost', 'host_outside_zone'],
    ['telnyxcompute.com', 'missing_function'],
    ['a.echo-demo.telnyxcompute.com', 'nested_subdomain'],
    ['www.my-fn-abc.telnyxcompute.com', 'nested_subdomain'],
    [`${'f'.repeat(60)}-abcd.telnyxcompute.com`, 'label_too_long'],
    ['my_fn-abc.telnyxcompute.com', 'invalid_characters'],
    ['my fn-abc.telnyxcompute.com', 'invalid_characters'],
    ['bücher-abc.telnyxcompute.com', 'invalid_characters'],
    // KELVIN SIGN (U+212A) lower-cases to an ASCII "k": the name must not pass as kecho-demo.
    ['\u212Aecho-demo.telnyxcompute.com', 'invalid_characters'],
    ['echo-demo.telnyxcompute.com:http', 'invalid_port'],
    ['echo-demo.telnyxcompute.com:99999', 'invalid_port'],
    ['echo-demo.telnyxcompute.com:', 'invalid_port'],
    ['user@echo-demo.telnyxcompute.com:1:2', 'invalid_characters'],
    ['echo.telnyxcompute.com', 'missing_org'],
    ['echo-.telnyxcompute.com', 'missing_org'],
    ['-abc123.telnyxcompute.com', 'missing_function'],
    ['-my-fn-abc.telnyxcompute.com', 'invalid_hyphen'],
    ['my--abc.telnyxcompute.com', 'invalid_hyphen'],
  ])('rejects %j with %s', (host, code) => {
    const result = resolveHost(host, ZONE);
    expect(result).toMatchObject({ ok: false, code });
    if (!result.ok) expect(result.message).not.toBe('');
  });

  it('rejects a user@host authority as characters outside the label alphabet', () => {
    expect(resolveHost('user@echo-demo.telnyxcompute.com', ZONE)).toMatchObject({ ok: false, code: 'invalid_characters' });
  });

  it('consults custom domains first, case-insensitively and without port or trailing dot', () => {
    const domains = new Map([['api.example.com', { fn: 'checkout', org: 'acme1' }]]);
    expect(resolveHost('API.Example.com.:443', ZONE, domains)).toEqual({
      ok: true,
      host: 'api.example.com',
      fn: 'checkout',
      org: 'acme1',
      customDomain: true,
    });
  });

  it('does not match a custom domain through a non-ASCII letter that lower-cases to ASCII', () => {
    const domains = new Map([['shop.kiosk.example', { fn: 'checkout', org: 'acme1' }]]);
    expect(resolveHost('shop.\u212Aiosk.example', ZONE, domains)).toMatchObject({ ok: false, code: 'invalid_characters' });
  });

  it('lets a custom domain inside the zone override the naming rule', () => {
    const domains = new Map([['www.telnyxcompute.com', { fn: 'site', org: 'telnyx' }]]);
    expect(resolveHost('www.telnyxcompute.com', ZONE, domains)).toMatchObject({ ok: true, fn: 'site', org: 'telnyx' });
  });

  it('works with another zone', () => {
    expect(resolveHost('echo-demo.edge.test', 'edge.test')).toMatchObject({ ok: true, fn: 'echo', org: 'demo' });
    expect(resolveHost('echo-demo.telnyxcompute.com', 'edge.test')).toMatchObject({ ok: false, code: 'host_outside_zone' });
  });
});
