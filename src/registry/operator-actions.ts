/**
 * Operator changes, as one place for every front end (CLI, admin API, dashboard), so that they
 * check and record the same things. A region change changes one override, atomically in the
 * registry (a drain and a weight change made at the same moment both stand); each change writes
 * an event saying who did it. The change stands once written:
 * with `eventFailed`, an event that cannot be added is reported there instead of failing a change
 * that was made (the admin API answered such a drain 503, and logged no admin_action for it).
 */
import type { FunctionRecord, RegionId } from '../core/types.js';
import type { DurableState, HealthEvent, HealthRegistry, RegistryState, UnreadablePart } from './health-registry.js';
import { importEvents } from './import-events.js';
import { deployedEvent, drainEvent, residencyEvent, weightEvent } from './operator-events.js';
import { importedResidency, partlyOutsideFunctions, regionsOutsideResidency, ResidencyConflict, ResidencyUnsettled, strandedFunctions, type PartlyOutsideFunction, type StrandedFunction } from './residency-placement.js';

export async function setRegionDrained(registry: HealthRegistry, region: RegionId, drained: boolean, by: string, eventFailed?: (err: unknown) => void): Promise<void> {
  await registry.updateOverrides(region, { drained });
  await appended(registry.appendEvent(drainEvent(region, drained, by, Date.now())), eventFailed);
}

/** `weight` null: back to the regions file's weight for the region (the override is dropped). */
export async function setRegionWeight(registry: HealthRegistry, region: RegionId, weight: number | null, by: string, eventFailed?: (err: unknown) => void): Promise<void> {
  await registry.updateOverrides(region, { weight });
  await appended(registry.appendEvent(weightEvent(region, weight, by, Date.now())), eventFailed);
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
  await appended(registry.appendEvent(deployedEvent(record, by, Date.now())), eventFailed);
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
export async function setOrgResidency(registry: HealthRegistry, org: string, given: readonly RegionId[] | null, by: string, eventFailed?: (err: unknown) => void): Promise<ResidencyOutcome> {
  const regions = given === null ? null : residencyRule(given);
  await registry.setResidency(org, regions);
  const outcome = regions === null ? { stranded: [], partlyOutside: [] } : await placementsUnder(registry, org, new Set(regions));
  await appended(registry.appendEvent(residencyEvent(org, regions, by, Date.now())), eventFailed);
  return outcome;
}

/**
 * A rule as the registry keeps it: each region once, sorted, as an export writes it. Stored as
 * typed (`--regions nyc,fra`, or `fra,fra`), an import of the registry's own export found the rule
 * changed, stamped a new generation and made every router read the whole directory again.
 */
export function residencyRule(regions: readonly RegionId[]): RegionId[] {
  return [...new Set(regions)].sort();
}

/**
 * The org's functions `allowed` strands or leaves partly outside it, read after the rule was
 * written. Read a page at a time: in one atomic read, Redis ran a single script over the whole
 * directory (every org's functions, for one org's list), and served no router and no region's
 * heartbeat until it was done.
 */
async function placementsUnder(registry: HealthRegistry, org: string, allowed: ReadonlySet<RegionId>): Promise<ResidencyOutcome> {
  try {
    const functions = readable(await registry.readState(undefined, 'paged'), ['functions']).functions.get(org);
    return { stranded: strandedFunctions(functions, allowed), partlyOutside: partlyOutsideFunctions(functions, allowed) };
  } catch (err) {
    return { stranded: null, partlyOutside: null, unchecked: err };
  }
}

/** What an import left of its orgs' residency (importedResidency; null: the registry could not be read after it). */
export interface ImportOutcome {
  /** The generation that stands after it: another than the one given when it changed nothing (RestoredChanges.generation). */
  readonly generation: string;
  readonly residency: ReturnType<typeof importedResidency> | null;
  /** Why the registry could not be read after the import, when it could not. */
  readonly unchecked?: unknown;
}

/**
 * Writes a backup in (restore: `keep-existing` adds what the registry lacks, `overwrite` replaces
 * too) and logs each entry that changed, as the operator's own change of it is logged, by `by`
 * (bounded: import-events.ts). Then checks it against the residency that holds after it, read back
 * from the registry: the registry's rule where the backup has none for an org, and, without
 * --overwrite, where both have one (an import keeps existing entries, rules with them: a rule
 * tightened since the backup was taken, a legal constraint, is not loosened by restoring an older
 * state). A backup is written as it is, never refused (it is a state the registry held); the
 * backup's rules that did not take, the functions left with no allowed region (as setOrgResidency's
 * are) and those left partly outside their org's rule (served from the allowed regions only;
 * `deploy` would refuse them) are returned for the operator. Read after the write, so whatever else
 * landed meanwhile is counted too. The import stands once written: with `eventFailed`, a log that
 * cannot take its entries is reported there, once.
 */
export async function importBackup(
  registry: HealthRegistry,
  backup: DurableState,
  generation: string,
  mode: 'keep-existing' | 'overwrite',
  by: string,
  eventFailed?: (err: unknown) => void,
): Promise<ImportOutcome> {
  // Never null here: only a re-seed's restore (missing-only) is refused so.
  const changes = (await registry.restore(backup, generation, mode))!;
  await appendedAll(registry, importEvents(changes, by, Date.now()), eventFailed);
  try {
    return { generation: changes.generation, residency: importedResidency(backup, readable(await registry.readState(), ['functions', 'residency'])) };
  } catch (err) {
    return { generation: changes.generation, residency: null, unchecked: err };
  }
}

/**
 * `state`, when it could read the parts a check needs; otherwise thrown (the check unchecked): a
 * part it could not read reads as empty, and a check of nothing finds nothing wrong.
 */
function readable(state: RegistryState, parts: readonly UnreadablePart[]): RegistryState {
  const unread = parts.filter((part) => state.unreadable.has(part));
  if (unread.length > 0) throw new Error(`the registry's ${unread.join(' and ')} could not be read (a key of the wrong Redis type?)`);
  return state;
}

/**
 * Appends `events` in order, as `appended` appends one. Stops at the first the log cannot take:
 * the next would most likely fail too, each after its own timeout, and be reported again.
 */
async function appendedAll(registry: HealthRegistry, events: readonly HealthEvent[], eventFailed: ((err: unknown) => void) | undefined): Promise<void> {
  for (const event of events) {
    try {
      await registry.appendEvent(event);
    } catch (err) {
      if (eventFailed === undefined) throw err;
      eventFailed(err);
      return;
    }
  }
}

async function appended(append: Promise<boolean>, eventFailed: ((err: unknown) => void) | undefined): Promise<void> {
  if (eventFailed === undefined) await append;
  else await append.catch(eventFailed);
}
