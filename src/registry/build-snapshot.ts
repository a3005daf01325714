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
  // Both are defaults: a heartbeat that carries its own TTL (Heartbeat.ttlMs) is judged by that.
  /**
   * From when a heartbeat's age counts: its own time (`reportedAt`, its writer's clock) unless the
   * reader knows better (registry-watcher.ts: when a newer one arrived, for a writer whose clock is behind).
   */
  readonly agedFrom?: (hb: Heartbeat) => number;
}

/**
 * How long `hb` counts: the TTL it was written with, else the clock's default for its source. Its
 * own, because only its writer knows its pace: a router cannot know the interval of a prober
 * elsewhere (`edge-router probe --probe-interval 6000` made its regions flap down).
 */
export function heartbeatTtlOf(hb: Heartbeat, clock: Pick<SnapshotClock, 'heartbeatTtlMs' | 'probeHeartbeatTtlMs'>): number {
  if (hb.ttlMs !== undefined) return hb.ttlMs;
  return hb.source === 'probe' ? (clock.probeHeartbeatTtlMs ?? clock.heartbeatTtlMs) : clock.heartbeatTtlMs;
}

/** Whether `hb` still counts at `clock`. */
export function isFresh(hb: Heartbeat, clock: SnapshotClock): boolean {
  return clock.contactAt - (clock.agedFrom?.(hb) ?? hb.reportedAt) <= heartbeatTtlOf(hb, clock);
}

/**
 * The heartbeat a region's health is read from: its own report while fresh (a probe sees only
 * that the health path answers: it knows nothing of a drain, the load or the containers), else a
 * fresh probe heartbeat, else the newer of the two (expired: down).
 */
function heartbeatOf(state: RegistryState, region: string, clock: SnapshotClock): Heartbeat | undefined {
  const report = state.heartbeats.get(region);
  if (report !== undefined && isFresh(report, clock)) return report;
  const probe = state.probeHeartbeats.get(region);
  if (probe !== undefined && isFresh(probe, clock)) return probe;
  if (report === undefined || probe === undefined) return report ?? probe;
  return probe.reportedAt > report.reportedAt ? probe : report;
}

/**
 * The region's status at `clock`: a fresh probe `down` takes it down whatever its report says (the
 * routers cannot reach what reports itself up); otherwise that of heartbeatOf while fresh, else down.
 */
function statusOf(state: RegistryState, region: string, hb: Heartbeat | undefined, clock: SnapshotClock): RegionStatus {
  const probe = state.probeHeartbeats.get(region);
  if (probe?.status === 'down' && isFresh(probe, clock)) return 'down';
  return hb !== undefined && isFresh(hb, clock) ? hb.status : 'down';
}

const EMPTY_SET: ReadonlySet<string> = new Set();
const NO_LOADS: ReadonlyMap<string, FunctionLoad> = new Map();

function functionLoadsOf(hb: Heartbeat | undefined): ReadonlyMap<string, FunctionLoad> {
  if (hb?.functions === undefined || hb.functions.length === 0) return NO_LOADS;
  return new Map(hb.functions.map((f) => [f.fn, { idle: f.idle, busy: f.busy, coldStartMs: f.coldStartMs }]));
}

export function buildRegionHealth(region: RegionConfig, state: RegistryState, clock: SnapshotClock): RegionHealth {
  const hb = heartbeatOf(state, region.id, clock);
  const overrides = state.overrides.get(region.id);
  const ejection = state.ejections.get(region.id);
  const health: RegionHealth = {
    status: statusOf(state, region.id, hb, clock),
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
  // Only a report's (a probe knows nothing of service); absent where an earlier orchestrator sent none.
  return hb?.serviceMs === undefined || hb.source !== 'reporter' ? health : { ...health, serviceMs: hb.serviceMs };
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
  return regions.map((r) => statusOf(state, r.id, heartbeatOf(state, r.id, clock), clock));
}
