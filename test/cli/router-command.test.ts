import { describe, expect, it } from 'vitest';
import { parseFlags } from '../../src/cli/flags.js';
import { perWorkerShare, resolveRouterFlags, routerHelp } from '../../src/cli/router-command.js';
import { DEFAULT_CLIENT_BOUNDS } from '../../src/edge-router.js';

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

describe('the drain timeout', () => {
  const drainOf = async (argv: string[], env: NodeJS.ProcessEnv = {}) =>
    (await resolveRouterFlags(parseFlags(['--dev-cert', '--workers', '1', ...argv], routerHelp.flags, env))).config.drainTimeoutMs;

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
