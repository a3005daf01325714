import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseFlags } from '../../src/cli/flags.js';
import { packageRoot } from '../../src/cli/package-root.js';
import { routerHelp } from '../../src/cli/help/router.js';
import { defaultWorkers, MAX_WORKERS, perWorkerLingering, perWorkerShare, resolveRouterFlags } from '../../src/cli/router-command.js';
import { UsageError } from '../../src/core/errors.js';
import { MIN_TICKET_ROTATION_MS } from '../../src/core/ticket-key-ring.js';
import { DEFAULT_CLIENT_BOUNDS } from '../../src/cli/router-flags.js';
import { DEFAULT_LINGER_LIMITS } from '../../src/ingress/lingering-close.js';
import { generateSelfSignedCertificate } from '../../src/ingress/certificates/dev-certificate.js';

describe('perWorkerShare', () => {
  it("gives each worker its part of the per-address connection limits, so the flags bound the router", () => {
    const bounds = { ...DEFAULT_CLIENT_BOUNDS, maxConnectionsPerAddress: 256, maxConnectRatePerAddress: 100, maxRequestsPerClient: 64 };
    const share = perWorkerShare(bounds, 3);
    expect(share.maxConnectionsPerAddress).toBe(86); // rounded up: never below the flag in total
    expect(share.maxConnectRatePerAddress).toBe(34);
    // Not divided: an HTTP/2 client's requests all come on one connection, to one worker.
    expect(share.maxRequestsPerClient).toBe(64);
    expect({ ...share, maxConnectionsPerAddress: 256, maxConnectRatePerAddress: 100 }).toEqual(bounds);
  });

  it('keeps "no limit" and never divides a limit down to nothing', () => {
    const share = perWorkerShare({ ...DEFAULT_CLIENT_BOUNDS, maxConnectionsPerAddress: 0, maxConnectRatePerAddress: 1 }, 8);
    expect(share.maxConnectionsPerAddress).toBe(0);
    expect(share.maxConnectRatePerAddress).toBe(1);
  });

  it('leaves one process as it is', () => {
    expect(perWorkerShare(DEFAULT_CLIENT_BOUNDS, 1)).toBe(DEFAULT_CLIENT_BOUNDS);
  });
});

/** The configuration one router process resolves from these flags and this environment. */
const configOf = async (argv: string[], env: NodeJS.ProcessEnv = {}) =>
  (await resolveRouterFlags(parseFlags(['--dev-cert', '--workers', '1', ...argv], routerHelp.flags, env))).config;

describe('the drain timeout', () => {
  const drainOf = async (argv: string[], env: NodeJS.ProcessEnv = {}) => (await configOf(argv, env)).drainTimeoutMs;

  it('covers the longest tier by default, so a deploy of the router does not cut a request its function may still answer', async () => {
    expect(await drainOf([])).toBe(65_000);
    expect(await drainOf(['--timeout-extended', '120000'])).toBe(125_000);
    expect(await drainOf(['--timeout-standard', '90000', '--timeout-extended', '20000'])).toBe(95_000);
  });

  it('is what the operator gives, by flag or environment', async () => {
    expect(await drainOf(['--drain-timeout', '3000'])).toBe(3_000);
    expect(await drainOf([], { EDGE_DRAIN_TIMEOUT_MS: '4000' })).toBe(4_000);
  });
});

describe('times in milliseconds', () => {
  // A time under 100 ms is a time in seconds written without its unit far more often than a wish:
  // --timeout-standard 30 answered every request 504 after 30 ms, --drain-timeout 60 cut every
  // request at a deploy, and nothing said why.
  it.each([
    [['--timeout-standard', '30'], {}, '--timeout-standard: expected a time in milliseconds from 100 to 86400000, got "30"; in milliseconds, 30 s is 30000'],
    [[], { EDGE_TIMEOUT_EXTENDED_MS: '60' }, 'EDGE_TIMEOUT_EXTENDED_MS: expected a time in milliseconds from 100 to 86400000, got "60"; in milliseconds, 60 s is 60000'],
    [['--drain-timeout', '65'], {}, '--drain-timeout: expected a time in milliseconds from 100 to 86400000 (or 0: ended at once), got "65"; in milliseconds, 65 s is 65000'],
    [['--connect-timeout', '1'], {}, '--connect-timeout: expected a time in milliseconds from 100 to 86400000, got "1"; in milliseconds, 1 s is 1000'],
    [['--send-timeout', '0'], {}, '--send-timeout: expected a time in milliseconds from 100 to 86400000, got "0"'],
    [['--client-header-timeout', '10s'], {}, '--client-header-timeout: expected a time in milliseconds from 100 to 86400000, got "10s"'],
    [['--queue-timeout', '86400001'], {}, '--queue-timeout: expected a time in milliseconds from 100 to 86400000, got "86400001"'],
    [['--websocket-idle-timeout', '5'], {}, '--websocket-idle-timeout: expected a time in milliseconds from 100 to 86400000 (or 0: never), got "5"; in milliseconds, 5 s is 5000'],
  ] as Array<[string[], NodeJS.ProcessEnv, string]>)('refuses %j %j, naming the flag or variable and what it takes', async (argv, env, message) => {
    await expect(configOf(argv, env)).rejects.toThrow(new UsageError(message));
  });

  it('takes 0 where it says what 0 means, and 100 ms', async () => {
    const config = await configOf(['--drain-timeout', '0', '--flood-penalty', '0', '--websocket-idle-timeout', '0', '--admin-token-overlap', '0', '--lingering-time', '0', '--connect-timeout', '100']);
    expect([config.drainTimeoutMs, config.clientBounds.floodPenaltyMs, config.clientBounds.tunnelIdleTimeoutMs, config.lingering!.totalMs, config.connectTimeoutMs]).toEqual([0, 0, 0, 0, 100]);
  });
});

describe('idle client connections', () => {
  const limitsOf = async (argv: string[], env: NodeJS.ProcessEnv = {}) => (await configOf(argv, env)).limits;

  it('keeps Node\'s 5 s for HTTP/1.1 and a minute for HTTP/2 by default, and the operator sets each, by flag or environment', async () => {
    expect(await limitsOf([])).toMatchObject({ keepAliveTimeoutMs: 5_000, http2IdleTimeoutMs: 60_000 });
    expect(await limitsOf(['--keep-alive-timeout', '75000', '--http2-idle-timeout', '300000'])).toMatchObject({ keepAliveTimeoutMs: 75_000, http2IdleTimeoutMs: 300_000 });
    expect(await limitsOf([], { EDGE_KEEP_ALIVE_TIMEOUT_MS: '2000', EDGE_HTTP2_IDLE_TIMEOUT_MS: '3000' })).toMatchObject({ keepAliveTimeoutMs: 2_000, http2IdleTimeoutMs: 3_000 });
  });

  it('refuses 0 (Node reads it as no timeout at all), less than a second, and more than an hour, naming the flag', async () => {
    await expect(limitsOf(['--keep-alive-timeout', '0'])).rejects.toThrow(/--keep-alive-timeout/);
    await expect(limitsOf(['--keep-alive-timeout', '999'])).rejects.toThrow(/--keep-alive-timeout/);
    await expect(limitsOf(['--http2-idle-timeout', '3600001'])).rejects.toThrow(/--http2-idle-timeout/);
    await expect(limitsOf([], { EDGE_HTTP2_IDLE_TIMEOUT_MS: 'soon' })).rejects.toThrow(/EDGE_HTTP2_IDLE_TIMEOUT_MS/);
  });
});

describe('the client head and request timeouts', () => {
  it('holds the head to the request timeout when it is the longer (the request, head included, must arrive within that), and says so', async () => {
    const resolved = await resolveRouterFlags(parseFlags(['--dev-cert', '--workers', '1', '--client-header-timeout', '20000', '--client-request-timeout', '5000'], routerHelp.flags, {}));
    expect(resolved.config.limits).toMatchObject({ headersTimeoutMs: 5_000, requestTimeoutMs: 5_000 });
    expect(resolved.ignoredSettings).toEqual([expect.stringMatching(/^--client-header-timeout 20000 ms is longer than --client-request-timeout 5000 ms/)]);
    expect((await configOf(['--client-header-timeout', '4000', '--client-request-timeout', '5000'])).limits).toMatchObject({ headersTimeoutMs: 4_000, requestTimeoutMs: 5_000 });
  });
});

describe('lingering close', () => {
  const lingeringOf = async (argv: string[], env: NodeJS.ProcessEnv = {}) => (await configOf(argv, env)).lingering;

  it('is nginx\'s by default (30 s in all, 5 s between reads), and the operator sets both times, by flag or environment', async () => {
    expect(await lingeringOf([])).toMatchObject({ totalMs: 30_000, idleMs: 5_000 });
    expect(await lingeringOf(['--lingering-time', '10000', '--lingering-timeout', '2000'])).toMatchObject({ totalMs: 10_000, idleMs: 2_000 });
    expect(await lingeringOf([], { EDGE_LINGERING_TIME_MS: '0' })).toMatchObject({ totalMs: 0, idleMs: 5_000 });
  });

  it('refuses a lingering timeout of 0 (a connection would close at once, as with lingering off, but counted as lingering), naming the flag', async () => {
    await expect(lingeringOf(['--lingering-timeout', '0'])).rejects.toThrow(/--lingering-timeout/);
  });

  it('bounds bytes and connections as before by default (4 MiB, 1,024, 32 per address), and the operator sets each, by flag or environment', async () => {
    expect(await lingeringOf([])).toEqual({ totalMs: 30_000, idleMs: 5_000, maxBytes: 4 * 1024 * 1024, maxConnections: 1_024, maxPerAddress: 32 });
    expect(await lingeringOf([])).toEqual(DEFAULT_LINGER_LIMITS);
    expect(await lingeringOf(['--lingering-max-bytes', '256KiB', '--lingering-max-connections', '100', '--lingering-max-per-ip', '4'])).toMatchObject({ maxBytes: 256 * 1024, maxConnections: 100, maxPerAddress: 4 });
    expect(await lingeringOf([], { EDGE_LINGERING_MAX_BYTES: '65536', EDGE_LINGERING_MAX_CONNECTIONS: '10', EDGE_LINGERING_MAX_PER_IP: '2' })).toMatchObject({ maxBytes: 65_536, maxConnections: 10, maxPerAddress: 2 });
    // 0 bytes or 0 connections: no connection lingers (as --lingering-time 0); 0 per address: no bound of its own (as every -per-ip limit).
    expect(await lingeringOf(['--lingering-max-bytes', '0', '--lingering-max-connections', '0', '--lingering-max-per-ip', '0'])).toMatchObject({ maxBytes: 0, maxConnections: 0, maxPerAddress: 0 });
  });

  it.each([
    [['--lingering-max-bytes=-1'], {}, '--lingering-max-bytes: expected a size such as 10MB, 128MiB or 65536, got "-1"'],
    [['--lingering-max-bytes', '17GiB'], {}, '--lingering-max-bytes: expected a size from 0 to 17179869184 bytes, got "17GiB"'],
    [[], { EDGE_LINGERING_MAX_BYTES: 'lots' }, 'EDGE_LINGERING_MAX_BYTES: expected a size such as 10MB, 128MiB or 65536, got "lots"'],
    [['--lingering-max-connections', '1.5'], {}, '--lingering-max-connections: expected a whole number from 0 to 1000000, got "1.5"'],
    [['--lingering-max-connections', '1000001'], {}, '--lingering-max-connections: expected a whole number from 0 to 1000000, got "1000001"'],
    [[], { EDGE_LINGERING_MAX_CONNECTIONS: '-1' }, 'EDGE_LINGERING_MAX_CONNECTIONS: expected a whole number from 0 to 1000000, got "-1"'],
    [['--lingering-max-per-ip=-1'], {}, '--lingering-max-per-ip: expected a whole number from 0 to 1000000, got "-1"'],
    [[], { EDGE_LINGERING_MAX_PER_IP: 'x' }, 'EDGE_LINGERING_MAX_PER_IP: expected a whole number from 0 to 1000000, got "x"'],
  ] as Array<[string[], NodeJS.ProcessEnv, string]>)('refuses %j %j, naming the flag or variable and what it takes', async (argv, env, message) => {
    await expect(lingeringOf(argv, env)).rejects.toThrow(new UsageError(message));
  });
});

describe('perWorkerLingering', () => {
  it("divides the per-address lingering bound among the workers, as --max-conns-per-ip's; the pool is each worker's, as --max-connections", () => {
    const share = perWorkerLingering({ ...DEFAULT_LINGER_LIMITS, maxPerAddress: 32 }, 3);
    expect(share).toEqual({ ...DEFAULT_LINGER_LIMITS, maxPerAddress: 11 });
    expect(perWorkerLingering({ ...DEFAULT_LINGER_LIMITS, maxPerAddress: 0 }, 8).maxPerAddress, '0: no bound').toBe(0);
    expect(perWorkerLingering({ ...DEFAULT_LINGER_LIMITS, maxPerAddress: 1 }, 8).maxPerAddress, 'never down to nothing').toBe(1);
    expect(perWorkerLingering(DEFAULT_LINGER_LIMITS, 1)).toBe(DEFAULT_LINGER_LIMITS);
  });
});

describe('trusted proxies from the command line', () => {
  it("takes an empty EDGE_TRUSTED_PROXIES as unset (the regions file's list), none as no proxy over it, and refuses a flag naming none", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edge-trusted-'));
    try {
      const regions = join(dir, 'regions.json');
      const bundled = JSON.parse(await readFile(join(packageRoot(), 'regions.json'), 'utf8')) as Record<string, unknown>;
      await writeFile(regions, JSON.stringify({ ...bundled, trustedProxies: ['10.0.0.0/8'] }));
      const trusted = async (argv: string[], env: NodeJS.ProcessEnv) => (await configOf(['--regions', regions, ...argv], env)).shared.trustedProxies;
      expect(await trusted([], { EDGE_TRUSTED_PROXIES: '' })).toEqual(['10.0.0.0/8']);
      expect(await trusted([], { EDGE_TRUSTED_PROXIES: 'none' })).toEqual([]);
      expect(await trusted(['--trusted-proxies', 'none'], {})).toEqual([]);
      await expect(trusted(['--trusted-proxies', ''], {})).rejects.toThrow(/^--trusted-proxies: expected comma-separated CIDRs such as 10\.0\.0\.0\/8, or none/);
      await expect(trusted([], { EDGE_TRUSTED_PROXIES: ',' })).rejects.toThrow(/^EDGE_TRUSTED_PROXIES: expected comma-separated CIDRs/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('a TLS certificate without its key', () => {
  it.each([
    [[], { EDGE_TLS_CERT: '/etc/edge/tls.crt' }, 'EDGE_TLS_CERT'],
    [['--tls-key', '/etc/edge/tls.key'], {}, '--tls-key'],
  ] as Array<[string[], NodeJS.ProcessEnv, string]>)('%j %j is refused naming what was given (%s), not flags nobody typed', async (argv, env, named) => {
    await expect(resolveRouterFlags(parseFlags(['--workers', '1', ...argv], routerHelp.flags, env))).rejects.toThrow(
      new UsageError(`${named}: a certificate and its key go together: give both --tls-cert and --tls-key (EDGE_TLS_CERT and EDGE_TLS_KEY)`),
    );
  });
});

describe('the TLS ticket key rotation', () => {
  it('takes 0 (each process its own key) or a period long enough for a staged key to reach every router', async () => {
    expect((await configOf(['--tls-ticket-rotation', '0'])).tlsTicketRotationMs).toBe(0);
    expect((await configOf(['--tls-ticket-rotation', String(MIN_TICKET_ROTATION_MS)])).tlsTicketRotationMs).toBe(MIN_TICKET_ROTATION_MS);
    expect((await configOf([])).tlsTicketRotationMs).toBe(12 * 3_600_000);
  });

  it.each([
    [['--tls-ticket-rotation', '500'], {}, '--tls-ticket-rotation', '500'],
    [[], { EDGE_TLS_TICKET_ROTATION_MS: String(MIN_TICKET_ROTATION_MS - 1) }, 'EDGE_TLS_TICKET_ROTATION_MS', String(MIN_TICKET_ROTATION_MS - 1)],
  ] as Array<[string[], NodeJS.ProcessEnv, string, string]>)('refuses %j %j: a router would seal with a key the others have not read', async (argv, env, named, value) => {
    await expect(configOf(argv, env)).rejects.toThrow(
      new UsageError(`${named}: expected 0 (each process keeps its own key) or at least ${MIN_TICKET_ROTATION_MS} ms (a shorter period would rotate before every router holds the next key), got "${value}"`),
    );
  });
});

describe('defaultWorkers', () => {
  it('is one a usable core, but never more than --workers itself takes', async () => {
    expect([defaultWorkers(1), defaultWorkers(2), defaultWorkers(MAX_WORKERS), defaultWorkers(384)]).toEqual([1, 2, MAX_WORKERS, MAX_WORKERS]);
    await expect(resolveRouterFlags(parseFlags(['--dev-cert', '--workers', String(MAX_WORKERS + 1)], routerHelp.flags, {}))).rejects.toThrow(`--workers: expected a whole number from 1 to ${MAX_WORKERS}`);
  });
});

describe('a file flag given the file itself', () => {
  // EDGE_TLS_KEY="$(cat tls.key)", or a Kubernetes Secret put in the environment instead of mounted:
  // the "path" could not be read, and the error naming it printed the private key to stderr and the log.
  const resolve = (env: NodeJS.ProcessEnv) => resolveRouterFlags(parseFlags(['--workers', '1'], routerHelp.flags, env));

  it.each([
    ['EDGE_TLS_KEY', { EDGE_TLS_CERT: '/etc/edge/tls.crt' }],
    ['EDGE_TLS_CERT', { EDGE_TLS_KEY: '/etc/edge/tls.key' }],
  ])('refuses PEM text in %s without showing it', async (variable, rest) => {
    const pem = (await generateSelfSignedCertificate({ names: ['*.telnyxcompute.com'] }))[variable === 'EDGE_TLS_KEY' ? 'key' : 'cert'];
    const body = pem.split('\n')[1]!;
    const refused = await resolve({ ...rest, [variable]: pem }).then(
      () => undefined,
      (err: unknown) => err as Error,
    );
    expect(refused?.message).toMatch(new RegExp(`^${variable}: expected a path to .*, got PEM text`));
    expect(refused?.message).not.toContain(body);
  });

  // Base64 starts with '/' one time in 64: the second is a token, not a path.
  it.each(['c2VjcmV0LWFkbWluLXRva2VuLTAxMjM0NTY3', '/Sup3rSecretAdminToken+abc/x=='])('never shows an admin token given where the path of its file belongs (%#)', async (token) => {
    const refused = await resolve({ EDGE_DEV_CERT: 'true', EDGE_ADMIN_TOKEN_FILE: token }).then(
      () => undefined,
      (err: unknown) => err as Error,
    );
    expect(refused?.message).toMatch(/^EDGE_ADMIN_TOKEN_FILE: cannot read the admin token file \(ENOENT\)/);
    expect(refused?.message).not.toContain(token);
  });

  it('still names a missing token file by its path', async () => {
    const missing = join(tmpdir(), 'edge-admin-token-that-is-not-there');
    await expect(resolve({ EDGE_DEV_CERT: 'true', EDGE_ADMIN_TOKEN_FILE: missing })).rejects.toThrow(`${missing}: cannot read the admin token (ENOENT)`);
  });
});
