/**
 * Wire format of everything stored in a shared registry, validated on every read: data written
 * by another process (or another version, or an attacker with Redis access) is untrusted. A bad
 * entry is dropped with a reason and never touches the entries around it.
 */
import { z } from 'zod';
import { EdgeError } from '../core/errors.js';
import { MAX_REGION_COUNT, type FunctionRecord, type FunctionRef, type RegionId } from '../core/types.js';
import { REVISION_PATTERN, type DirectoryPart } from './directory-patch.js';
import { HEALTH_EVENT_KINDS, MAX_EVENT_CAUSE_LENGTH, MAX_FUNCTION_NAME_LENGTH, MAX_HEARTBEAT_TTL_MS, MAX_REPORTED_FUNCTIONS, MAX_REPORTED_MS, MAX_WARM_FUNCTIONS, functionKey, type Ejection, type HealthEvent, type Heartbeat, type RegionOverrides, type RegistryChange } from './health-registry.js';

/** Bumped when the stored format changes incompatibly; readers refuse data from a newer schema. */
export const SCHEMA_VERSION = 1;

/** Longest field name a directory change message may carry (a host name is at most 253). */
export const MAX_PATCH_FIELD_LENGTH = 512;

/** Anything longer is refused before JSON.parse: no stored record is legitimately this big. */
export const MAX_RECORD_BYTES = 1_048_576;

const count = z.number().int().min(0).max(MAX_REGION_COUNT);
const epochMs = z.number().int().min(0).max(8.64e15);
const MAX_SHORT_TEXT = 256;
const shortText = z.string().max(MAX_SHORT_TEXT);
const regionIdText = z.string().regex(/^[a-z][a-z0-9-]{1,15}$/);
const reportedMs = z.number().min(0).max(MAX_REPORTED_MS);

/** Whether `ms` is a request or service time every router takes (what a reporter may send). */
export const isReportedMs = (ms: unknown): ms is number => reportedMs.safeParse(ms).success;

/**
 * The heartbeat as `hb:<region>` and the change message carry it. Strict, here as in every earlier
 * version: a field added to it would get the whole heartbeat refused by routers not yet upgraded
 * (the region down for them), so newer fields travel beside it (ttlMs, serviceMs).
 */
export const heartbeatSchema = z.strictObject({
  region: regionIdText,
  status: z.enum(['up', 'degraded', 'draining', 'down']),
  reportedAt: epochMs,
  source: z.enum(['reporter', 'probe']),
  /** Absent in heartbeats written before it existed. */
  ttlMs: z.number().int().min(1).max(MAX_HEARTBEAT_TTL_MS).optional(),
  inFlight: count,
  capacity: z.strictObject({ soft: count, hard: count }).optional(),
  warmContainers: count,
  latencyMs: z.strictObject({ p50: reportedMs, p99: reportedMs }),
  errorRate: z.number().min(0).max(1),
  warmFunctions: z.array(z.string().max(MAX_FUNCTION_NAME_LENGTH)).max(MAX_WARM_FUNCTIONS),
  functions: z
    .array(z.strictObject({ fn: z.string().max(MAX_FUNCTION_NAME_LENGTH), idle: count, busy: count, coldStartMs: z.number().min(0).max(600_000).nullable() }))
    .max(MAX_REPORTED_FUNCTIONS)
    .optional(),
  functionsTotal: count.optional(),
});

/**
 * A report's median service time (Heartbeat.serviceMs), stored beside the report in
 * `service:<region>` and carried beside it in the change message; `reportedAt` names the report it
 * was written with, so one left by an earlier report is never taken for a later one's.
 */
export const serviceTimeSchema = z.strictObject({ reportedAt: epochMs, serviceMs: reportedMs });

export const overridesSchema = z.strictObject({
  drained: z.boolean(),
  weight: z.number().min(0).max(100).nullable(),
});

/** The most ejections in a row a stored ejection counts (an outlier detector's own count goes on). */
const MAX_EJECTION_COUNT = 1_000;
export const ejectionSchema = z.strictObject({ until: epochMs, count: z.number().int().min(1).max(MAX_EJECTION_COUNT), cause: shortText });

/**
 * An ejection as both registries store it: the count held to what readers take. A region failing
 * for days is ejected again each time its capped ejection ends, and past the 1,000th the whole
 * ejection was refused by every Redis reader (the region taken back) while the memory registry
 * kept it. The count only lengthens an ejection up to its cap, so nothing is lost by holding it.
 */
export function storedEjection(ejection: Ejection): Ejection {
  return { until: ejection.until, count: Math.min(ejection.count, MAX_EJECTION_COUNT), cause: ejection.cause.slice(0, MAX_SHORT_TEXT) };
}

export const functionSchema = z.strictObject({
  org: z.string().regex(/^[a-z0-9]{1,63}$/),
  fn: z.string().regex(/^[a-z0-9]+(-[a-z0-9]+)*$/).max(62),
  regions: z.array(regionIdText).max(64).nullable(),
  tier: z.enum(['standard', 'extended']),
  enabled: z.boolean(),
  /** Cold-start hedging opt-in; absent in records written before it existed (= off). */
  hedge: z.boolean().optional(),
});

/** A residency rule as written: 1 to 64 region ids. */
export const residencySchema = z.array(regionIdText).min(1).max(64);
/**
 * A rule as a backup carries it: also empty, an org allowed no region (exported from a registry
 * whose rule for it could not be read: RecordDecoder.residencyEntry), so a restore keeps it confined.
 */
export const backupResidencySchema = z.array(regionIdText).max(64);

export const domainSchema = z.strictObject({
  fn: z.string().regex(/^[a-z0-9]+(-[a-z0-9]+)*$/).max(62),
  org: z.string().regex(/^[a-z0-9]{1,63}$/),
});

export const eventSchema = z.strictObject({
  at: epochMs,
  region: regionIdText.nullable(),
  kind: z.enum(HEALTH_EVENT_KINDS),
  cause: z.string().max(MAX_EVENT_CAUSE_LENGTH),
});

/**
 * An event as any version writes one, whatever its kind: how a reader tells a later version's
 * event (a kind it does not know, perhaps with fields of its own) from a malformed entry. Only what
 * the log itself needs is checked; the event is skipped either way.
 */
const anyEventSchema = z.object({ at: epochMs, kind: z.string().regex(/^[a-z][a-z0-9_]{0,31}$/) });

/** How many kinds of later versions a reader names (once each); any beyond are skipped unsaid. */
export const MAX_UNKNOWN_EVENT_KINDS_SAID = 16;

export type Decoded<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

/** Parses and validates one stored JSON value. Never throws. */
export function decodeRecord<T>(schema: z.ZodType<T>, raw: string | null | undefined): Decoded<T> {
  if (raw === null || raw === undefined) return { ok: false, reason: 'missing' };
  if (raw.length > MAX_RECORD_BYTES) return { ok: false, reason: `record of ${raw.length} bytes exceeds ${MAX_RECORD_BYTES}` };
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return { ok: false, reason: 'not valid JSON' };
  }
  return decodeValue(schema, json);
}

/** Validates a value already parsed from JSON (a change message's entry). Never throws. */
export function decodeValue<T>(schema: z.ZodType<T>, json: unknown): Decoded<T> {
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { ok: false, reason: `${issue.path.join('.') || '(value)'}: ${issue.message}` };
  }
  return { ok: true, value: parsed.data };
}

/** The rule of an org whose stored rule cannot be read: no region (RecordDecoder.residencyEntry). */
const NO_REGION: ReadonlySet<RegionId> = new Set();

export function toFunctionRecord(value: z.infer<typeof functionSchema>): FunctionRecord {
  const record = { org: value.org, fn: value.fn, regions: value.regions === null ? null : new Set(value.regions), tier: value.tier, enabled: value.enabled };
  return value.hedge === true ? { ...record, hedge: true } : record;
}

export function fromFunctionRecord(record: FunctionRecord): z.infer<typeof functionSchema> {
  const value = { org: record.org, fn: record.fn, regions: record.regions === null ? null : [...record.regions].sort(), tier: record.tier, enabled: record.enabled };
  return record.hedge === true ? { ...value, hedge: true } : value;
}

/**
 * A function record as RedisRegistry stores it: how a restore, in either registry, tells an entry
 * it changed from one it wrote as it stood (RestoredChanges).
 */
/**
 * A heartbeat as it is written, checked as every reader checks it: one they would all refuse
 * (a NaN error rate, an in-flight count of 2.5) was stored, the write answered as done, and the
 * region went down for every router while its orchestrator saw nothing wrong. Refused here, the
 * write fails and says why. serviceMs travels beside the heartbeat, checked as its readers do.
 */
export function checkedHeartbeat(heartbeat: Heartbeat): Heartbeat {
  const { serviceMs, ...plain } = heartbeat;
  const decoded = decodeValue(heartbeatSchema, plain);
  const reason = !decoded.ok ? decoded.reason : serviceMs !== undefined && !serviceTimeSchema.shape.serviceMs.safeParse(serviceMs).success ? `serviceMs: ${String(serviceMs)} is no time the routers take` : null;
  if (reason !== null) throw new EdgeError('bad_request', `the heartbeat of ${uncheckedText(heartbeat.region)} would be refused by every router (${reason})`);
  return heartbeat;
}

export function storedFunction(record: FunctionRecord): string {
  return JSON.stringify(fromFunctionRecord(record));
}

/** Directory entries validated between two turns of the event loop (about 2 ms of work). */
export const DECODE_SLICE = 500;

/**
 * Calls `visit` for each entry of a stored hash, letting the event loop turn every DECODE_SLICE
 * entries: validating 20,000 functions takes 45–90 ms, which in one go is a pause of every request
 * the router holds; in slices, requests run between them.
 */
async function eachInTurns(hash: Record<string, string>, visit: (field: string, raw: string) => void): Promise<void> {
  let count = 0;
  for (const field of Object.keys(hash)) {
    visit(field, hash[field]!);
    if (++count % DECODE_SLICE === 0) await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Where a stored value was found, and why it was refused. */
export type RejectRecord = (where: string, reason: string) => void;

/** Longest text of an unchecked value a rejection quotes. */
const MAX_QUOTED_CHARS = 64;

/**
 * An unchecked value for a rejection's reason, without recursing into it: a string quoted (its
 * first MAX_QUOTED_CHARS characters), a number, boolean or null as written, anything else by its
 * kind. JSON.stringify or String on a value nested thousands deep overflows the stack.
 */
export function uncheckedText(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > MAX_QUOTED_CHARS ? `${value.slice(0, MAX_QUOTED_CHARS)}\u2026` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (value === undefined) return '(none)';
  return Array.isArray(value) ? '(an array)' : '(an object)';
}

/**
 * Decodes what a shared registry returns, entry by entry: a bad entry is reported through
 * `reject` (with where it was found) and left out; the others are kept. Pure: no I/O.
 */
export class RecordDecoder {
  /** The unknown event kinds already named (events() says each once, not at every read). */
  private readonly unknownKindsSaid = new Set<string>();

  constructor(
    private readonly known: ReadonlySet<RegionId>,
    private readonly reject: RejectRecord,
  ) {}

  /**
   * The log's events, newest first. An event of a kind this version does not know (written by a
   * later one during a rolling upgrade) is skipped, and named once per kind: the dashboard reads
   * the log every second, and naming it at each read would fill the log with one operator action.
   */
  events(raws: readonly string[]): HealthEvent[] {
    const decoded = this.eventsUnsaid(raws);
    decoded.say();
    return decoded.events;
  }

  /**
   * As events(), with the entries it skipped said only when `say` is called: a read that looks
   * again at a wider window of the log (RedisRegistry.readEvents) says each of them once, for the
   * window it answers with, not once per look.
   */
  eventsUnsaid(raws: readonly string[]): { events: HealthEvent[]; say: () => void } {
    const events: HealthEvent[] = [];
    const skipped: Array<{ malformed: string } | { kind: string }> = [];
    for (const item of raws) {
      const decoded = decodeRecord(eventSchema, item);
      if (decoded.ok) {
        events.push(decoded.value);
        continue;
      }
      const kind = this.unknownEventKind(item);
      skipped.push(kind === undefined ? { malformed: decoded.reason } : { kind });
    }
    const say = () => {
      for (const entry of skipped) {
        if ('malformed' in entry) this.reject('events', entry.malformed);
        else if (!this.unknownKindsSaid.has(entry.kind) && this.unknownKindsSaid.size < MAX_UNKNOWN_EVENT_KINDS_SAID) {
          this.unknownKindsSaid.add(entry.kind);
          this.reject('events', `kind ${JSON.stringify(entry.kind)} is not one this version knows (written by a newer one?): its events are skipped (said once per kind)`);
        }
      }
    };
    return { events, say };
  }

  /** The kind of an event well formed as any version writes one but of a kind this one does not know; undefined for anything else. */
  private unknownEventKind(raw: string): string | undefined {
    const decoded = decodeRecord(anyEventSchema, raw);
    if (!decoded.ok) return undefined;
    return (HEALTH_EVENT_KINDS as readonly string[]).includes(decoded.value.kind) ? undefined : decoded.value.kind;
  }

  heartbeat(raw: string, where: string): Heartbeat | undefined {
    return this.knownHeartbeat(decodeRecord(heartbeatSchema, raw), where);
  }

  /** A decoded heartbeat of a region this router knows; rejected (and undefined) otherwise. */
  private knownHeartbeat(decoded: Decoded<Heartbeat>, where: string): Heartbeat | undefined {
    if (!decoded.ok) {
      this.reject(where, decoded.reason);
      return undefined;
    }
    if (!this.known.has(decoded.value.region)) {
      this.reject(where, `unknown region ${decoded.value.region}`);
      return undefined;
    }
    return decoded.value;
  }

  /** One heartbeat per region, read from the keys `<key>:<region>` (`hb`: reports; `probe`: probe heartbeats). */
  heartbeats(regionIds: readonly RegionId[], raws: readonly (string | null)[], key: 'hb' | 'probe' = 'hb'): Map<RegionId, Heartbeat> {
    const heartbeats = new Map<RegionId, Heartbeat>();
    raws.forEach((raw, i) => {
      if (raw === null) return;
      const hb = this.heartbeat(raw, `${key}:${regionIds[i]}`);
      if (hb !== undefined && hb.region === regionIds[i]) heartbeats.set(hb.region, hb);
      else if (hb !== undefined) this.reject(`${key}:${regionIds[i]}`, `heartbeat names region ${hb.region}`);
    });
    return heartbeats;
  }

  /**
   * Each report with the median service time stored beside it (`service:<region>`, read in the
   * order of `regionIds`), where that was written with this very report (same `reportedAt`). A bad
   * one is refused with a reason and the report kept without it: the region still counts, routed
   * on its median request time as an earlier orchestrator's would be.
   */
  serviceTimes(reports: Map<RegionId, Heartbeat>, regionIds: readonly RegionId[], raws: readonly (string | null)[]): Map<RegionId, Heartbeat> {
    raws.forEach((raw, i) => {
      const region = regionIds[i]!;
      const report = reports.get(region);
      if (raw === null || report === undefined || report.source !== 'reporter') return;
      const decoded = decodeRecord(serviceTimeSchema, raw);
      if (!decoded.ok) return this.reject(`service:${region}`, decoded.reason);
      if (decoded.value.reportedAt === report.reportedAt) reports.set(region, { ...report, serviceMs: decoded.value.serviceMs });
    });
    return reports;
  }

  change(message: string): RegistryChange | undefined {
    // Same bound as a stored record: anyone who can PUBLISH could otherwise make every router parse megabytes.
    if (message.length > MAX_RECORD_BYTES) {
      this.reject('changes', `message of ${message.length} bytes exceeds ${MAX_RECORD_BYTES}`);
      return undefined;
    }
    let parsed: { v?: unknown; kind?: unknown; heartbeat?: unknown; ttlMs?: unknown; serviceMs?: unknown; [field: string]: unknown };
    try {
      parsed = JSON.parse(message) as typeof parsed;
    } catch {
      this.reject('changes', 'message is not valid JSON');
      return undefined;
    }
    // `null` is valid JSON: reading `.v` off it would throw inside ioredis's message event,
    // an uncaught exception that takes the whole router down.
    if (typeof parsed !== 'object' || parsed === null) {
      this.reject('changes', 'message is not a JSON object');
      return undefined;
    }
    if (typeof parsed.v !== 'number' || parsed.v > SCHEMA_VERSION) {
      this.reject('changes', `message schema version ${uncheckedText(parsed.v)} is not supported`);
      return undefined;
    }
    if (parsed.kind === 'heartbeat') {
      // Checked as it is: turning an unchecked value back into text (JSON.stringify, String) recurses
      // through it, and a message a few KB long nested thousands deep overflows the stack there,
      // an exception in ioredis's message event that would take down every subscriber at once.
      const hb = this.knownHeartbeat(decodeValue(heartbeatSchema, parsed.heartbeat ?? null), 'changes');
      if (hb === undefined) return undefined;
      // A probe heartbeat's TTL comes beside it (see RedisRegistry.writeHeartbeat); a bad one is left out.
      if (hb.source === 'probe') {
        const ttl = heartbeatSchema.shape.ttlMs.safeParse(parsed.ttlMs);
        return { kind: 'heartbeat', heartbeat: ttl.success && ttl.data !== undefined ? { ...hb, ttlMs: ttl.data } : hb };
      }
      // So does a report's median service time; a bad one is refused, the report kept without it.
      if (parsed.serviceMs === undefined) return { kind: 'heartbeat', heartbeat: hb };
      const service = decodeValue(serviceTimeSchema, { reportedAt: hb.reportedAt, serviceMs: parsed.serviceMs });
      if (service.ok) return { kind: 'heartbeat', heartbeat: { ...hb, serviceMs: service.value.serviceMs } };
      this.reject('changes', service.reason);
      return { kind: 'heartbeat', heartbeat: hb };
    }
    const kinds = ['overrides', 'ejections', 'functions', 'residency', 'domains', 'events', 'resync'] as const;
    const kind = kinds.find((k) => k === parsed.kind);
    if (kind === undefined) {
      this.reject('changes', `unknown change kind ${uncheckedText(parsed.kind)}`);
      return undefined;
    }
    if (kind === 'functions' || kind === 'residency' || kind === 'domains') return this.patch(kind, parsed) ?? { kind };
    return { kind };
  }

  regionHash<T>(name: string, hash: Record<string, string>, schema: Parameters<typeof decodeRecord<T>>[0]): Map<RegionId, T> {
    const out = new Map<RegionId, T>();
    for (const [region, raw] of Object.entries(hash)) {
      if (!this.known.has(region)) {
        this.reject(`${name}[${region}]`, `unknown region ${region}`);
        continue;
      }
      const decoded = decodeRecord(schema, raw);
      if (decoded.ok) out.set(region, decoded.value);
      else this.reject(`${name}[${region}]`, decoded.reason);
    }
    return out;
  }

  async functions(hash: Record<string, string>): Promise<Map<string, Map<string, FunctionRecord>>> {
    const out = new Map<string, Map<string, FunctionRecord>>();
    await eachInTurns(hash, (field, raw) => {
      const record = this.functionEntry(field, decodeRecord(functionSchema, raw));
      if (record === undefined) return;
      const byFn = out.get(record.org) ?? new Map<string, FunctionRecord>();
      byFn.set(record.fn, record);
      out.set(record.org, byFn);
    });
    return out;
  }

  async residency(hash: Record<string, string>): Promise<Map<string, ReadonlySet<RegionId>>> {
    const out = new Map<string, ReadonlySet<RegionId>>();
    await eachInTurns(hash, (org, raw) => {
      out.set(org, this.residencyEntry(org, decodeRecord(residencySchema, raw)));
    });
    return out;
  }

  async domains(hash: Record<string, string>): Promise<Map<string, FunctionRef>> {
    const out = new Map<string, FunctionRef>();
    await eachInTurns(hash, (host, raw) => {
      const ref = this.domainEntry(host, decodeRecord(domainSchema, raw));
      if (ref !== undefined) out.set(host, ref);
    });
    return out;
  }

  /**
   * One stored function, kept only if valid and stored under its own name. One deployed in a
   * region this router's regions file lacks is kept as it is: routing ranks configured regions only,
   * so it is served from the others (or answers no_healthy_region when it has none). Left out, it
   * answered 404 function_not_found on every router whose regions file had not yet caught up with
   * a region the function was deployed to, as in a rollout of a new region.
   */
  private functionEntry(field: string, decoded: Decoded<z.infer<typeof functionSchema>>): FunctionRecord | undefined {
    if (!decoded.ok) return void this.reject(`functions[${field}]`, decoded.reason);
    const value = decoded.value;
    if (functionKey(value.org, value.fn) !== field) return void this.reject(`functions[${field}]`, `record is for ${functionKey(value.org, value.fn)}`);
    return toFunctionRecord(value);
  }

  /**
   * An org's residency rule, never left out: a rule dropped would let routing use every region for
   * an org a legal constraint confines (fail open). A rule naming a region this router's regions
   * file lacks is kept as it is (routing never sends there: it ranks only configured regions; the
   * usual cause is a region added to rules before every router's regions file). One that cannot be
   * read allows no region (fail closed: the org's functions answer no_eligible_region until the
   * rule is written again), and is reported.
   */
  private residencyEntry(org: string, decoded: Decoded<z.infer<typeof residencySchema>>): ReadonlySet<RegionId> {
    if (!decoded.ok) {
      this.reject(`residency[${org}]`, `${decoded.reason}; the org is served from no region until its rule is written again`);
      return NO_REGION;
    }
    return new Set(decoded.value);
  }

  private domainEntry(host: string, decoded: Decoded<FunctionRef>): FunctionRef | undefined {
    if (!decoded.ok) return void this.reject(`domains[${host}]`, decoded.reason);
    return decoded.value;
  }

  /**
   * A directory write's change message (directory-patch.ts): its entry, validated as a read
   * validates it (an entry a read would drop is a deletion), and its revisions. Undefined when the
   * message carries none, or ones not well formed: the part is then read whole.
   */
  private patch(part: DirectoryPart, parsed: Record<string, unknown>): RegistryChange | undefined {
    const { prev, rev, field, value } = parsed;
    const revision = (r: unknown) => typeof r === 'string' && REVISION_PATTERN.test(r);
    if (!revision(rev) || !(prev === '' || revision(prev)) || typeof field !== 'string' || field.length > MAX_PATCH_FIELD_LENGTH || value === undefined) return undefined;
    const from = { prev: prev === '' ? null : (prev as string), rev: rev as string };
    // null: the entry was deleted. A value a read would drop (reported) is gone from the directory too.
    const entry = <T, E>(schema: z.ZodType<T>, keep: (decoded: Decoded<T>) => E | undefined): E | null =>
      value === null ? null : (keep(decodeValue(schema, value)) ?? null);
    switch (part) {
      case 'functions': {
        const slash = field.indexOf('/');
        if (slash < 0) return undefined;
        const record = entry(functionSchema, (decoded) => this.functionEntry(field, decoded));
        return { kind: 'patch', ...from, patch: { part, org: field.slice(0, slash), fn: field.slice(slash + 1), record } };
      }
      case 'residency':
        return { kind: 'patch', ...from, patch: { part, org: field, regions: entry(residencySchema, (decoded) => this.residencyEntry(field, decoded)) } };
      case 'domains':
        return { kind: 'patch', ...from, patch: { part, host: field, ref: entry(domainSchema, (decoded) => this.domainEntry(field, decoded)) } };
    }
  }
}

// Compile-time checks that the schemas and the interface types agree.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
export const schemaMatchesTypes: [
  Same<z.infer<typeof heartbeatSchema>['status'], Heartbeat['status']>,
  Same<z.infer<typeof overridesSchema>, RegionOverrides>,
  Same<z.infer<typeof ejectionSchema>, Ejection>,
  Same<z.infer<typeof eventSchema>['kind'], HealthEvent['kind']>,
  Same<z.infer<typeof domainSchema>, FunctionRef>,
] = [true, true, true, true, true];
