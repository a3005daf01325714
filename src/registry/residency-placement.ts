/**
 * Where an organisation's data residency and its functions' deployments disagree (pure). Routing
 * serves a function only from regions that are both deployed and allowed (pick-region.ts), so a
 * deployment into a region the org may not use is silently never routed to, and a function with
 * no region in both answers no_healthy_region to every request. The operator's front ends (CLI,
 * admin API) use these to refuse the first and to name the second.
 */
import { EdgeError } from '../core/errors.js';
import type { FunctionRecord, RegionId } from '../core/types.js';
import { sameRegions } from './health-registry.js';

/**
 * The regions of `deployIn` the org's residency rule does not allow, in the order given. None when
 * the org has no rule (null), or when the function is deployed everywhere (null): routing then
 * serves it from the allowed regions, which are none only under a rule the registry could not read
 * (deployFunction refuses that case itself).
 */
export function regionsOutsideResidency(deployIn: Iterable<RegionId> | null, allowed: ReadonlySet<RegionId> | null): RegionId[] {
  if (deployIn === null || allowed === null) return [];
  return [...deployIn].filter((region) => !allowed.has(region));
}

/** A function of an org that its residency rule leaves with no region to be served from. */
export interface StrandedFunction {
  readonly fn: string;
  /** Where it is deployed (none of them allowed). */
  readonly regions: readonly RegionId[];
}

/** The org's functions (by name) that `allowed` strands, sorted by name. A rule of null strands none. */
export function strandedFunctions(functionsOfOrg: ReadonlyMap<string, FunctionRecord> | undefined, allowed: ReadonlySet<RegionId> | null): StrandedFunction[] {
  return placementsOutside(functionsOfOrg, allowed)
    .filter(({ regions, outside }) => outside.length === regions.length)
    .map(({ fn, regions }) => ({ fn, regions }));
}

/**
 * A function of an org deployed both in regions its residency rule allows and in some it does not:
 * served from the allowed ones only (routing skips the others), a deployment `deploy` would refuse.
 */
export interface PartlyOutsideFunction {
  readonly fn: string;
  /** Where it is deployed. */
  readonly regions: readonly RegionId[];
  /** Those of them the rule does not allow (some, never all: that function would be stranded). */
  readonly outside: readonly RegionId[];
}

/**
 * The org's functions (by name) deployed partly outside `allowed`: at least one region allowed and
 * at least one not, sorted by name. A rule of null, and a function deployed everywhere, are none.
 */
export function partlyOutsideFunctions(functionsOfOrg: ReadonlyMap<string, FunctionRecord> | undefined, allowed: ReadonlySet<RegionId> | null): PartlyOutsideFunction[] {
  return placementsOutside(functionsOfOrg, allowed).filter(({ regions, outside }) => outside.length < regions.length);
}

/** The org's functions deployed in some region `allowed` leaves out (with those regions), or in none, sorted by name. */
function placementsOutside(functionsOfOrg: ReadonlyMap<string, FunctionRecord> | undefined, allowed: ReadonlySet<RegionId> | null): PartlyOutsideFunction[] {
  if (functionsOfOrg === undefined || allowed === null) return [];
  const found: PartlyOutsideFunction[] = [];
  for (const [fn, record] of functionsOfOrg) {
    if (record.regions === null) continue;
    const regions = [...record.regions].sort();
    const outside = regions.filter((region) => !allowed.has(region));
    // Deployed nowhere (regions []): no allowed region either, so stranded whatever the rule.
    if (outside.length > 0 || regions.length === 0) found.push({ fn, regions, outside });
  }
  return found.sort((a, b) => (a.fn < b.fn ? -1 : a.fn > b.fn ? 1 : 0));
}

/** The directory parts an import's residency check reads: of the backup, and of the registry after it. */
export interface ResidencyAndFunctions {
  readonly functions: ReadonlyMap<string, ReadonlyMap<string, FunctionRecord>>;
  readonly residency: ReadonlyMap<string, ReadonlySet<RegionId>>;
}

/** A backup's residency rule that does not hold after its import, and the one that does (null: none). */
export interface RuleNotImported {
  readonly org: string;
  readonly standing: readonly RegionId[] | null;
  readonly backup: readonly RegionId[];
}

/** An org of a backup whose functions the rule holding after the import strands. */
export interface StrandedOrg {
  readonly org: string;
  readonly allowed: readonly RegionId[];
  readonly functions: readonly StrandedFunction[];
}

/** An org of a backup whose functions the rule holding after the import leaves partly outside it. */
export interface PartlyOutsideOrg {
  readonly org: string;
  readonly allowed: readonly RegionId[];
  readonly functions: readonly PartlyOutsideFunction[];
}

/**
 * An import checked against the residency that holds after it (pure), for each org the backup
 * names (a function or a rule of it): the backup's rules that do not hold (an import without
 * --overwrite keeps the registry's rule where it has one), and the functions of those orgs that
 * the standing rule, the backup's or the registry's, strands, or leaves partly outside it (served
 * from the allowed regions only: `deploy` would refuse them, the import writes them as they were).
 * Orgs sorted.
 */
export function importedResidency(
  backup: ResidencyAndFunctions,
  after: ResidencyAndFunctions,
): { notImported: RuleNotImported[]; stranded: StrandedOrg[]; partlyOutside: PartlyOutsideOrg[] } {
  const orgs = [...new Set([...backup.functions.keys(), ...backup.residency.keys()])].sort();
  const notImported: RuleNotImported[] = [];
  const stranded: StrandedOrg[] = [];
  const partlyOutside: PartlyOutsideOrg[] = [];
  for (const org of orgs) {
    const standing = after.residency.get(org) ?? null;
    const backupRule = backup.residency.get(org);
    if (backupRule !== undefined && !sameRegions(backupRule, standing)) {
      notImported.push({ org, standing: standing === null ? null : [...standing].sort(), backup: [...backupRule].sort() });
    }
    const functions = strandedFunctions(after.functions.get(org), standing);
    if (functions.length > 0) stranded.push({ org, allowed: [...standing!].sort(), functions });
    const partly = partlyOutsideFunctions(after.functions.get(org), standing);
    if (partly.length > 0) partlyOutside.push({ org, allowed: [...standing!].sort(), functions: partly });
  }
  return { notImported, stranded, partlyOutside };
}

/**
 * A rule that allows no region, for people: only a rule the registry could not read reads so
 * (RecordDecoder.residencyEntry; a backup carries it as []), and it stands until written again.
 */
export const NO_REGION_ALLOWED = 'no region (its rule could not be read: set it again)';

/** The regions a rule allows, for people: `fra, lax`, or NO_REGION_ALLOWED's words (not an empty list). */
export function describeAllowed(allowed: readonly RegionId[]): string {
  return allowed.length === 0 ? NO_REGION_ALLOWED : allowed.join(', ');
}

/** One line per stranded function, for people: `checkout (deployed in lax, syd)`, `nowhere (deployed in no region)`. */
export function describeStranded(stranded: readonly StrandedFunction[]): string[] {
  return stranded.map((s) => `${s.fn} (deployed in ${s.regions.length === 0 ? 'no region' : s.regions.join(', ')})`);
}

/** One line per function partly outside its org's rule, for people: `api (deployed in fra, nyc) is served from fra only: nyc is outside the rule`. */
export function describePartlyOutside(partly: readonly PartlyOutsideFunction[]): string[] {
  return partly.map((p) => {
    const inside = p.regions.filter((region) => !p.outside.includes(region));
    return `${p.fn} (deployed in ${p.regions.join(', ')}) is served from ${inside.join(', ')} only: ${p.outside.join(', ')} ${p.outside.length === 1 ? 'is' : 'are'} outside the rule`;
  });
}

/**
 * A deployment refused because some of its regions are outside the org's residency: the
 * catalogue's residency_conflict (409 from the admin API, exit 2 from the CLI), naming those
 * regions and the ones the org may use. `outside` empty: a deployment everywhere under a rule
 * that allows no region.
 */
export class ResidencyConflict extends EdgeError {
  override readonly name = 'ResidencyConflict';
  constructor(
    readonly org: string,
    readonly fn: string,
    readonly outside: readonly RegionId[],
    readonly allowed: readonly RegionId[],
  ) {
    super(
      'residency_conflict',
      outside.length === 0
        ? `${org}/${fn}: org ${org}'s data residency allows ${NO_REGION_ALLOWED}; routing would never send a request anywhere. Set the residency first`
        : `${org}/${fn}: ${outside.join(', ')} ${outside.length === 1 ? 'is' : 'are'} outside org ${org}'s data residency (allowed: ${describeAllowed(allowed)}); ` +
            'routing would never send a request there. Deploy within the allowed regions, or change the residency first',
    );
  }
}

/**
 * A deployment not written because its org's residency rule changed between each check and its
 * write, every time it was tried: the catalogue's residency_conflict too (409, exit 2; nothing
 * written), for the operator to try again once whoever is changing the rule is done.
 */
export class ResidencyUnsettled extends EdgeError {
  override readonly name = 'ResidencyUnsettled';
  constructor(
    readonly org: string,
    readonly fn: string,
    readonly attempts: number,
  ) {
    super('residency_conflict', `${org}/${fn}: org ${org}'s data residency changed during each of ${attempts} attempts to deploy it; nothing written. Try again`);
  }
}
