import { describe, expect, it } from 'vitest';
import { buildSnapshot, regionStatuses } from '../../src/registry/build-snapshot.js';
import type { Heartbeat, RegistryState } from '../../src/registry/health-registry.js';
import { REGIONS } from '../support/regions.js';

function heartbeat(region: string, source: Heartbeat['source'], reportedAt: number): Heartbeat {
  return { region, status: 'up', reportedAt, source, inFlight: 0, warmContainers: 0, latencyMs: { p50: 1, p99: 1 }, errorRate: 0, warmFunctions: [] };
}

describe('buildSnapshot: how long a heartbeat counts', () => {
  const [a, b] = [REGIONS[0]!.id, REGIONS[1]!.id];
  const state: RegistryState = {
    heartbeats: new Map([
      [a, heartbeat(a, 'reporter', 10_000)],
      [b, heartbeat(b, 'probe', 10_000)],
    ]),
    overrides: new Map(),
    ejections: new Map(),
    functions: new Map(),
    residency: new Map(),
    domains: new Map(),
    generation: null,
  };
  const status = (contactAt: number, probeHeartbeatTtlMs?: number) => {
    const clock = { contactAt, heartbeatTtlMs: 3_000, ...(probeHeartbeatTtlMs === undefined ? {} : { probeHeartbeatTtlMs }) };
    const snapshot = buildSnapshot(REGIONS, state, clock, 1);
    const statuses = regionStatuses(REGIONS, state, clock);
    expect(statuses.slice(0, 2)).toEqual([snapshot.regions.get(a)!.status, snapshot.regions.get(b)!.status]);
    return statuses.slice(0, 2);
  };

  it('judges a reporter\'s heartbeat by the TTL and a prober\'s by the probe TTL (one probe apart), defaulting to the TTL', () => {
    expect(status(13_000, 6_000)).toEqual(['up', 'up']);
    expect(status(13_001, 6_000)).toEqual(['down', 'up']);
    expect(status(16_001, 6_000)).toEqual(['down', 'down']);
    expect(status(13_001)).toEqual(['down', 'down']);
  });
});
