/**
 * The HealthRegistry role: the live state of the regions, shared by every router, fed by
 * regional orchestrators (heartbeats), probers and operators. Two implementations keep the same
 * contract: MemoryRegistry (one process, the embedded default) and RedisRegistry (shared).
 * The request path never calls this; it reads the snapshot a RegistryWatcher builds.
 */
import type { TicketKeyRing } from '../core/ticket-key-ring.js';
import type { FunctionRecord, FunctionRef, RegionId } from '../core/types.js';
import type { DirectoryPart, DirectoryPatch, DirectoryRevisions, HeldDirectory, ReadMode } from './directory-patch.js';

/** Status a heartbeat may carry. `down` comes only from probers (a reporter that is down is silent). */
export type ReportedStatus = 'up' | 'degraded' | 'draining' | 'down';

/** One region's self-report (from its orchestrator) or probe result. */
export interface Heartbeat {
  readonly region: RegionId;
  readonly status: ReportedStatus;
  /** Epoch ms when the reporter took the measurement. */
  readonly reportedAt: number;
  readonly source: 'reporter' | 'probe';
  /**
   * A probe heartbeat's TTL (ms) as written, stamped by writeHeartbeat: a router judges it by its
   * prober's pace, which only the prober knows. Absent from reports (routers know the reporters'
   * TTL, and routers of earlier versions, reading `hb:<region>` with a strict schema, would refuse
   * a report carrying it), from probe heartbeats written before it existed and from a router's own
   * (applied straight to its watcher): the reader's default.
   */
  readonly ttlMs?: number;
  readonly inFlight: number;
  /** Limits the region reports (may differ from regions.json after autoscaling); absent = config. */
  readonly capacity?: { readonly soft: number; readonly hard: number };
  readonly warmContainers: number;
  /** Of the requests served, from arrival to the answer's end (the queue wait included). */
  readonly latencyMs: { readonly p50: number; readonly p99: number };
  /**
   * A report's median service time (ms): from the moment a request is given a container (or a slot
   * one starts in for it) to the answer's end, the wait in the region's queue left out; what
   * deadline admission multiplies a queue by. Optional: orchestrators of earlier versions send
   * only `latencyMs`. Not in `hb:<region>` nor in the change message's heartbeat, which routers of
   * earlier versions read with a strict schema: RedisRegistry stores it beside them.
   */
  readonly serviceMs?: number;
  readonly errorRate: number;
  /** `org/fn` of functions with a warm container. */
  readonly warmFunctions: readonly string[];
  /**
   * Per function it holds containers for, most recently used first and at most
   * MAX_REPORTED_FUNCTIONS of them (a region may hold thousands): for cold-start-aware routing.
   */
  readonly functions?: readonly ReportedFunction[];
  /** How many functions the region holds containers for (the list above may be cut short). */
  readonly functionsTotal?: number;
}

/** One function's containers in a heartbeat. */
export interface ReportedFunction {
  /** `org/fn`. */
  readonly fn: string;
  readonly idle: number;
  readonly busy: number;
  /** Median of the region's recent cold starts for it, ms; null when it has none. */
  readonly coldStartMs: number | null;
}

/** Bound on a reported request or service time (an hour): the tiers end long before. */
export const MAX_REPORTED_MS = 3_600_000;

/** Bound on the TTL a heartbeat may carry (a day): anything longer is stamped as this. */
export const MAX_HEARTBEAT_TTL_MS = 86_400_000;

/**
 * The heartbeat as stored: a probe heartbeat stamped with the TTL it was written with, a report never
 * (Heartbeat.ttlMs); a probe heartbeat without a service time (it serves nothing, and where it is
 * copied to `hb:<region>` routers of earlier versions would refuse one).
 */
export function withTtl(heartbeat: Heartbeat, ttlMs: number): Heartbeat {
  const { ttlMs: _given, ...plain } = heartbeat;
  if (heartbeat.source !== 'probe') return plain;
  const { serviceMs: _none, ...probe } = plain;
  return { ...probe, ttlMs: Math.min(Math.max(1, Math.round(ttlMs)), MAX_HEARTBEAT_TTL_MS) };
}

/** Bound on a heartbeat's function list: the payload stays small whatever the region holds. */
export const MAX_REPORTED_FUNCTIONS = 500;

/**
 * Bounds on a heartbeat's warm-function list, which a region holding thousands of functions warm
 * could otherwise push past what every router accepts (records.ts: 1 MiB a record, this many
 * names): the heartbeat refused, the busy region would read as down. At most this many names, of
 * at most this much JSON (half the record limit).
 */
export const MAX_WARM_FUNCTIONS = 100_000;
export const MAX_WARM_FUNCTIONS_JSON_BYTES = 512 * 1024;
/** Longest `org/fn` name a heartbeat may carry. */
export const MAX_FUNCTION_NAME_LENGTH = 128;

/** Operator settings per region, kept apart from health (an operator drain is not a failure). */
export interface RegionOverrides {
  readonly drained: boolean;
  /** null = the weight from regions.json. */
  readonly weight: number | null;
}

/** Passive outlier detection's verdict on a region. */
export interface Ejection {
  readonly until: number;
  /** How many times in a row it has been ejected (the next ejection lasts longer). */
  readonly count: number;
  readonly cause: string;
}

/**
 * The event log's kinds this version writes and shows. Routers before residency_set and
 * residency_cleared refused an event of a kind they did not know as a malformed entry (left out of
 * what they show, and logged at each read); routers since skip it, said once per kind
 * (records.ts), so a later version may add kinds without waiting for every router to be upgraded.
 */
export const HEALTH_EVENT_KINDS = ['up', 'down', 'degraded', 'draining', 'drained', 'undrained', 'weight', 'ejected', 'deployed', 'undeployed', 'domain', 'residency_set', 'residency_cleared'] as const;

export type HealthEventKind = (typeof HEALTH_EVENT_KINDS)[number];

export interface HealthEvent {
  readonly at: number;
  readonly region: RegionId | null;
  readonly kind: HealthEventKind;
  readonly cause: string;
}

/** One org's residency rule as read, for a write that must hold only under it (putFunctionUnderResidency). */
export interface StampedResidency {
  /** The regions the org may use; null when it has no rule, or one no reader would accept (a rule routers drop is none to them). */
  readonly allowed: ReadonlySet<RegionId> | null;
  /**
   * The rule as stored, opaque: equal while the stored rule is, whatever was written in between (a
   * rule set and set back reads as unchanged, rightly: the check still holds).
   */
  readonly stamp: string;
}

/** Everything stored, as read in one go. Entries that failed validation are left out (and counted). */
export interface RegistryState {
  /** The regions' own reports (their orchestrators' reporters), newest per region. */
  readonly heartbeats: ReadonlyMap<RegionId, Heartbeat>;
  /**
   * Probers' heartbeats, newest per region, kept apart from the reports: a region may have both,
   * and a probe `up` must not replace its orchestrator's `draining` (or its loads). The snapshot
   * combines them (build-snapshot.ts).
   */
  readonly probeHeartbeats: ReadonlyMap<RegionId, Heartbeat>;
  readonly overrides: ReadonlyMap<RegionId, RegionOverrides>;
  readonly ejections: ReadonlyMap<RegionId, Ejection>;
  readonly functions: ReadonlyMap<string, ReadonlyMap<string, FunctionRecord>>;
  readonly residency: ReadonlyMap<string, ReadonlySet<RegionId>>;
  readonly domains: ReadonlyMap<string, FunctionRef>;
  /**
   * Names this body of data; null when none has been stamped, or when the data was lost (a Redis
   * that restarted empty). Routers remember it, so they can tell lost data from undeployed
   * functions (see registry/generation.ts).
   */
  readonly generation: string | null;
  /** Each directory part's revision as read (directory-patch.ts). */
  readonly revisions: DirectoryRevisions;
  /**
   * The directory parts this read left out, because the reader held them at their current
   * revision (readState's `held`): their maps here are empty, and the reader keeps its own.
   */
  readonly unchanged: ReadonlySet<DirectoryPart>;
  /**
   * The parts this read could not read (a key of the wrong Redis type, found so before or between
   * a paged read's pages), each with why (Redis's WRONGTYPE): their maps here are empty, and are not
   * what the registry holds. A refusal that says nothing of the key (LOADING, BUSY …) fails the read.
   * A reader keeps what it last read of them (residency is a legal constraint: rules read as none
   * would serve every org from every region); a reader that has read none of the directory routes by
   * none of it (registry-watcher.ts); a backup or an explanation refuses (the CLI). `generation`
   * here is null without being absent: no sign of lost data (registry-watcher.ts keeps the one it knew).
   */
  readonly unreadable: ReadonlyMap<UnreadablePart, string>;
}

/**
 * The parts of a registry state a read may find unreadable and a reader keeps as last read: the
 * directory's, the overrides, and the generation.
 */
export type UnreadablePart = DirectoryPart | 'overrides' | 'generation';

/** Both kinds of heartbeat, as RegistryState holds them. */
export type AllHeartbeats = Pick<RegistryState, 'heartbeats' | 'probeHeartbeats'>;

/**
 * What an operator or a deployment put in the registry and must never lose: the function
 * directory, residency, custom domains and region overrides. Heartbeats, ejections and events
 * come back, or age out, on their own.
 */
export type DurableState = Pick<RegistryState, 'functions' | 'residency' | 'domains' | 'overrides'>;

/**
 * How `restore` treats what is there already. `missing-only`: a router's re-seed after a loss,
 * written only where no generation (or a fresh `seed:` one) stands, keeping every entry present;
 * `keep-existing`: an import that adds the entries missing, whatever the generation; `overwrite`:
 * an import that replaces them.
 */
export type RestoreMode = 'missing-only' | 'keep-existing' | 'overwrite';

/**
 * What a restore changed, as routers read it: each entry it wrote where none stood or over a
 * different one (an entry written as it stood, or a residency rule of the same regions, changed
 * nothing). For the event log: an import logs each change as the operator's own change logs it.
 */
export interface RestoredChanges {
  readonly functions: readonly FunctionRecord[];
  readonly residency: ReadonlyMap<string, ReadonlySet<RegionId>>;
  readonly domains: ReadonlyMap<string, FunctionRef>;
  /** Per region, the overrides written and those that stood (null: none a reader takes, which reads as the defaults). */
  readonly overrides: ReadonlyMap<RegionId, { readonly before: RegionOverrides | null; readonly after: RegionOverrides }>;
  /**
   * The generation that stands after it: the one given, or the one that stood where an import
   * wrote nothing (every entry stood already) into a stamped registry. Such an import stamps
   * nothing and moves no revision: a new generation sends every router to read the whole
   * directory again, for no change.
   */
  readonly generation: string;
}

/** The overrides a region has with none stored: not drained, the regions file's weight. */
export const DEFAULT_OVERRIDES: RegionOverrides = { drained: false, weight: null };

/** Whether a residency rule reads the same as another: the same regions, whatever their order. */
export function sameRegions(a: ReadonlySet<RegionId>, b: ReadonlySet<RegionId> | null | undefined): boolean {
  return b !== null && b !== undefined && a.size === b.size && [...a].every((region) => b.has(region));
}

/**
 * What changed; watchers re-read only that part (a heartbeat change carries the heartbeat, a
 * directory write the entry it wrote and the part's revisions before and after it).
 */
export type RegistryChange =
  | { readonly kind: 'heartbeat'; readonly heartbeat: Heartbeat }
  | { readonly kind: 'patch'; readonly prev: string | null; readonly rev: string; readonly patch: DirectoryPatch }
  | { readonly kind: 'overrides' | 'ejections' | 'functions' | 'residency' | 'domains' | 'events' }
  | { readonly kind: 'resync' };

export interface HealthRegistry {
  readonly kind: 'memory' | 'redis';
  /**
   * Stores a heartbeat that counts for `ttlMs` and tells watchers, atomically. A probe heartbeat
   * (`source: 'probe'`) is kept apart from the region's reports: neither replaces the other.
   */
  writeHeartbeat(heartbeat: Heartbeat, ttlMs: number): Promise<void>;
  setOverrides(region: RegionId, overrides: RegionOverrides): Promise<void>;
  /**
   * Changes only the given fields of a region's overrides (the others as stored, or the defaults:
   * not drained, config weight), atomically: concurrent changes of different fields all stand.
   */
  updateOverrides(region: RegionId, change: Partial<RegionOverrides>): Promise<void>;
  setEjection(region: RegionId, ejection: Ejection | null): Promise<void>;
  putFunction(record: FunctionRecord): Promise<void>;
  /** Writes the function only if the directory has none of that name; true if it wrote (orchestrators re-asserting what they host). */
  assertFunction(record: FunctionRecord): Promise<boolean>;
  deleteFunction(org: string, fn: string): Promise<boolean>;
  /**
   * Writes the function only while its org's residency rule still reads as `stamp` (readResidency's),
   * checked and written in one atomic step; false, writing nothing, when the rule changed since. A
   * deploy checks its regions against the rule it read and writes with this, so a residency set
   * cannot land between the check and the write (operator-actions.ts deployFunction).
   */
  putFunctionUnderResidency(record: FunctionRecord, stamp: string): Promise<boolean>;
  setResidency(org: string, regions: readonly RegionId[] | null): Promise<void>;
  /** One org's residency rule, with the stamp a conditional write compares: a cheap read for checks before a write. */
  readResidency(org: string): Promise<StampedResidency>;
  putDomain(host: string, ref: FunctionRef): Promise<void>;
  deleteDomain(host: string): Promise<boolean>;
  /** Appends to the capped event log. With `onceKey`, only the first caller (across all routers) appends. */
  appendEvent(event: HealthEvent, onceKey?: string): Promise<boolean>;

  /**
   * The TLS session-ticket key ring every router shares (ticket-keys.ts), after applying
   * `nextTicketRing`'s rule to the offer `fresh` by the registry's clock: the stored ring, with
   * `fresh` staged as `next` if nothing was, or rotated when its key is `rotateEveryMs` old.
   * Stored atomically (one winner among concurrent callers).
   */
  shareTicketKeys(fresh: string, rotateEveryMs: number): Promise<TicketKeyRing>;

  /** Stamps `candidate` as the generation if none is stamped; resolves with the one that stands. */
  stampGeneration(candidate: string): Promise<string>;
  /**
   * Writes durable state (each entry per `mode`), then stamps `generation`, and says what that
   * changed (in the same atomic step). `missing-only` (a re-seed) writes only where no generation,
   * or a `seed:` one, stands; null when it wrote nothing for that. An import that changed nothing
   * in a stamped registry stamps nothing (RestoredChanges.generation).
   */
  restore(state: DurableState, generation: string, mode: RestoreMode): Promise<RestoredChanges | null>;

  /**
   * Everything stored, in one consistent read. With `held`, the directory parts held at the
   * revision they still have (and the generation unchanged) are left out (RegistryState.unchanged).
   * `paged`: large parts may be read a page at a time (ReadMode); `atomic` (default): one view.
   */
  readState(held?: HeldDirectory, mode?: ReadMode): Promise<RegistryState>;
  /** Reports and probe heartbeats: the cheap read a watcher polls to notice silence and stay in contact. */
  readAllHeartbeats(): Promise<AllHeartbeats>;
  readOverrides(): Promise<ReadonlyMap<RegionId, RegionOverrides>>;
  readEvents(limit: number): Promise<HealthEvent[]>;
  /** Push notifications of changes; resolves once subscribed. The returned function unsubscribes. */
  subscribe(onChange: (change: RegistryChange) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/** The calls that reach the store (all but subscribe and close): for wrappers that forward or guard them. */
export const STORE_CALLS = [
  'writeHeartbeat',
  'setOverrides',
  'updateOverrides',
  'setEjection',
  'putFunction',
  'putFunctionUnderResidency',
  'assertFunction',
  'deleteFunction',
  'setResidency',
  'putDomain',
  'deleteDomain',
  'appendEvent',
  'shareTicketKeys',
  'stampGeneration',
  'restore',
  'readState',
  'readAllHeartbeats',
  'readOverrides',
  'readResidency',
  'readEvents',
] as const satisfies readonly (keyof HealthRegistry)[];

/** Capped length of the event log. */
export const EVENT_LOG_LIMIT = 1_000;

/** Longest event cause every reader accepts (records.ts); a longer one is cut to it when written. */
export const MAX_EVENT_CAUSE_LENGTH = 256;

/**
 * The event as stored: a cause over the limit cut, marked with an ellipsis. Causes name what they
 * are about, and a custom domain alone may be 253 characters: `<host> → <org>/<fn> (admin API)`
 * went over, and every Redis reader then dropped the event as malformed (the write's only trace).
 */
export function storedEvent(event: HealthEvent): HealthEvent {
  if (event.cause.length <= MAX_EVENT_CAUSE_LENGTH) return event;
  return { ...event, cause: `${event.cause.slice(0, MAX_EVENT_CAUSE_LENGTH - 1)}…` };
}

export const functionKey = (org: string, fn: string): string => `${org}/${fn}`;
