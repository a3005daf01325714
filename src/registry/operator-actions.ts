/**
 * Operator changes to a region, as one place for every front end (CLI, admin API, dashboard):
 * each changes one override, atomically in the registry (a drain and a weight change made at the
 * same moment both stand), and writes an event saying who did it. The change stands once written:
 * with `eventFailed`, an event that cannot be added is reported there instead of failing a change
 * that was made (the admin API answered such a drain 503, and logged no admin_action for it).
 */
import type { RegionId } from '../core/types.js';
import type { HealthRegistry } from './health-registry.js';

export async function setRegionDrained(registry: HealthRegistry, region: RegionId, drained: boolean, by: string, eventFailed?: (err: unknown) => void): Promise<void> {
  await registry.updateOverrides(region, { drained });
  await appended(registry.appendEvent({ at: Date.now(), region, kind: drained ? 'drained' : 'undrained', cause: `operator (${by})` }), eventFailed);
}

export async function setRegionWeight(registry: HealthRegistry, region: RegionId, weight: number, by: string, eventFailed?: (err: unknown) => void): Promise<void> {
  await registry.updateOverrides(region, { weight });
  await appended(registry.appendEvent({ at: Date.now(), region, kind: 'weight', cause: `operator (${by}) set weight ${weight}` }), eventFailed);
}

async function appended(append: Promise<boolean>, eventFailed: ((err: unknown) => void) | undefined): Promise<void> {
  if (eventFailed === undefined) await append;
  else await append.catch(eventFailed);
}
