/**
 * One region as operators see it (CLI `registry status`, admin API, dashboard): configuration and
 * live health side by side, with ages instead of timestamps. Pure.
 */
import type { RegionConfig, RegionHealth } from '../core/types.js';

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
    latencyMs: health.latencyMs,
    errorRate: health.errorRate,
    drained: health.drained,
    weight: health.weight,
    ejectedUntil: health.ejectedUntil > nowMs ? health.ejectedUntil : null,
  };
}
