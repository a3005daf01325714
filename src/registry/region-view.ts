/**
 * One region as operators see it (CLI `registry status`, admin API, dashboard): configuration and
 * live health side by side, with ages instead of timestamps. Pure.
 */
import type { RegionConfig, RegionHealth } from '../core/types.js';

/** How many of a region's functions the view lists (the busiest: most containers). */
export const BUSIEST_FUNCTIONS = 5;

/** The region's functions with the most containers, as reported (for cold-start-aware routing's view). */
export function busiestFunctions(health: RegionHealth, limit = BUSIEST_FUNCTIONS): Array<{ fn: string; idle: number; busy: number }> {
  return [...health.functionLoads]
    .map(([fn, load]) => ({ fn, idle: load.idle, busy: load.busy }))
    .sort((a, b) => b.idle + b.busy - (a.idle + a.busy) || (a.fn < b.fn ? -1 : 1))
    .slice(0, limit);
}

/**
 * Whether the region's request times are those of no request: an orchestrator's latency window
 * answers 0 for each figure (service time too) until it has served one, and so do a snapshot's
 * defaults before any heartbeat. The heartbeat carries no sample count, and it cannot get one, nor
 * a null: routers of earlier versions read it with a strict schema and would refuse it (the region
 * down for them). Both times at 0 is that and never a measurement (they are to 0.1 ms, and a request
 * served in under 0.05 ms at the 99th percentile is none this platform sees); shown as 0.0 ms, an
 * idle region read as the fastest. Routing reads 0 as unknown already (deadline-admission.ts).
 */
export function servedNothing(health: Pick<RegionHealth, 'latencyMs'>): boolean {
  return health.latencyMs.p50 === 0 && health.latencyMs.p99 === 0;
}

const NO_LATENCY = { p50: null, p99: null } as const;

export function describeRegion(region: RegionConfig, health: RegionHealth, nowMs: number) {
  return {
    id: region.id,
    name: region.name,
    lat: region.lat,
    lon: region.lon,
    status: health.status,
    heartbeatAgeMs: health.heartbeatAt === null ? null : Math.max(0, nowMs - health.heartbeatAt),
    inFlight: health.inFlight,
    capacity: health.capacity,
    warmContainers: health.warmContainers,
    busiestFunctions: busiestFunctions(health),
    /** Null (each figure) for a region that has served nothing: see servedNothing. */
    latencyMs: servedNothing(health) ? NO_LATENCY : health.latencyMs,
    /** The region's median service time (queueing excluded), when its orchestrator reports one and has one. */
    serviceMs: health.serviceMs === undefined || health.serviceMs === 0 ? null : health.serviceMs,
    errorRate: health.errorRate,
    drained: health.drained,
    weight: health.weight,
    ejectedUntil: health.ejectedUntil > nowMs ? health.ejectedUntil : null,
  };
}

/**
 * How many names each of a region's function lists holds in `GET /api/status`: a region may
 * report 100,000 warm functions (512 KiB of names), which every call would write whole.
 */
export const STATUS_FUNCTION_LIMIT = 100;

/** Containers a region reported for `fn` (0 when its report does not list it). */
const containersOf = (health: RegionHealth, fn: string) => {
  const load = health.functionLoads.get(fn);
  return load === undefined ? 0 : load.idle + load.busy;
};

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The `limit` names with the most containers (ties, and names the report gives no containers, by
 * name), in name order. One pass: at most a few hundred names have containers (the report's bound),
 * and of the rest only the `limit` first by name are kept, not the whole list sorted per call.
 */
function busiestNames(names: Iterable<string>, health: RegionHealth, limit: number): string[] {
  const busy: Array<{ fn: string; containers: number }> = [];
  const firstIdle: string[] = []; // sorted, at most `limit`
  for (const fn of names) {
    const containers = containersOf(health, fn);
    if (containers > 0) busy.push({ fn, containers });
    else if (firstIdle.length < limit || byName(fn, firstIdle[firstIdle.length - 1]!) < 0) {
      firstIdle.splice(insertionPoint(firstIdle, fn), 0, fn);
      if (firstIdle.length > limit) firstIdle.pop();
    }
  }
  busy.sort((a, b) => b.containers - a.containers || byName(a.fn, b.fn));
  const kept = busy.slice(0, limit).map((entry) => entry.fn);
  return [...kept, ...firstIdle.slice(0, limit - kept.length)].sort(byName);
}

/** Where `name` goes in the sorted `names`. */
function insertionPoint(names: readonly string[], name: string): number {
  let low = 0;
  let high = names.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (byName(names[mid]!, name) < 0) low = mid + 1;
    else high = mid;
  }
  return low;
}

/**
 * A region's function lists bounded for `GET /api/status`: at most `limit` warm functions and
 * `limit` per-function loads (those with the most containers), each list in name order, with how
 * many there are. JSON writes a Set or a Map as `{}`, hence the array and the plain object.
 */
export function boundedFunctionLists(health: RegionHealth, limit = STATUS_FUNCTION_LIMIT) {
  const warm = busiestNames(health.warmFunctions, health, limit);
  const loaded = busiestNames(health.functionLoads.keys(), health, limit);
  return {
    warmFunctions: warm,
    warmFunctionsTotal: health.warmFunctions.size,
    functionLoads: Object.fromEntries(loaded.map((fn) => [fn, health.functionLoads.get(fn)!])),
    functionLoadsTotal: health.functionLoads.size,
    truncated: health.warmFunctions.size > limit || health.functionLoads.size > limit,
  };
}
