/**
 * The registry's durable state as a JSON document, for `edge-router registry export` / `import`:
 * backups, and moving between Redis instances. Only what an operator or a deployment wrote is
 * in it (functions, residency, domains, region overrides); heartbeats and ejections are live
 * state that comes back by itself. Importing validates the whole file first, naming the file
 * and the field of the first problem, so a bad file writes nothing.
 */
import { z } from 'zod';
import { ConfigError } from '../core/errors.js';
import { parseJsonFile } from '../core/json-text.js';
import type { FunctionRef, RegionId } from '../core/types.js';
import type { DurableState, RegionOverrides } from './health-registry.js';
import { backupResidencySchema, domainSchema, fromFunctionRecord, functionSchema, overridesSchema, toFunctionRecord, unknownRegion } from './records.js';

export const BACKUP_FORMAT = 'edge-router-registry-backup';
export const BACKUP_VERSION = 1;

const backupSchema = z.strictObject({
  format: z.literal(BACKUP_FORMAT),
  version: z.literal(BACKUP_VERSION),
  exportedAt: z.string(),
  generation: z.string().nullable(),
  functions: z.array(functionSchema),
  residency: z.record(z.string().regex(/^[a-z0-9]{1,63}$/), backupResidencySchema),
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
    residency: byKey([...state.residency].map(([org, regions]) => [org, [...regions].sort()])),
    domains: byKey([...state.domains].map(([host, ref]) => [host, { fn: ref.fn, org: ref.org }])),
    overrides: byKey([...state.overrides].map(([region, o]) => [region, { drained: o.drained, weight: o.weight }])),
  };
}

/** Parses and checks a backup file's text against the configured regions; throws a ConfigError naming `file` and the field. */
export function parseBackup(text: string, file: string, regions: readonly RegionId[]): { state: DurableState; generation: string | null } {
  const parsed = backupSchema.safeParse(parseJsonFile(file, text));
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`${file}: ${issue.path.join('.') || '(document)'}: ${issue.message}`);
  }
  const backup = parsed.data;
  const known = new Set(regions);
  const fail = (field: string, region: string) => {
    throw new ConfigError(`${file}: ${field}: unknown region "${region}"; this regions file has ${regions.join(', ')}`);
  };
  const functions = new Map<string, Map<string, ReturnType<typeof toFunctionRecord>>>();
  backup.functions.forEach((f, i) => {
    const bad = unknownRegion(f.regions ?? [], known);
    if (bad !== undefined) fail(`functions.${i}.regions`, bad);
    const byFn = functions.get(f.org) ?? new Map();
    byFn.set(f.fn, toFunctionRecord(f));
    functions.set(f.org, byFn);
  });
  const residency = new Map<string, ReadonlySet<RegionId>>();
  for (const [org, list] of Object.entries(backup.residency)) {
    const bad = unknownRegion(list, known);
    if (bad !== undefined) fail(`residency.${org}`, bad);
    residency.set(org, new Set(list));
  }
  const overrides = new Map<RegionId, RegionOverrides>();
  for (const [region, o] of Object.entries(backup.overrides)) {
    if (!known.has(region)) fail(`overrides.${region}`, region);
    overrides.set(region, o);
  }
  const domains = new Map<string, FunctionRef>(Object.entries(backup.domains));
  return { state: { functions, residency, domains, overrides }, generation: backup.generation };
}

/** One line for people: what a state holds. */
export function describeDurableState(state: DurableState): string {
  let functions = 0;
  for (const byFn of state.functions.values()) functions += byFn.size;
  return `${functions} functions, ${state.domains.size} domains, ${state.residency.size} residency rules, ${state.overrides.size} region overrides`;
}
