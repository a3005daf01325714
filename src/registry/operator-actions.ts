/**
 * Operator changes, as one place for every front end (CLI, admin API, dashboard), so that they
 * check and record the same things. A region change changes one override, atomically in the
 * registry (a drain and a weight change made at the same moment both stand); each change writes
 * an event saying who did it. The change stands once written:
 * with `eventFailed`, an event that cannot be added is reported there instead of failing a change
 * that was made (the admin API answered such a drain 503, and logged no admin_action for it).
 */
import type { FunctionRecord, RegionId } from '../core/types.js';
import type { DurableState, HealthRegistry } from './health-registry.js';
import { importedResidency, partlyOutsideFunctions, regionsOutsideResidency, ResidencyConflict, ResidencyUnsettled, strandedFunctions, type PartlyOutsideFunction, type StrandedFunction } from './residency-placement.js';

export async function setRegionDrained(registry: HealthRegistry, region: RegionId, drained: boolean, by: string, eventFailed?: (err: unknown) => void): Promise<void> {
  await registry.updateOverrides(region, { drained });
  await appended(registry.appendEvent({ at: Date.now(), region, kind: drained ? 'drained' : 'undrained', cause: `operator (${by})` }), eventFailed);
}

export async function setRegionWeight(registry: HealthRegistry, region: RegionId, weight: number, by: string, eventFailed?: (err: unknown) => void): Promise<void> {
  await registry.updateOverrides(region, { weight });
  await appended(registry.appendEvent({ at: Date.now(), region, kind: 'weight', cause: `operator (${by}) set weight ${weight}` }), eventFailed);
}

/**
 * How many times a deploy checks its org's residency again when the rule changed between its check
 * and its write: a rule that changes this often during one deploy is being fought over, and the
 * operator is better told so than a deploy left spinning.
 */
export const DEPLOY_ATTEMPTS = 5;

/**
 * Deploys (or redeploys) a function, refusing with ResidencyConflict, before writing anything, a
 * region the org's residency does not allow: routing would never send a request there, and a
 * deployment with no allowed region at all would answer no_healthy_region to every request.
 *
 * Checked, then written only while the rule still reads as checked (putFunctionUnderResidency:
 * one atomic step in each registry). A residency set that lands after the check is either seen by
 * the write, which then writes nothing and the check runs again against the new rule, or lands
 * after the write, and setOrgResidency, which reads the functions after writing the rule, names
 * the deployment if the rule strands it: never a deployment outside the rule that nobody hears of.
 */
export async function deployFunction(registry: HealthRegistry, record: FunctionRecord, by: string, eventFailed?: (err: unknown) => void): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const { allowed, stamp } = await registry.readResidency(record.org);
    const outside = regionsOutsideResidency(record.regions, allowed);
    if (outside.length > 0) throw new ResidencyConflict(record.org, record.fn, outside, [...allowed!].sort());
    // Everywhere, under a rule that allows no region (one the registry could not read): served from
    // the allowed regions, it would be served from none. `outside` empty: every region.
    if (record.regions === null && allowed !== null && allowed.size === 0) throw new ResidencyConflict(record.org, record.fn, [], []);
    if (await registry.putFunctionUnderResidency(record, stamp)) break;
    if (attempt === DEPLOY_ATTEMPTS) throw new ResidencyUnsettled(record.org, record.fn, attempt);
  }
  const where = record.regions === null ? 'every region' : [...record.regions].join(',');
  await appended(registry.appendEvent({ at: Date.now(), region: null, kind: 'deployed', cause: `${record.org}/${record.fn} in ${where} (${record.tier}; ${by})` }), eventFailed);
}

/**
 * What a residency change left behind (both null: the org's functions could not be read): its
 * functions deployed in no region it now allows, and those deployed in some it allows and some it
 * does not (served from the allowed ones only; a deploy would refuse them).
 */
export interface ResidencyOutcome {
  readonly stranded: readonly StrandedFunction[] | null;
  readonly partlyOutside: readonly PartlyOutsideFunction[] | null;
  /** Why they could not be read, when they could not. */
  readonly unchecked?: unknown;
}

/**
 * Sets (or clears, with null) an org's residency, and logs it as an event saying who did it. Never
 * refused for the functions it strands or leaves partly outside it: residency is a legal constraint
 * and must apply at once, so the rule is written first, and those functions are then listed for the
 * operator to redeploy (until they are, the stranded answer no_healthy_region, the others are
 * served from the allowed regions only). A failed read of them does not undo or hide the write.
 */
export async function setOrgResidency(registry: HealthRegistry, org: string, regions: readonly RegionId[] | null, by: string, eventFailed?: (err: unknown) => void): Promise<ResidencyOutcome> {
  await registry.setResidency(org, regions);
  const outcome = regions === null ? { stranded: [], partlyOutside: [] } : await placementsUnder(registry, org, new Set(regions));
  // Routers of the version before these kinds leave the event out of what they show (records.ts).
  const cause = regions === null ? `org ${org} may use every region (${by})` : `org ${org} restricted to ${[...new Set(regions)].sort().join(', ')} (${by})`;
  await appended(registry.appendEvent({ at: Date.now(), region: null, kind: regions === null ? 'residency_cleared' : 'residency_set', cause }), eventFailed);
  return outcome;
}

/** The org's functions `allowed` strands or leaves partly outside it, read after the rule was written. */
async function placementsUnder(registry: HealthRegistry, org: string, allowed: ReadonlySet<RegionId>): Promise<ResidencyOutcome> {
  try {
    const functions = (await registry.readState()).functions.get(org);
    return { stranded: strandedFunctions(functions, allowed), partlyOutside: partlyOutsideFunctions(functions, allowed) };
  } catch (err) {
    return { stranded: null, partlyOutside: null, unchecked: err };
  }
}

/** What an import left of its orgs' residency (importedResidency; null: the registry could not be read after it). */
export interface ImportOutcome {
  readonly residency: ReturnType<typeof importedResidency> | null;
  /** Why the registry could not be read after the import, when it could not. */
  readonly unchecked?: unknown;
}

/**
 * Writes a backup in (restore: `keep-existing` adds what the registry lacks, `overwrite` replaces
 * too), then checks it against the residency that holds after it, read back from the registry: the
 * registry's rule where the backup has none for an org, and, without --overwrite, where both have
 * one (an import keeps existing entries, rules with them: a rule tightened since the backup was
 * taken, a legal constraint, is not loosened by restoring an older state). A backup is written as
 * it is, never refused (it is a state the registry held); the backup's rules that did not take, the
 * functions left with no allowed region (as setOrgResidency's are) and those left partly outside
 * their org's rule (served from the allowed regions only; `deploy` would refuse them) are returned
 * for the operator. Read after the write, so whatever else landed meanwhile is counted too.
 */
export async function importBackup(registry: HealthRegistry, backup: DurableState, generation: string, mode: 'keep-existing' | 'overwrite'): Promise<ImportOutcome> {
  await registry.restore(backup, generation, mode);
  try {
    return { residency: importedResidency(backup, await registry.readState()) };
  } catch (err) {
    return { residency: null, unchecked: err };
  }
}

async function appended(append: Promise<boolean>, eventFailed: ((err: unknown) => void) | undefined): Promise<void> {
  if (eventFailed === undefined) await append;
  else await append.catch(eventFailed);
}
