/**
 * The registry's durable state as a JSON document, for `edge-router registry export` / `import`:
 * backups, and moving between Redis instances. Only what an operator or a deployment wrote is
 * in it (functions, residency, domains, region overrides); heartbeats and ejections are live
 * state that comes back by itself. Importing validates the whole file first, naming the file
 * and the field of the first problem, so a bad file writes nothing.
 */
import { z } from 'zod';
import { dnsNameFrom, isDnsName } from '../core/dns-name.js';
import { ConfigError } from '../core/errors.js';
import { parseJsonFile, protoKeyValue } from '../core/json-text.js';
import type { FunctionRef, RegionId } from '../core/types.js';
import type { DurableState, RegionOverrides } from './health-registry.js';
import { residencyRule } from './operator-actions.js';
import { backupResidencySchema, domainSchema, fromFunctionRecord, functionSchema, MAX_PATCH_FIELD_LENGTH, overridesSchema, toFunctionRecord } from './records.js';

export const BACKUP_FORMAT = 'edge-router-registry-backup';
export const BACKUP_VERSION = 1;

const backupSchema = z.strictObject({
  format: z.literal(BACKUP_FORMAT),
  version: z.literal(BACKUP_VERSION),
  exportedAt: z.string(),
  generation: z.string().nullable(),
  functions: z.array(functionSchema),
  // Keyed by any name the registry keeps a rule under (RecordDecoder drops none), not only org ids:
  // a rule stored under "Acme" before `residency set` checked the name is exported as it is, and
  // refused here it made the registry's own export unusable. Routing never looks such a rule up.
  residency: z.record(z.string().min(1).max(MAX_PATCH_FIELD_LENGTH), backupResidencySchema),
  domains: z.record(z.string().min(1).max(253), domainSchema),
  overrides: z.record(z.string(), overridesSchema),
});

export type Backup = z.infer<typeof backupSchema>;

/** The document for `state`; entries sorted so two exports of the same data are the same bytes. */
export function toBackup(state: DurableState, generation: string | null, now: number): Backup {
  const byKey = <T>(entries: Iterable<[string, T]>) => Object.fromEntries([...entries].sort(([a], [b]) => a.localeCompare(b)));
  return {
    format: BACKUP_FORMAT,
    version: BACKUP_VERSION,
    exportedAt: new Date(now).toISOString(),
    generation,
    functions: [...state.functions.values()]
      .flatMap((byFn) => [...byFn.values()])
      .map(fromFunctionRecord)
      .sort((a, b) => `${a.org}/${a.fn}`.localeCompare(`${b.org}/${b.fn}`)),
    residency: byKey([...state.residency].map(([org, regions]) => [org, residencyRule([...regions])])),
    domains: byKey([...state.domains].map(([host, ref]) => [host, { fn: ref.fn, org: ref.org }])),
    overrides: byKey([...state.overrides].map(([region, o]) => [region, { drained: o.drained, weight: o.weight }])),
  };
}

/**
 * Parses and checks a backup file's text against the configured regions; throws a ConfigError naming
 * `file` and the field. A function deployed in a region the regions file lacks, and a residency rule
 * naming one, are taken as they are, as the registry keeps them (RecordDecoder): a backup is a state
 * the registry held, and refused, a router whose regions file had not caught up with a new region
 * could not restore its own export. Those regions come back in `unknownRegions` (sorted), to be said.
 * An override of such a region is refused: the registry drops one too.
 */
export function parseBackup(text: string, file: string, regions: readonly RegionId[]): { state: DurableState; generation: string | null; unknownRegions: RegionId[] } {
  const json = parseJsonFile(file, text);
  const parsed = backupSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`${file}: ${issue.path.join('.') || '(document)'}: ${issue.message}`);
  }
  const backup = parsed.data;
  const known = new Set(regions);
  const fail = (field: string, region: string) => {
    throw new ConfigError(`${file}: ${field}: unknown region "${region}"; this regions file has ${regions.join(', ')}`);
  };
  const unknown = new Set<RegionId>();
  const noteUnknown = (ids: readonly RegionId[]) => {
    for (const id of ids) if (!known.has(id)) unknown.add(id);
  };
  const functions = new Map<string, Map<string, ReturnType<typeof toFunctionRecord>>>();
  const listedAt = new Map<string, number>();
  backup.functions.forEach((f, i) => {
    // Two entries for one function (a hand-merged file) kept the last and said nothing, where two
    // keys for one domain are refused.
    const at = listedAt.get(`${f.org}/${f.fn}`);
    if (at !== undefined) throw new ConfigError(`${file}: functions[${i}]: ${f.org}/${f.fn} is listed twice (also functions[${at}])`);
    listedAt.set(`${f.org}/${f.fn}`, i);
    noteUnknown(f.regions ?? []);
    const byFn = functions.get(f.org) ?? new Map();
    byFn.set(f.fn, toFunctionRecord(f));
    functions.set(f.org, byFn);
  });
  const residency = new Map<string, ReadonlySet<RegionId>>();
  const residencyEntries: Array<[string, readonly RegionId[]]> = Object.entries(backup.residency);
  // zod's records skip a "__proto__" key (JSON.parse makes it an own one): a rule the registry
  // keeps under that name (its hashes have no prototype) was exported, then dropped on import
  // without a word. Read from the file's own keys, and checked as the others are.
  const protoRule = protoKeyValue(json, 'residency');
  if (protoRule !== undefined) {
    const rule = backupResidencySchema.safeParse(protoRule);
    if (!rule.success) throw new ConfigError(`${file}: residency.__proto__: ${rule.error.issues[0]!.message}`);
    residencyEntries.push(['__proto__', rule.data]);
  }
  for (const [org, list] of residencyEntries) {
    noteUnknown(list);
    residency.set(org, new Set(list));
  }
  if (protoKeyValue(json, 'overrides') !== undefined) fail('overrides.__proto__', '__proto__');
  if (protoKeyValue(json, 'domains') !== undefined) throw new ConfigError(`${file}: domains.__proto__: expected a DNS name, e.g. api.example.com`);
  const overrides = new Map<RegionId, RegionOverrides>();
  for (const [region, o] of Object.entries(backup.overrides)) {
    if (!known.has(region)) fail(`overrides.${region}`, region);
    overrides.set(region, o);
  }
  // Keyed as `domain add` and routing key them (lower case, no trailing dot): a key written any
  // other way was imported as it was, which no request's host ever matched and no `domain remove`
  // (it normalises too) could take out again.
  const domains = new Map<string, FunctionRef>();
  for (const [raw, ref] of Object.entries(backup.domains)) {
    const host = dnsNameFrom(raw);
    if (!isDnsName(host)) throw new ConfigError(`${file}: domains.${raw}: expected a DNS name, e.g. api.example.com`);
    if (domains.has(host)) throw new ConfigError(`${file}: domains.${raw}: the same name as another key, ${host}`);
    domains.set(host, ref);
  }
  return { state: { functions, residency, domains, overrides }, generation: backup.generation, unknownRegions: [...unknown].sort() };
}

/** One line for people: what a state holds. */
export function describeDurableState(state: DurableState): string {
  let functions = 0;
  for (const byFn of state.functions.values()) functions += byFn.size;
  return `${functions} functions, ${state.domains.size} domains, ${state.residency.size} residency rules, ${state.overrides.size} region overrides`;
}
