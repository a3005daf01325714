import { describe, expect, it } from 'vitest';
import { ConfigError, EdgeError, ERROR_CATALOGUE, GeoDatabaseError, UsageError, describeError, exitCodeOf, statusOf, thrownText, type ErrorCode } from '../../src/core/errors.js';
import { rawErrorReply } from '../../src/ingress/error-response.js';

const listenError = (code: string, port: number) => Object.assign(new Error(`listen ${code}`), { code, syscall: 'listen', address: '127.0.0.1', port });

describe('the error catalogue', () => {
  it.each([
    ['function_not_found', 404, 2],
    ['misdirected_request', 421, 2],
    ['capacity_exhausted', 503, 2],
    ['upstream_timeout', 504, 2],
    ['headers_too_large', 431, 2],
    ['unauthorized', 401, 2],
    ['internal_error', 500, 1],
  ] as const)('%s → HTTP %i, exit %i', (code, status, exit) => {
    expect(statusOf(code)).toBe(status);
    expect(exitCodeOf(code)).toBe(exit);
  });

  it('gives every code a status in the HTTP error range, and only faults exit 1 or hide their message', () => {
    for (const [code, entry] of Object.entries(ERROR_CATALOGUE)) {
      expect(entry.status, code).toBeGreaterThanOrEqual(400);
      expect(entry.status, code).toBeLessThan(600);
      expect(entry.exitCode === 1, code).toBe(!entry.expose);
    }
  });

  it.each<[string, unknown, { code: ErrorCode; message: string; exitCode: 1 | 2 }]>([
    ['a usage error', new UsageError('--workers: expected a whole number'), { code: 'usage', message: '--workers: expected a whole number', exitCode: 2 }],
    ['a configuration error', new ConfigError('regions.json: regions.0.lat: expected a number'), { code: 'configuration', message: 'regions.json: regions.0.lat: expected a number', exitCode: 2 }],
    ['a GeoIP database error', new GeoDatabaseError('geo/x.mmdb', 'not a MaxMind DB'), { code: 'geoip_database', message: 'geo/x.mmdb: not a MaxMind DB', exitCode: 2 }],
    ['a port in use', listenError('EADDRINUSE', 8443), { code: 'address_in_use', message: '127.0.0.1:8443 is already in use (another edge-router, or another program)', exitCode: 2 }],
    // What a node:cluster worker gets: the primary binds for it, and reports the failure as `bind`.
    ['a port in use, from a cluster worker', Object.assign(new Error('bind EADDRINUSE 0.0.0.0:8443'), { code: 'EADDRINUSE', syscall: 'bind', address: '0.0.0.0', port: 8443 }), { code: 'address_in_use', message: '0.0.0.0:8443 is already in use (another edge-router, or another program)', exitCode: 2 }],
    ['a port in use on an IPv6 address', Object.assign(new Error('listen EADDRINUSE ::1:8443'), { code: 'EADDRINUSE', syscall: 'listen', address: '::1', port: 8443 }), { code: 'address_in_use', message: '[::1]:8443 is already in use (another edge-router, or another program)', exitCode: 2 }],
    ['a privileged port, from a cluster worker', Object.assign(new Error('bind EACCES 0.0.0.0:443'), { code: 'EACCES', syscall: 'bind', address: '0.0.0.0', port: 443 }), { code: 'address_not_permitted', message: '0.0.0.0:443 may not be bound by this user (ports below 1024 need privileges)', exitCode: 2 }],
    ['an address not on this host', listenError('EADDRNOTAVAIL', 8443), { code: 'address_not_available', message: '127.0.0.1:8443 is not an address of this host (check --bind / --admin-host)', exitCode: 2 }],
    ['a privileged port', listenError('EACCES', 443), { code: 'address_not_permitted', message: '127.0.0.1:443 may not be bound by this user (ports below 1024 need privileges)', exitCode: 2 }],
    ['EACCES reading a file (not a port)', Object.assign(new Error('open /root/x'), { code: 'EACCES', syscall: 'open' }), { code: 'internal_error', message: 'internal error', exitCode: 1 }],
    ['a bug', new TypeError('cannot read properties of undefined (reading "region")'), { code: 'internal_error', message: 'internal error', exitCode: 1 }],
    ['a thrown string', 'boom', { code: 'internal_error', message: 'internal error', exitCode: 1 }],
    ['an internal EdgeError', new EdgeError('internal_error', 'pool for 10.0.0.7 is broken'), { code: 'internal_error', message: 'internal error', exitCode: 1 }],
  ])('describes %s', (_what, err, expected) => {
    expect(describeError(err)).toEqual({ ...expected, status: statusOf(expected.code) });
  });
});

describe('rawErrorReply', () => {
  it('is a whole HTTP/1.1 answer whose length header matches its JSON body, closing the connection', () => {
    const reply = rawErrorReply('headers_too_large', 'the request head is too large', null);
    const [head, body] = reply.split('\r\n\r\n') as [string, string];
    const lines = head.split('\r\n');
    expect(lines[0]).toBe('HTTP/1.1 431 headers too large');
    expect(lines).toContain(`content-length: ${Buffer.byteLength(body)}`);
    expect(lines).toContain('connection: close');
    expect(lines.some((l) => l.startsWith('x-request-id'))).toBe(false);
    // RFC 9110 §6.6.1: dated, as every answer Node writes.
    const date = lines.find((l) => l.startsWith('date: '))!.slice('date: '.length);
    expect(date).toMatch(/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
    expect(Math.abs(Date.parse(date) - Date.now())).toBeLessThan(60_000);
    expect(JSON.parse(body)).toEqual({ error: { code: 'headers_too_large', message: 'the request head is too large', requestId: '-' } });
  });

  it('names the protocol a 426 asks for (RFC 9110 §15.5.22), among the connection options as well', () => {
    const lines = rawErrorReply('upgrade_required', 'upgrades (WebSocket) are served over HTTPS only', null).split('\r\n\r\n')[0]!.split('\r\n');
    expect(lines[0]).toBe('HTTP/1.1 426 upgrade required');
    expect(lines).toContain('upgrade: TLS/1.2, HTTP/1.1');
    expect(lines).toContain('connection: Upgrade, close');
    expect(lines.filter((l) => l.startsWith('connection:'))).toHaveLength(1);
  });

  it('names the request id when there is one', () => {
    const reply = rawErrorReply('function_not_found', 'no function api in org acme', 'r-1');
    expect(reply.startsWith('HTTP/1.1 404 function not found\r\n')).toBe(true);
    expect(reply).toContain('\r\nx-request-id: r-1\r\n');
    expect(JSON.parse(reply.split('\r\n\r\n')[1]!).error.requestId).toBe('r-1');
  });
});

describe('thrownText', () => {
  it('turns anything thrown into text, also what String() itself throws on', () => {
    expect(thrownText(new Error('boom'))).toBe('boom');
    expect(thrownText('plain')).toBe('plain');
    expect(thrownText(42)).toBe('42');
    expect(thrownText(Object.create(null))).toBe('[object Object]');
    expect(thrownText({ toString: () => { throw new Error('no'); } })).toBe('[object Object]');
  });
});
