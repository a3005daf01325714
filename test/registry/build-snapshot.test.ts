import { describe, expect, it } from 'vitest';
import { buildSnapshot, regionStatuses } from '../../src/registry/build-snapshot.js';
import type { Heartbeat, RegistryState } from '../../src/registry/health-registry.js';
import { NO_REVISIONS } from '../../src/registry/directory-patch.js';
import { REGIONS } from '../support/regions.js';

function heartbeat(region: string, source: Heartbeat['source'], reportedAt: number): Heartbeat {
  return { region, status: 'up', reportedAt, source, inFlight: 0, warmContainers: 0, latencyMs: { p50: 1, p99: 1 }, errorRate: 0, warmFunctions: [] };
}

/** A registry state holding these heartbeats and nothing else. */
function stateOf(heartbeats: ReadonlyMap<string, Heartbeat>, probeHeartbeats: ReadonlyMap<string, Heartbeat>): RegistryState {
  return { heartbeats, probeHeartbeats, overrides: new Map(), ejections: new Map(), functions: new Map(), residency: new Map(), domains: new Map(), generation: null, revisions: NO_REVISIONS, unchanged: new Set(), unreadable: new Map() };
}

describe('buildSnapshot: how long a heartbeat counts', () => {
  const [a, b] = [REGIONS[0]!.id, REGIONS[1]!.id];
  const state = stateOf(new Map([[a, heartbeat(a, 'reporter', 10_000)]]), new Map([[b, heartbeat(b, 'probe', 10_000)]]));
  const status = (contactAt: number, probeHeartbeatTtlMs?: number) => {
    const clock = { contactAt, heartbeatTtlMs: 3_000, ...(probeHeartbeatTtlMs === undefined ? {} : { probeHeartbeatTtlMs }) };
    const snapshot = buildSnapshot(REGIONS, state, clock, 1);
    const statuses = regionStatuses(REGIONS, state, clock);
    expect(statuses.slice(0, 2)).toEqual([snapshot.regions.get(a)!.status, snapshot.regions.get(b)!.status]);
    return statuses.slice(0, 2);
  };

  it('judges a heartbeat that carries its own TTL by that, and one from before (none) by the defaults', () => {
    const own: RegistryState = {
      ...state,
      heartbeats: new Map([[a, { ...heartbeat(a, 'reporter', 10_000), ttlMs: 1_000 }]]),
      probeHeartbeats: new Map([[b, { ...heartbeat(b, 'probe', 10_000), ttlMs: 18_000 }]]),
    };
    const clock = { contactAt: 20_000, heartbeatTtlMs: 3_000, probeHeartbeatTtlMs: 6_000 };
    expect(regionStatuses(REGIONS, own, clock).slice(0, 2)).toEqual(['down', 'up']);
    expect(regionStatuses(REGIONS, own, { ...clock, contactAt: 11_000 }).slice(0, 2)).toEqual(['up', 'up']);
  });

  it('judges a reporter\'s heartbeat by the TTL and a prober\'s by the probe TTL (one probe apart), defaulting to the TTL', () => {
    expect(status(13_000, 6_000)).toEqual(['up', 'up']);
    expect(status(13_001, 6_000)).toEqual(['down', 'up']);
    expect(status(16_001, 6_000)).toEqual(['down', 'down']);
    expect(status(13_001)).toEqual(['down', 'down']);
  });
});

describe('buildSnapshot: a region with both a report and probe heartbeats', () => {
  const region = REGIONS[0]!.id;
  const clock = { contactAt: 20_000, heartbeatTtlMs: 3_000, probeHeartbeatTtlMs: 6_000 };
  const stateWith = (report: Heartbeat | undefined, probe: Heartbeat | undefined): RegistryState =>
    stateOf(new Map(report === undefined ? [] : [[region, report]]), new Map(probe === undefined ? [] : [[region, probe]]));
  const health = (state: RegistryState) => {
    const h = buildSnapshot(REGIONS, state, clock, 1).regions.get(region)!;
    expect(regionStatuses(REGIONS, state, clock)[0]).toBe(h.status);
    return h;
  };
  const draining: Heartbeat = { ...heartbeat(region, 'reporter', 19_000), status: 'draining', inFlight: 7, functions: [{ fn: 'acme/api', idle: 2, busy: 1, coldStartMs: 300 }] };

  it('reads a fresh report, not a newer probe heartbeat: a probe knows nothing of a drain or the load', () => {
    const h = health(stateWith(draining, heartbeat(region, 'probe', 19_900)));
    expect(h).toMatchObject({ status: 'draining', inFlight: 7, heartbeatAt: 19_000 });
    expect(h.functionLoads.get('acme/api')).toEqual({ idle: 2, busy: 1, coldStartMs: 300 });
  });

  it('goes down on a fresh probe down whatever the report says, and reads the probe where the report expired', () => {
    expect(health(stateWith(draining, { ...heartbeat(region, 'probe', 18_000), status: 'down' })).status).toBe('down');
    // An expired probe down takes nothing down.
    expect(health(stateWith(draining, { ...heartbeat(region, 'probe', 13_000), status: 'down' })).status).toBe('draining');
    const expired = { ...draining, reportedAt: 16_000 };
    expect(health(stateWith(expired, heartbeat(region, 'probe', 15_000)))).toMatchObject({ status: 'up', heartbeatAt: 15_000, inFlight: 0 });
    // Both expired: down, showing the newer.
    expect(health(stateWith(expired, heartbeat(region, 'probe', 13_000)))).toMatchObject({ status: 'down', heartbeatAt: 16_000 });
  });
});
