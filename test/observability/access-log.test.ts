import { describe, expect, it } from 'vitest';
import { epochMsText, formatAccessLine, type AccessContext, type AccessOutcome } from '../../src/observability/access-log.js';
import { PIPE_BUF } from '../../src/observability/logger.js';

describe('formatAccessLine', () => {
  const ctx = {
    requestId: 'abc',
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    method: 'GET',
    host: 'echo-demo.telnyxcompute.com',
    path: '/a"b\\c\u2028',
    protocol: 'HTTP/1.1',
    fn: 'echo',
    org: 'demo',
    clientIp: '127.8.0.1',
    country: null,
    reason: 'failover:fra-down',
    routeMs: 0.123456,
  };
  const out = { region: 'nyc', tried: ['fra', 'nyc'], status: 200, error: null, bytesIn: 0, bytesOut: 42, upstreamMs: 1.5, totalMs: 2.0004 };

  it('writes one JSON line in pino shape, escaping what needs escaping', () => {
    const line = formatAccessLine(ctx, out, 1_800_000_000_000, 42);
    expect(line.endsWith('}\n')).toBe(true);
    expect(line.split('\n')).toHaveLength(2);
    expect(JSON.parse(line)).toEqual({
      level: 30,
      time: 1_800_000_000_000,
      pid: 42,
      log: 'access',
      ...ctx,
      routeMs: 0.123,
      ...out,
      totalMs: 2,
      attempts: 2,
    });
  });

  it.each([
    [0, '0.000'],
    [0.0004, '0.000'],
    [0.0005, '0.001'],
    [0.123456, '0.123'],
    [2.0004, '2.000'],
    [12345.6789, '12345.679'],
    [2_000_000, '2000000.000'],
    [3_000_000, '3000000.000'],
    [5e9, '5000000000.000'],
    [-1.5, '-1.500'],
  ])('writes the duration %d ms as %s', (totalMs, text) => {
    const line = formatAccessLine(ctx, { ...out, totalMs }, 0, 1);
    expect(line).toContain(`"totalMs":${text}}`);
    expect((JSON.parse(line) as { totalMs: number }).totalMs).toBe(Number(text));
  });

  it('carries the time and pid it is given on every line, as both change between lines', () => {
    const times = [1_800_000_000_000, 1_800_000_000_000, 1_800_000_000_001, 1_800_000_000_001, 1_800_000_000_000];
    const pids = [42, 42, 42, 43, 43];
    const lines = times.map((time, i) => JSON.parse(formatAccessLine(ctx, out, time, pids[i]!)) as { time: number; pid: number });
    expect(lines.map((l) => [l.time, l.pid])).toEqual(times.map((t, i) => [t, pids[i]]));
  });

  it('writes any time as String does: whole milliseconds in and out of the same second, and what a clock never gives', () => {
    const times = [1_800_000_000_000, 1_800_000_000_007, 1_800_000_000_999, 1_800_000_001_050, 1_799_999_999_999, 1_000, 999, 5, 0, -1, -1_500, 1_800_000_000_000.5, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER - 1, 2 ** 53 + 2, 1e21, NaN, Infinity];
    for (const time of times) expect(epochMsText(time)).toBe(String(time));
    expect(formatAccessLine(ctx, out, 1_800_000_000_042, 1)).toContain('"time":1800000000042,');
  });

  it('writes each line from its own values when consecutive lines repeat all but one of them (runs of fields are reused only while all repeat)', () => {
    const one: AccessOutcome = { ...out, region: 'fra', tried: ['fra'] };
    // Each step changes one value of the line's reused runs, then the next puts it back.
    const steps: [Partial<AccessContext>, Partial<AccessOutcome>][] = [
      [{}, {}],
      [{}, {}],
      [{ method: 'POST' }, {}],
      [{ host: ['echo-demo.telnyxcompute', '.com'].join('') }, {}],
      [{ host: 'other.telnyxcompute.com' }, {}],
      [{ path: '/other' }, {}],
      [{ path: 'p'.repeat(2_000) }, {}],
      [{ protocol: 'HTTP/2.0' }, {}],
      [{ fn: null, org: null }, {}],
      [{ fn: 'echo', org: 'other' }, {}],
      [{ clientIp: '::1' }, {}],
      [{ country: 'DE' }, {}],
      [{ reason: 'nearest' }, {}],
      [{}, { route: 'spill:fra-soft-limit' }],
      [{}, { region: null }],
      [{}, { tried: ['nyc'] }],
      [{}, { status: 502 }],
      [{}, { error: 'upstream_unavailable' }],
      [{}, { tried: [], region: null }],
      [{}, { tried: ['fra', 'nyc'], region: 'nyc' }],
      [{}, {}],
    ];
    for (const [ctxChange, outChange] of steps) {
      const context: AccessContext = { ...ctx, ...ctxChange };
      const outcome: AccessOutcome = { ...one, ...outChange };
      const line = JSON.parse(formatAccessLine(context, outcome, 1_800_000_000_000, 42)) as Record<string, unknown>;
      const { route, ...logged } = outcome;
      expect(line).toMatchObject({ ...context, path: context.path.length > 1_024 ? `${context.path.slice(0, 1_023)}\u2026` : context.path, routeMs: 0.123, ...logged, totalMs: 2, attempts: outcome.tried.length, reason: route ?? context.reason });
    }
  });

  it('writes only its chosen fields: headers, cookies and tokens riding along in the context never reach the log', () => {
    const secret = 'Bearer s3cr3t-token';
    const carrying = { ...ctx, headers: { authorization: secret, cookie: 'session=abc' }, authorization: secret, cookie: 'session=abc' };
    const line = formatAccessLine(carrying, out, 0, 1);
    expect(line).not.toContain('s3cr3t');
    expect(line).not.toContain('session=abc');
    expect(Object.keys(JSON.parse(line))).toEqual(Object.keys(JSON.parse(formatAccessLine(ctx, out, 0, 1))));
  });

  it('escapes a value every time it needs it, however the lines before it went (each field remembers its last plain value)', () => {
    // Plain, awkward, plain again, the same awkward again, an equal copy of the plain one, an empty one.
    const sequence = ['echo.example', 'a"b', 'echo.example', 'a"b', ['echo', '.example'].join(''), '', 'nul\u0000', ''];
    for (const value of sequence) {
      const line = formatAccessLine(
        { ...ctx, method: value, host: value, path: value, protocol: value, fn: value, org: value, clientIp: value, country: value, reason: value },
        { ...out, region: value, tried: [value, value], error: value, hedgedTo: value },
        0,
        1,
      );
      const parsed = JSON.parse(line) as Record<string, unknown>;
      for (const field of ['method', 'host', 'path', 'protocol', 'fn', 'org', 'clientIp', 'country', 'region', 'reason', 'error', 'hedgedTo']) {
        expect(parsed[field], `${field} of ${JSON.stringify(value)}`).toBe(value);
      }
      expect(parsed.tried).toEqual([value, value]);
      expect(line.split('\n')).toHaveLength(2);
    }
  });

  it('escapes exactly as JSON.stringify does, whatever the client put in the host or path', () => {
    const awkward = ['plain', '', 'quote"', 'back\\slash', 'tab\there', 'nul\u0000', 'del\u007f', 'é and ü', '\u2028', '😀', 'lone \ud83d half', 'half \ude00 too'];
    for (const value of awkward) {
      const line = formatAccessLine({ ...ctx, host: value, path: value, country: value }, { ...out, tried: [value], error: value }, 0, 1);
      expect(line).toContain(`"host":${JSON.stringify(value)},"path":${JSON.stringify(value)}`);
      expect(line).toContain(`"country":${JSON.stringify(value)}`);
      const parsed = JSON.parse(line) as { host: string; path: string; tried: string[]; error: string };
      for (const field of [parsed.host, parsed.path, parsed.tried[0], parsed.error]) expect(field).toBe(JSON.parse(JSON.stringify(value)));
    }
  });
  it('escapes what needs it at any length and in any field, ids included', () => {
    const awkward = ['"', '\\', '\u0000', '\u001f', '\ud83d', '\ude00', '\n'];
    for (const length of [1, 32, 63, 64, 65, 200]) {
      for (const bad of awkward) {
        for (const value of ['x'.repeat(length), 'x'.repeat(length - 1) + bad, bad + 'x'.repeat(length - 1)]) {
          const line = formatAccessLine({ ...ctx, requestId: value, traceId: value, clientIp: value }, out, 0, 1);
          const parsed = JSON.parse(line) as { requestId: string; traceId: string; clientIp: string };
          expect([parsed.requestId, parsed.traceId, parsed.clientIp]).toEqual(Array(3).fill(JSON.parse(JSON.stringify(value))));
          expect(line).toContain(`"requestId":${JSON.stringify(value)}`);
        }
      }
    }
  });

  it('keeps a line within PIPE_BUF however long the Host, path and method a client sends, saying how long each was', () => {
    // Node takes a request head up to --max-header-size (16 KiB by default) and reads its bytes as
    // Latin-1: 'é' is one character there and two bytes in the UTF-8 log. A line past PIPE_BUF is
    // no longer one atomic write to the pipe the workers share: another worker's lines can land
    // inside it (and Docker and the kubelet cut lines past 16 KiB in two).
    const long = { host: `${'é'.repeat(8_000)}.example`, path: `/${'é'.repeat(16_000)}`, method: 'M'.repeat(16_000) };
    const widest = {
      ...ctx,
      ...long,
      requestId: 'r'.repeat(128),
      fn: 'f'.repeat(120),
      org: 'o'.repeat(120),
      clientIp: 'ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255',
      reason: 'failover:fra-down',
    };
    const line = formatAccessLine(widest, { ...out, tried: ['atl', 'nyc', 'lax', 'fra', 'syd'], hedgedTo: 'nyc' }, 1_800_000_000_000, 4_194_304);
    expect(Buffer.byteLength(line)).toBeLessThanOrEqual(PIPE_BUF);
    const parsed = JSON.parse(line) as Record<string, unknown>;
    for (const field of ['host', 'path', 'method'] as const) {
      const logged = parsed[field] as string;
      expect(logged.endsWith('…'), field).toBe(true);
      expect(long[field].startsWith(logged.slice(0, -1)), field).toBe(true);
      expect(parsed[`${field}Length`], field).toBe(long[field].length);
    }
    // What fits is logged whole, with no length beside it.
    const fits = JSON.parse(formatAccessLine({ ...ctx, host: 'h'.repeat(253), path: `/${'p'.repeat(1_000)}` }, out, 0, 1)) as Record<string, unknown>;
    expect(fits.host).toBe('h'.repeat(253));
    expect(fits.path).toBe(`/${'p'.repeat(1_000)}`);
    expect(Object.keys(fits).filter((k) => k.endsWith('Length'))).toEqual([]);
  });

  it('never cuts a character in two when it shortens a value', () => {
    const path = `/${'😀'.repeat(4_000)}`;
    const parsed = JSON.parse(formatAccessLine({ ...ctx, path }, out, 0, 1)) as { path: string };
    expect(parsed.path.endsWith('😀…')).toBe(true);
    expect(/[\ud800-\udbff](?![\udc00-\udfff])/.test(parsed.path)).toBe(false);
  });
});
