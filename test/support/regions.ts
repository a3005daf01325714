/** The five production regions as test data, and helpers to build snapshots around them. */
import type { RegionConfig, RegionHealth, RegionId, RegistrySnapshot } from '../../src/core/types.js';
import { regionHealthFromConfig } from '../../src/registry/static-snapshot.js';

const region = (id: string, name: string, lat: number, lon: number, port: number): RegionConfig => ({
  id,
  name,
  lat,
  lon,
  orchestrators: [`http://127.0.0.1:${port}`],
  capacity: { soft: 8, hard: 10 },
  weight: 1,
});

export const REGIONS: readonly RegionConfig[] = [
  region('atl', 'Atlanta', 33.749, -84.388, 7001),
  region('nyc', 'New York', 40.7128, -74.006, 7002),
  region('lax', 'Los Angeles', 34.0522, -118.2437, 7003),
  region('fra', 'Frankfurt', 50.1109, 8.6821, 7004),
  region('syd', 'Sydney', -33.8688, 151.2093, 7005),
];

export type HealthPatch = Partial<{ -readonly [K in keyof RegionHealth]: RegionHealth[K] }>;

/** All regions up and idle, with per-region overrides. */
export function healthMap(patches: Record<RegionId, HealthPatch> = {}): Map<RegionId, RegionHealth> {
  return new Map(REGIONS.map((r) => [r.id, { ...regionHealthFromConfig(r), ...patches[r.id] }]));
}

export function snapshotWith(partial: Partial<RegistrySnapshot> = {}): RegistrySnapshot {
  return {
    version: 1,
    regions: healthMap(),
    functions: new Map(),
    residency: new Map(),
    domains: new Map(),
    ...partial,
  };
}
