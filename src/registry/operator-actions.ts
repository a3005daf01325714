/**
 * Operator changes to a region, as one place for every front end (CLI, admin API, dashboard):
 * each changes one override, atomically in the registry (a drain and a weight change made at the
 * same moment both stand), and writes an event saying who did it.
 */
import type { RegionId } from '../core/types.js';
import type { HealthRegistry } from './health-registry.js';

export async function setRegionDrained(registry: HealthRegistry, region: RegionId, drained: boolean, by: string): Promise<void> {
  await registry.updateOverrides(region, { drained });
  await registry.appendEvent({ at: Date.now(), region, kind: drained ? 'drained' : 'undrained', cause: `operator (${by})` });
}

export async function setRegionWeight(registry: HealthRegistry, region: RegionId, weight: number, by: string): Promise<void> {
  await registry.updateOverrides(region, { weight });
  await registry.appendEvent({ at: Date.now(), region, kind: 'weight', cause: `operator (${by}) set weight ${weight}` });
}
