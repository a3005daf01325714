/**
 * The snapshot used when no registry is configured: every configured region is up with its
 * configured capacity and weight, and the directory is empty (the router's unknown-function
 * policy then decides). Also the starting point other registries fill in.
 */
import type { RegionConfig, RegionHealth, RegistrySnapshot } from '../core/types.js';

export function regionHealthFromConfig(region: RegionConfig, status: RegionHealth['status'] = 'up'): RegionHealth {
  return {
    status,
    heartbeatAt: null,
    inFlight: 0,
    capacity: region.capacity,
    warmContainers: 0,
    latencyMs: { p50: 0, p99: 0 },
    errorRate: 0,
    warmFunctions: new Set(),
    functionLoads: new Map(),
    drained: false,
    weight: region.weight,
    ejectedUntil: 0,
  };
}

export function staticSnapshot(regions: readonly RegionConfig[]): RegistrySnapshot {
  return {
    version: 0,
    regions: new Map(regions.map((r) => [r.id, regionHealthFromConfig(r)])),
    functions: new Map(),
    residency: new Map(),
    domains: new Map(),
  };
}
