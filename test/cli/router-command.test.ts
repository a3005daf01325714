import { describe, expect, it } from 'vitest';
import { perWorkerShare } from '../../src/cli/router-command.js';
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
