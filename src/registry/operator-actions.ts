/**
 * Operator changes, as one place for every front end (CLI, admin API, dashboard), so that they
 * check and record the same things. A region change changes one override, atomically in the
 * registry (a drain and a weight change made at the same moment both stand); each change writes
 * an event saying who did it. The change stands once written:
 * with `eventFailed`, an event that cannot be added is reported there instead of failing a change
 * that was made (the admin API answered such a drain 503, and logged no admin_action for it).
 */
import type { FunctionRecord, RegionId } from '../core/types.js';
import type { HealthRegistry } from './health-registry.js';
import { regionsOutsideResidency, ResidencyConflict, strandedFunctions, type StrandedFunction } from './residency-placement.js';

export async function setRegionDrained(registry: HealthRegistry, region: RegionId, drained: boolean, by: string, eventFailed?: (err: unknown) => void): Promise<void> {
  await registry.updateOverrides(region, { drained });
  await appended(registry.appendEvent({ at: Date.now(), region, kind: drained ? 'drained' : 'undrained', cause: `operator (${by})` }), eventFailed);
}

export async function setRegionWeight(registry: HealthRegistry, region: RegionId, weight: number, by: string, eventFailed?: (err: unknown) => void): Promise<void> {
  await registry.updateOverrides(region, { weight });
  await appended(registry.appendEvent({ at: Date.now(), region, kind: 'weight', cause: `operator (${by}) set weight ${weight}` }), eventFailed);
}

/**
 * Deploys (or redeploys) a function, refusing with ResidencyConflict, before writing anything, a
 * region the org's residency does not allow: routing would never send a request there, and a
 * deployment with no allowed region at all would answer no_healthy_region to every request.
 *
 * Check, then write: not atomic. A residency rule set between the read and the write can still
 * leave this deployment partly or wholly outside it. That is accepted: routing filters by
 * residency on every request whatever the directory says, so the legal constraint holds anyway;
 * this check is there to catch the operator's mistake, not as a security boundary (and
 * setOrgResidency names the functions a new rule strands).
 */
export async function deployFunction(registry: HealthRegistry, record: FunctionRecord, by: string, eventFailed?: (err: unknown) => void): Promise<void> {
  const allowed = await registry.readResidency(record.org);
  const outside = regionsOutsideResidency(record.regions, allowed);
  if (outside.length > 0) throw new ResidencyConflict(record.org, record.fn, outside, [...allowed!].sort());
  await registry.putFunction(record);
  const where = record.regions === null ? 'every region' : [...record.regions].join(',');
  await appended(registry.appendEvent({ at: Date.now(), region: null, kind: 'deployed', cause: `${record.org}/${record.fn} in ${where} (${record.tier}; ${by})` }), eventFailed);
}

/** What a residency change left behind: the org's functions deployed in no region it now allows (null: they could not be read). */
export interface ResidencyOutcome {
  readonly stranded: readonly StrandedFunction[] | null;
  /** Why they could not be read, when they could not. */
  readonly unchecked?: unknown;
}

/**
 * Sets (or clears, with null) an org's residency. Never refused for the functions it strands:
 * residency is a legal constraint and must apply at once, so the rule is written first, and the
 * functions it leaves with no allowed region are then listed for the operator to redeploy (until
 * they are, they answer no_healthy_region). A failed read of them does not undo or hide the write.
 */
export async function setOrgResidency(registry: HealthRegistry, org: string, regions: readonly RegionId[] | null): Promise<ResidencyOutcome> {
  await registry.setResidency(org, regions);
  if (regions === null) return { stranded: [] };
  try {
    const state = await registry.readState();
    return { stranded: strandedFunctions(state.functions.get(org), new Set(regions)) };
  } catch (err) {
    return { stranded: null, unchecked: err };
  }
}

async function appended(append: Promise<boolean>, eventFailed: ((err: unknown) => void) | undefined): Promise<void> {
  if (eventFailed === undefined) await append;
  else await append.catch(eventFailed);
}
