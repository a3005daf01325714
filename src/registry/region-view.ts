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
    latencyMs: health.latencyMs,
    errorRate: health.errorRate,
    drained: health.drained,
    weight: health.weight,
    ejectedUntil: health.ejectedUntil > nowMs ? health.ejectedUntil : null,
  };
}
