/**
 * Turns stored registry state into the snapshot the request path reads. Pure: the caller
 * passes the clock. Heartbeat age is judged against `contactAt`, the last moment the registry
 * was heard from — so when Redis itself goes silent nothing ages, and routers keep routing on
 * the last-known state (fail-static) instead of declaring every region down.
 */
import type { FunctionLoad, RegionConfig, RegionHealth, RegionStatus, RegistrySnapshot } from '../core/types.js';
import type { Heartbeat, RegistryState } from './health-registry.js';

export interface SnapshotClock {
  /** Last successful contact with the registry (epoch ms). */
  readonly contactAt: number;
  /** A heartbeat older than this (relative to contactAt) means the region is down. */
  readonly heartbeatTtlMs: number;
  /**
   * The same for a prober's heartbeats, which come one probe apart (interval plus a probe's
   * budget: prober.ts); default heartbeatTtlMs.
   */
  readonly probeHeartbeatTtlMs?: number;
}

/** The heartbeat's status while it is fresh at `clock`, else down. */
function statusOf(hb: Heartbeat | undefined, clock: SnapshotClock): RegionStatus {
  if (hb === undefined) return 'down';
  const ttlMs = hb.source === 'probe' ? (clock.probeHeartbeatTtlMs ?? clock.heartbeatTtlMs) : clock.heartbeatTtlMs;
  return clock.contactAt - hb.reportedAt <= ttlMs ? hb.status : 'down';
}

const EMPTY_SET: ReadonlySet<string> = new Set();
const NO_LOADS: ReadonlyMap<string, FunctionLoad> = new Map();

function functionLoadsOf(hb: Heartbeat | undefined): ReadonlyMap<string, FunctionLoad> {
  if (hb?.functions === undefined || hb.functions.length === 0) return NO_LOADS;
  return new Map(hb.functions.map((f) => [f.fn, { idle: f.idle, busy: f.busy, coldStartMs: f.coldStartMs }]));
}

export function buildRegionHealth(region: RegionConfig, state: RegistryState, clock: SnapshotClock): RegionHealth {
  const hb = state.heartbeats.get(region.id);
  const overrides = state.overrides.get(region.id);
  const ejection = state.ejections.get(region.id);
  return {
    status: statusOf(hb, clock),
    heartbeatAt: hb?.reportedAt ?? null,
    inFlight: hb?.inFlight ?? 0,
    capacity: hb?.capacity ?? region.capacity,
    warmContainers: hb?.warmContainers ?? 0,
    latencyMs: hb?.latencyMs ?? { p50: 0, p99: 0 },
    errorRate: hb?.errorRate ?? 0,
    warmFunctions: hb === undefined || hb.warmFunctions.length === 0 ? EMPTY_SET : new Set(hb.warmFunctions),
    functionLoads: functionLoadsOf(hb),
    drained: overrides?.drained ?? false,
    weight: overrides?.weight ?? region.weight,
    ejectedUntil: ejection?.until ?? 0,
  };
}

export function buildSnapshot(
  regions: readonly RegionConfig[],
  state: RegistryState,
  clock: SnapshotClock,
  version: number,
): RegistrySnapshot {
  return {
    version,
    regions: new Map(regions.map((r) => [r.id, buildRegionHealth(r, state, clock)])),
    functions: state.functions,
    residency: state.residency,
    domains: state.domains,
  };
}

/** Status each region would have at `clock`; lets a ticking watcher rebuild only on a flip. */
export function regionStatuses(regions: readonly RegionConfig[], state: RegistryState, clock: SnapshotClock): RegionStatus[] {
  return regions.map((r) => statusOf(state.heartbeats.get(r.id), clock));
}
