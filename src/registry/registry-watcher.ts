/**
 * Keeps a router's in-memory RegistrySnapshot current: push (registry change notifications)
 * for speed, a heartbeat poll for liveness and a periodic reconcile as the safety net. Directory
 * writes arrive as entries and are applied without a read; reads leave out the directory parts
 * whose revision this watcher holds (directory-patch.ts). The request path only reads
 * `watcher.snapshot`; nothing here runs per request.
 *
 * Fail-static: heartbeat age is judged against the last contact with the registry, so when the
 * registry goes silent every region keeps its last-known status. Staleness is exposed through
 * `status()` and events; the snapshot resyncs as soon as the registry answers again.
 *
 * Fail-static covers a registry that answers with nothing, too: when the data's generation
 * vanishes (a Redis that restarted empty), the watcher keeps the last-known functions, domains,
 * residency and overrides, and writes them back (generation.ts) — unless they are a copy the
 * cluster primary held (`LastKnownState.heldCopyAt`), which it routes on but never writes back.
 * And a registry that answers a part it cannot read (RegistryState.unreadable: a key of the wrong
 * Redis type): that part is kept as last read, never taken as empty (residency fails closed), and
 * with none read yet the directory is not routed by at all (holdBack).
 */
import { DEFAULT_PROBE_INTERVAL_MS, DEFAULT_PROBE_TIMEOUT_MS } from './probe-defaults.js';
import { probeHeartbeatTtlMs } from './prober.js';
import { MAX_EJECTION_MS, type RegionConfig, type RegionId, type RegionStatus, type RegistrySnapshot } from '../core/types.js';
import { buildSnapshot, isFresh, regionStatuses, type SnapshotClock } from './build-snapshot.js';
import type { Ejection, HealthEvent, HealthRegistry, Heartbeat, RegistryChange, RegistryState, UnreadablePart } from './health-registry.js';
import { judgeGeneration, newGeneration, RESTORE_PREFIX, type GenerationVerdict } from './generation.js';
import { staticSnapshot } from './static-snapshot.js';
import { DIRECTORY_PARTS, NO_REVISIONS, applyPatch, chainVerdict, type DirectoryPart, type HeldDirectory } from './directory-patch.js';
import { thrownText } from '../core/errors.js';
import { monotonicNow } from '../core/monotonic-clock.js';

export type WatcherEvent =
  | { readonly type: 'synced'; readonly version: number }
  | { readonly type: 'stale'; readonly sinceMs: number; readonly error: string }
  /** The first answer after `stale`: emitted synchronously before `status().stale` turns false. */
  | { readonly type: 'recovered'; readonly staleForMs: number }
  /**
   * `firstHeard`: news to this process only, not a health change (the region's first heartbeat
   * here, or the first this process could judge by its arrival, just after its first sight):
   * written to no event log, and lifting no ejection.
   */
  | { readonly type: 'transition'; readonly region: RegionId; readonly from: RegionStatus; readonly to: RegionStatus; readonly firstHeard?: true }
  | { readonly type: 'error'; readonly error: string }
  /**
   * The registry's data vanished: routing keeps the last-known state while it is re-seeded, or,
   * when that state is a held copy (`heldCopyAt` set), without writing it back.
   */
  | { readonly type: 'data-lost'; readonly generation: string; readonly heldCopyAt: number | null }
  /** The registry holds its data again (re-seeded by this router or another). */
  | { readonly type: 'data-restored'; readonly lostForMs: number }
  | { readonly type: 'restore-failed'; readonly error: string }
  /** A different generation was put in place on purpose (restore or import elsewhere): taken as is. */
  | { readonly type: 'data-replaced'; readonly from: string; readonly to: string }
  /** Unable to read the registry, this watcher took another's last-known state (`seed`), as of `contactAt`. */
  | { readonly type: 'seeded'; readonly contactAt: number; readonly heldCopyAt: number | null }
  /**
   * Routing on a held copy, this watcher found the emptied registry holding data again (entries
   * written since the loss, an orchestrator's re-assertion): it routes by the registry's, dropping the copy.
   * (Another router's restore or an import is `data-restored` or `data-replaced`, as for any watcher.)
   */
  | { readonly type: 'held-copy-dropped'; readonly heldCopyAt: number; readonly generation: string | null };

/**
 * What a watcher last knew of the registry, to hand to a watcher that cannot read it (a cluster
 * worker started during a Redis outage: see cluster/registry-seed.ts). `state` carries the
 * heartbeats it holds; `contactAt` is when it last heard from the registry, the clock its
 * heartbeats are judged by while the registry stays silent (fail-static).
 */
export interface LastKnownState {
  readonly state: RegistryState;
  readonly contactAt: number;
  /** When the directory in `state` was last read whole from the registry. */
  readonly lastFullSyncAt: number | null;
  /**
   * Null when this is a live view: what a running watcher read (itself, or the live sibling it was
   * seeded from), kept current since. Otherwise when the cluster primary took the copy it held for
   * a worker that found no sibling able to answer (registry-seed.ts): a copy that may be older than
   * the registry's data, since nobody applied the changes made after it (possibly from an earlier
   * outage, every worker having died at once). Routed on, never written back to a registry found
   * without its data: that would bring back what was removed since, for every router.
   */
  readonly heldCopyAt: number | null;
}

export interface RegistryWatcherOptions {
  readonly registry: HealthRegistry;
  readonly regions: readonly RegionConfig[];
  /**
   * `start` tries a failed first read again, this many times 100 ms apart (default 10), before it
   * resolves: a registry slow for a moment at start must not leave the directory unread (every
   * function answered 503 registry_unreachable) until the next poll.
   */
  readonly startupReadRetries?: number;
  /** A heartbeat older than this means the region is down (default 3,000 ms). */
  readonly heartbeatTtlMs?: number;
  /**
   * The same for probe heartbeats, one probe apart (prober.ts probeHeartbeatTtlMs; default: at the
   * prober's default pace). Both are defaults, for heartbeats that carry no TTL of their own.
   */
  readonly probeHeartbeatTtlMs?: number;
  /** Heartbeat poll: liveness of the registry and safety net for lost pushes (default 500 ms). */
  readonly pollMs?: number;
  /**
   * Reconcile: a read of everything whose revision changed (default 10,000 ms): of the directory,
   * usually nothing (directory-patch.ts).
   */
  readonly reconcileMs?: number;
  /**
   * A read of the whole directory whatever its revisions (default 300,000 ms): for writes that
   * change no revision, by hand (redis-cli) or by routers of a version before revisions.
   */
  readonly unconditionalReadMs?: number;
  /** After an outage, how long old heartbeats still count (default TTL + 2,000 ms, the reporters' longest reconnect backoff). */
  readonly recoveryGraceMs?: number;
  /** Silence from the registry after which the snapshot is called stale (default 1,500 ms). */
  readonly staleAfterMs?: number;
  /** The wall clock (default Date.now): heartbeat times, event times, `contactAt`, compared with other machines'. */
  readonly now?: () => number;
  /**
   * The clock durations are measured on (default monotonicNow): a step of the wall clock moves
   * neither the staleness, the recovery grace nor the unconditional read's period. On Date.now()
   * an NTP step back of X held the recovery grace X longer (a region dead meanwhile stayed up) and
   * kept an outage from being called stale for X; a step forward called a live registry stale.
   */
  readonly elapsed?: () => number;
  readonly onEvent?: (event: WatcherEvent) => void;
}

export interface WatcherStatus {
  readonly stale: boolean;
  /** Epoch ms of the last successful read or received change; null before the first. */
  readonly contactAt: number | null;
  readonly staleForMs: number;
  readonly version: number;
  readonly lastFullSyncAt: number | null;
  /** The registry's data generation this router trusts; null until stamped or read. */
  readonly generation: string | null;
  /** Epoch ms since when the registry has been found without its data (null: it has it). */
  readonly dataLostAt: number | null;
  /** Set while routing on a copy the cluster primary held, taken then (LastKnownState.heldCopyAt): it is not written back. */
  readonly heldCopyAt: number | null;
  /**
   * The parts the last read could not read (RegistryState.unreadable): routed by as last read, or,
   * a directory part before any directory was read, the directory not routed by at all
   * (directoryUnread); the generation, no loss of data judged until it reads (withKnownGeneration).
   */
  readonly unreadableParts: readonly UnreadablePart[];
}

/** The order status() names unreadable parts in. */
const UNREADABLE_ORDER: readonly UnreadablePart[] = [...DIRECTORY_PARTS, 'overrides', 'generation'];

const EMPTY_STATE: RegistryState = {
  generation: null,
  heartbeats: new Map(),
  probeHeartbeats: new Map(),
  overrides: new Map(),
  ejections: new Map(),
  functions: new Map(),
  residency: new Map(),
  domains: new Map(),
  revisions: NO_REVISIONS,
  unchanged: new Set(),
  unreadable: new Map(),
};

/** Most directory change messages kept while a read is under way (more: the parts are read again). */
const MAX_HELD_PATCHES = 10_000;

export class RegistryWatcher {
  private current: RegistrySnapshot;
  private state: RegistryState = EMPTY_STATE;
  /** Newest report per region (RegistryState.heartbeats). */
  private heartbeats = new Map<RegionId, Heartbeat>();
  /** Newest probe heartbeat per region, apart from the reports: the snapshot combines the two. */
  private probeHeartbeats = new Map<RegionId, Heartbeat>();
  /** Ejections this process decided (applyEjection), kept apart from the registry's: they hold here whatever the registry took. */
  private ownEjections = new Map<RegionId, Ejection>();
  /** Per region, how its reports arrived here (noteArrival, agedFrom); probeArrivals: its probe heartbeats. */
  private readonly reportArrivals = new Map<RegionId, Arrivals>();
  private readonly probeArrivals = new Map<RegionId, Arrivals>();
  /** Regions whose first credited arrival (noteArrival) came since the last rebuild: a flip then is firstHeard. */
  private readonly firstCredited = new Set<RegionId>();
  /** Each shared ejection as first read here, with the end this process holds it to (sharedEjectionsHeld). */
  private readonly ejectionsRead = new Map<RegionId, { until: number; count: number; heldUntil: number }>();
  private contactAt: number | null = null;
  /** `contactAt` on the elapsed clock: what staleness is measured from (null: no contact of this process's own). */
  private contactElapsedAt: number | null = null;
  private lastFullSyncAt: number | null = null;
  private generation: string | null = null;
  private dataLostAt: number | null = null;
  /**
   * LastKnownState.heldCopyAt of the state routed on: set by a seed from a held copy, cleared by the
   * first read that finds the registry's data (a generation not lost, or a directory not empty).
   */
  private heldCopyAt: number | null = null;
  private synced = false;
  private stale = true;
  private version = 0;
  private statuses: RegionStatus[];
  private timers: NodeJS.Timeout[] = [];
  private unsubscribe: (() => Promise<void>) | undefined;
  private fullReadPending: Promise<void> | undefined;
  private fullReadAgain = false;
  private readsStarted = 0;
  /** The generation the last successful read found (undefined: none read yet), for conditional reads. */
  private readGeneration: string | null | undefined;
  /** Directory parts the next read takes whole, whatever their revision (a change that did not chain). */
  private readonly partsToRead = new Set<DirectoryPart>(DIRECTORY_PARTS);
  private unconditionalReadAt = 0;
  /** The parts the last read could not read (RegistryState.unreadable). */
  private unreadable: ReadonlyMap<UnreadablePart, string> = new Map();
  /** The last read was not taken: it could not read a directory part, and none was held (holdBack). */
  private directoryHeldBack = false;
  /** Directory change messages that came while a read was under way: applied after it. */
  private heldPatches: Extract<RegistryChange, { kind: 'patch' }>[] = [];
  private readInFlight = false;
  private readonly resyncWaiters = new Set<{ after: number; done: (ok: boolean) => void }>();
  private polling = false;
  private stopped = false;
  private announcedNoContact = false;
  /** A call failed since the last full read: the registry may have restarted (perhaps empty). */
  private troubleSinceFullRead = false;
  /** Why the last call since the last contact failed: what `stale` says, when the clock notices first. */
  private troubleSinceContact: string | undefined;
  private frozenAt = 0;
  /** When the recovery grace ends, on the elapsed clock. */
  private frozenUntil = 0;
  private readonly ttlMs: number;
  private readonly probeTtlMs: number;
  private readonly staleAfterMs: number;
  private readonly recoveryGraceMs: number;
  private readonly now: () => number;
  private readonly elapsed: () => number;

  constructor(private readonly options: RegistryWatcherOptions) {
    this.ttlMs = options.heartbeatTtlMs ?? 3_000;
    // Probe heartbeats that carry no TTL (written by a version before Heartbeat.ttlMs) are taken
    // to come at the prober's default pace.
    this.probeTtlMs = options.probeHeartbeatTtlMs ?? Math.max(this.ttlMs, probeHeartbeatTtlMs(DEFAULT_PROBE_INTERVAL_MS, DEFAULT_PROBE_TIMEOUT_MS));
    this.staleAfterMs = options.staleAfterMs ?? 1_500;
    this.recoveryGraceMs = options.recoveryGraceMs ?? this.ttlMs + 2_000;
    this.now = options.now ?? Date.now;
    this.elapsed = options.elapsed ?? monotonicNow;
    // Until the registry answers, route to every configured region (failover sorts out the dead),
    // and say that the directory is still unknown: an unlisted function is not a missing one yet.
    this.current = { ...staticSnapshot(options.regions), directoryUnread: true };
    this.statuses = options.regions.map(() => 'up');
  }

  /** The snapshot the request path reads: replaced whole, never mutated. */
  get snapshot(): RegistrySnapshot {
    return this.current;
  }

  status(): WatcherStatus {
    const now = this.now();
    return {
      stale: this.stale,
      contactAt: this.contactAt,
      // A seeded watcher's contact was another process's: on the wall clock, the one it shares.
      staleForMs: !this.stale ? 0 : this.contactElapsedAt !== null ? this.silentForMs() : now - (this.contactAt ?? now),
      version: this.version,
      lastFullSyncAt: this.lastFullSyncAt,
      generation: this.generation,
      dataLostAt: this.dataLostAt,
      heldCopyAt: this.heldCopyAt,
      unreadableParts: UNREADABLE_ORDER.filter((part) => this.unreadable.has(part)),
    };
  }

  /** Subscribes, reads everything once and starts the timers. Never throws: a registry that is down is retried. */
  async start(): Promise<void> {
    const pollMs = this.options.pollMs ?? 500;
    this.timers.push(setInterval(() => void this.poll(), pollMs));
    this.timers.push(setInterval(() => this.reconcile(), this.options.reconcileMs ?? 10_000));
    this.timers.push(setInterval(() => this.tick(), Math.min(250, pollMs)));
    for (const t of this.timers) t.unref();
    try {
      this.unsubscribe = await this.options.registry.subscribe((change) => this.onChange(change));
    } catch (err) {
      this.markTrouble(err);
    }
    await this.fullRead();
    // Not for a read held back (holdBack): the registry answered, and its key will not mend in a second.
    for (let retries = this.options.startupReadRetries ?? 10; !this.synced && !this.directoryHeldBack && !this.stopped && retries > 0; retries--) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      await this.fullRead();
    }
  }

  /**
   * Reads the whole registry now; resolves true once the snapshot includes every write that
   * finished before the call (an operator action answers only after this, in every worker), or
   * false when that read failed.
   */
  resync(): Promise<boolean> {
    // Waits for a read that started after this call (not one already under way, which may have
    // missed the write), without waiting for every read that more changes might queue after it.
    return new Promise((resolve) => {
      if (this.stopped) return resolve(false);
      this.resyncWaiters.add({ after: this.readsStarted + 1, done: resolve });
      void this.fullRead();
    });
  }

  /** A heartbeat from this process (e.g. its own prober) — applied even while the registry is unreachable. */
  applyHeartbeat(hb: Heartbeat): void {
    if (!this.options.regions.some((r) => r.id === hb.region) || this.fromTheFuture(hb)) return;
    if (this.takeHeartbeat(hb)) this.rebuild();
  }

  /**
   * An ejection this process decided, or (null) lifted — applied at once, and even while the
   * registry is unreachable, as applyHeartbeat is. Known only through the registry, a router
   * whose Redis was away (or slow to echo the write) went on sending every request first to the
   * region it had just ejected: a POST that region then reset was answered 502, never moved.
   */
  applyEjection(region: RegionId, ejection: Ejection | null): void {
    if (!this.options.regions.some((r) => r.id === region)) return;
    if (ejection === null) this.ownEjections.delete(region);
    else this.ownEjections.set(region, ejection);
    this.rebuild();
  }

  /** What this watcher knows, once it has read the registry (or been seeded); undefined before. */
  lastKnown(): LastKnownState | undefined {
    if (!this.synced || this.contactAt === null) return undefined;
    return {
      // The registry's ejections only: this process's own are its own outlier decisions.
      state: { ...this.state, generation: this.generation, heartbeats: this.heartbeats, probeHeartbeats: this.probeHeartbeats },
      contactAt: this.contactAt,
      lastFullSyncAt: this.lastFullSyncAt,
      // A held copy stays one whoever passes it on, until the registry has been read.
      heldCopyAt: this.heldCopyAt,
    };
  }

  /**
   * Takes another watcher's last-known state while this one has read nothing: it then routes as
   * that one does, stale as that one is (its heartbeats judged as of the same last contact), instead
   * of answering every function 503 until the registry answers. Refused (false) once this watcher
   * has read the registry itself, or stopped. Its first read after the seed is a whole one, and a
   * registry found without its data is written back from the seed, as the watcher it came from would
   * — unless the seed is a held copy (`heldCopyAt`): see checkGeneration.
   */
  seed(known: LastKnownState): boolean {
    if (this.synced || this.stopped) return false;
    this.state = { ...known.state, unchanged: new Set() };
    this.generation = known.state.generation;
    this.heldCopyAt = known.heldCopyAt;
    this.mergeHeartbeats(known.state.heartbeats);
    this.mergeHeartbeats(known.state.probeHeartbeats);
    this.contactAt = known.contactAt;
    // Another process's contact, on the wall clock they share: silence is measured from it, not from this one's own.
    this.contactElapsedAt = null;
    // The directory held was read then (by another): what status() and /readyz report, as that watcher does.
    this.lastFullSyncAt = known.lastFullSyncAt ?? known.contactAt;
    this.stale = true;
    this.announcedNoContact = true;
    // Never read here: the next poll that succeeds reads everything (readGeneration stays undefined).
    this.troubleSinceFullRead = true;
    this.synced = true;
    this.rebuild(true);
    this.options.onEvent?.({ type: 'seeded', contactAt: known.contactAt, heldCopyAt: known.heldCopyAt });
    return true;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const waiter of this.resyncWaiters) waiter.done(false);
    this.resyncWaiters.clear();
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.unsubscribe?.().catch(() => undefined);
    await this.fullReadPending?.catch(() => undefined);
  }

  // --- inputs --------------------------------------------------------------------------------

  private onChange(change: RegistryChange): void {
    if (this.stopped) return;
    this.touch();
    switch (change.kind) {
      case 'heartbeat':
        return this.applyHeartbeat(change.heartbeat);
      case 'events':
        return;
      case 'patch':
        return this.onPatch(change);
      case 'functions':
      case 'residency':
      case 'domains':
        // No revisions (a writer of an earlier version): this part is read whole.
        this.partsToRead.add(change.kind);
        return void this.fullRead();
      case 'resync':
        // Messages were missed, perhaps ones without revisions: everything is read whole.
        for (const part of DIRECTORY_PARTS) this.partsToRead.add(part);
        return void this.fullRead();
      default:
        return void this.fullRead();
    }
  }

  /**
   * A directory write: applied where it follows what this watcher holds (no read), skipped where a
   * read already included it, and otherwise (a message missed) its part is read whole.
   */
  private onPatch(change: Extract<RegistryChange, { kind: 'patch' }>): void {
    if (this.readInFlight) {
      if (this.heldPatches.length < MAX_HELD_PATCHES) return void this.heldPatches.push(change);
      // Dropped: the part is read whole by the read queued after this one (fullRead, a read being
      // under way), not at the next reconcile, seconds later with nothing else to trigger one.
      this.partsToRead.add(change.patch.part);
      return void this.fullRead();
    }
    const part = change.patch.part;
    switch (chainVerdict(this.state.revisions[part], change.prev, change.rev)) {
      case 'apply':
        this.state = { ...applyPatch(this.state, change.patch), revisions: { ...this.state.revisions, [part]: change.rev } };
        return this.rebuild();
      case 'included':
        return;
      case 'gap':
        this.partsToRead.add(part);
        return void this.fullRead();
    }
  }

  private reconcile(): void {
    const everyMs = this.options.unconditionalReadMs ?? 300_000;
    if (this.elapsed() - this.unconditionalReadAt >= everyMs) for (const part of DIRECTORY_PARTS) this.partsToRead.add(part);
    void this.fullRead();
  }

  private async poll(): Promise<void> {
    if (this.polling || this.stopped) return;
    this.polling = true;
    try {
      const hbs = await this.options.registry.readAllHeartbeats();
      // Stopped meanwhile: nothing more is decided or written (the registry may be closed by now).
      if (this.stopped) return;
      this.mergeHeartbeats(hbs.heartbeats);
      this.mergeHeartbeats(hbs.probeHeartbeats);
      this.touch();
      // After any failure, read everything once more: a registry that restarted meanwhile may
      // have come back without its data, and only a full read can tell (checkGeneration). A read
      // held back for a part it could not read waits for the reconcile or a change instead: each
      // such read takes the whole directory.
      if ((!this.synced && !this.directoryHeldBack) || this.troubleSinceFullRead) void this.fullRead();
      this.rebuild();
    } catch (err) {
      this.markTrouble(err);
    } finally {
      this.polling = false;
    }
  }

  /** Coalesces: at most one full read in flight, and one more queued if asked meanwhile. */
  private fullRead(): Promise<void> {
    if (this.fullReadPending !== undefined) {
      this.fullReadAgain = true;
      return this.fullReadPending;
    }
    this.fullReadPending = (async () => {
      try {
        do {
          this.fullReadAgain = false;
          if (this.stopped) return;
          await this.readOnce();
        } while (this.fullReadAgain);
      } finally {
        // Inside the body: a change queued between the last check and a `.finally` would be lost.
        this.fullReadPending = undefined;
      }
    })();
    return this.fullReadPending;
  }

  /** One full read; resolves true when it succeeded. Wakes the resyncs waiting for a read started after them. */
  private async readOnce(): Promise<boolean> {
    const seq = ++this.readsStarted;
    let ok = false;
    try {
      this.troubleSinceFullRead = false;
      const whole = this.partsToRead.size === DIRECTORY_PARTS.length;
      const held = this.held();
      this.partsToRead.clear();
      this.readInFlight = true;
      let read: RegistryState;
      try {
        // Paged: the messages of writes made while it pages are held (readInFlight) and applied after.
        read = await this.options.registry.readState(held, 'paged');
      } catch (err) {
        // Not read after all: the parts it was to read whole still are.
        for (const part of DIRECTORY_PARTS) if (held === undefined || held.revisions[part] === null) this.partsToRead.add(part);
        throw err;
      }
      if (whole) this.unconditionalReadAt = this.elapsed();
      this.unreadable = read.unreadable;
      // Read whole next time, whatever its revision: a key mended by hand moves none.
      for (const part of DIRECTORY_PARTS) if (read.unreadable.has(part)) this.partsToRead.add(part);
      if (!this.synced && DIRECTORY_PARTS.some((part) => read.unreadable.has(part))) {
        this.holdBack(read);
      } else {
        this.directoryHeldBack = false;
        this.readGeneration = read.generation;
        const merged = this.withHeldParts(read);
        this.state = read.unreadable.has('generation') ? this.withKnownGeneration(merged) : await this.checkGeneration(merged);
        // Merge, never replace: a restarted (empty) Redis must not erase what we last knew;
        // old heartbeats age out by their own timestamps.
        this.mergeHeartbeats(read.heartbeats);
        this.mergeHeartbeats(read.probeHeartbeats);
        this.lastFullSyncAt = this.now();
        this.touch();
        const first = !this.synced;
        this.synced = true;
        this.rebuild(first);
        this.options.onEvent?.({ type: 'synced', version: this.version });
        ok = true;
      }
    } catch (err) {
      this.markTrouble(err);
    } finally {
      this.readInFlight = false;
      this.applyHeldPatches();
    }
    for (const waiter of [...this.resyncWaiters]) {
      if (seq >= waiter.after) {
        this.resyncWaiters.delete(waiter);
        waiter.done(ok);
      }
    }
    return ok;
  }

  /**
   * What this watcher holds of the directory, for a read that leaves out what did not change;
   * undefined (read everything) before the first read and when every part is to be read whole.
   */
  private held(): HeldDirectory | undefined {
    if (this.readGeneration === undefined || this.partsToRead.size === DIRECTORY_PARTS.length) return undefined;
    const revisions = { ...this.state.revisions };
    for (const part of this.partsToRead) revisions[part] = null;
    return { generation: this.readGeneration, revisions };
  }

  /**
   * A first read that could not read a directory part, not taken. With no directory held there is
   * nothing to keep of the part, and routing by the other parts alone would serve every org from
   * every region (residency: a legal constraint) or answer every function 404: the snapshot stays
   * unread (registry_unreachable, /readyz not ready) as while Redis does not answer at start, and a
   * sibling is handed nothing (lastKnown; a --workers worker takes its siblings' instead). Redis
   * answered: that is contact, and its heartbeats count. Read again at the reconcile or a change.
   */
  private holdBack(read: RegistryState): void {
    this.directoryHeldBack = true;
    for (const part of DIRECTORY_PARTS) this.partsToRead.add(part);
    this.mergeHeartbeats(read.heartbeats);
    this.mergeHeartbeats(read.probeHeartbeats);
    this.touch();
    this.rebuild();
  }

  /**
   * The read with the parts it left out (unchanged) or could not read (unreadable) filled in from
   * what this watcher holds, at the revision held: never an unreadable part read as empty.
   */
  private withHeldParts(read: RegistryState): RegistryState {
    if (read.unchanged.size === 0 && read.unreadable.size === 0) return read;
    const held = this.state;
    const keep = (part: DirectoryPart) => read.unchanged.has(part) || read.unreadable.has(part);
    const revisions = { ...read.revisions };
    for (const part of DIRECTORY_PARTS) if (read.unreadable.has(part)) revisions[part] = held.revisions[part];
    return {
      ...read,
      functions: keep('functions') ? held.functions : read.functions,
      residency: keep('residency') ? held.residency : read.residency,
      domains: keep('domains') ? held.domains : read.domains,
      overrides: read.unreadable.has('overrides') ? held.overrides : read.overrides,
      revisions,
      unchanged: new Set(),
    };
  }

  private applyHeldPatches(): void {
    const patches = this.heldPatches;
    this.heldPatches = [];
    for (const change of patches) this.onPatch(change);
  }

  /**
   * A read whose generation key could not be read (of the wrong Redis type), taken as it is: the
   * key exists, so the registry did not lose its data (a Redis that restarts empty has no key at
   * all), and judged as none it was taken for a loss, written back at every read and refused (the
   * key is in the way) while the directory's changes were ignored. Nothing is stamped or written
   * back; the generation known is kept, and judged again once the key reads.
   * Routing on a held copy, the copy stays while the registry's directory is empty, as when the
   * generation reads as gone (lostWithHeldCopy): a key of the wrong type is no data, and taking the
   * empty read dropped the copy for nothing to route by, and left it unprotected, so that a later
   * loss wrote this watcher's state back. Once the directory holds something, the copy gives way.
   */
  private withKnownGeneration(read: RegistryState): RegistryState {
    const heldCopyAt = this.heldCopyAt;
    if (heldCopyAt !== null) {
      if (!holdsDirectory(read)) return this.onHeldCopy(read);
      this.heldCopyAt = null;
      this.options.onEvent?.({ type: 'held-copy-dropped', heldCopyAt, generation: this.generation });
    }
    return { ...read, generation: this.generation };
  }

  /** The state to route by, given what was read: the read itself, or the last-known durable state if the data was lost. */
  private async checkGeneration(read: RegistryState): Promise<RegistryState> {
    const verdict = judgeGeneration(this.generation, read.generation);
    const now = this.now();
    if (verdict.kind === 'lost' && this.heldCopyAt !== null) return this.lostWithHeldCopy(read, verdict.generation, this.heldCopyAt, now);
    const state = await this.judged(read, verdict, now);
    // Whatever it found, the state routed on is now the registry's own (or, lost, this watcher's live view).
    this.heldCopyAt = null;
    return state;
  }

  /** The state to route by for a verdict on the generation, the state routed on being live (not a held copy). */
  private async judged(read: RegistryState, verdict: GenerationVerdict, now: number): Promise<RegistryState> {
    switch (verdict.kind) {
      case 'unstamped':
        // Stamped once; from now on its disappearance means lost data. A failure is retried at the next read.
        this.generation = await this.stamp(now);
        return read;
      case 'adopt':
        this.generation = verdict.generation;
        return read;
      case 'same':
        if (this.dataLostAt !== null) {
          this.options.onEvent?.({ type: 'data-restored', lostForMs: now - this.dataLostAt });
          this.dataLostAt = null;
        }
        return read;
      case 'replaced':
        // Another router's restore after the loss this one saw is the end of that loss, not an import.
        if (this.dataLostAt !== null && verdict.to.startsWith(RESTORE_PREFIX)) this.options.onEvent?.({ type: 'data-restored', lostForMs: now - this.dataLostAt });
        else this.options.onEvent?.({ type: 'data-replaced', from: verdict.from, to: verdict.to });
        this.generation = verdict.to;
        this.dataLostAt = null;
        return read;
      case 'lost': {
        this.noteDataLost(verdict.generation, null, now);
        const known = this.state;
        // Entries written since the loss stay; only what is missing comes back. Of the routers that
        // noticed, the first to write wins (the others find a `restore:` generation standing and
        // take its data at their next read). A new name, so that no process takes it for a seed.
        const restored = newGeneration('restore', now);
        const wrote = await this.options.registry.restore(known, restored, 'missing-only').then(
          (changes) => changes !== null,
          (err: unknown) => {
            this.options.onEvent?.({ type: 'restore-failed', error: thrownText(err) });
            return false;
          },
        );
        if (wrote) this.generation = restored;
        // Routed as the restore leaves the registry, whether or not it could be written: what was
        // written since the loss (an operator's undrain, a function deployed) over what is known.
        // Before, a failing restore routed on the known state alone at every read, and the read's
        // revisions, taken with it, kept an entry deployed since from ever being read. Read whole
        // until then, as on a held copy.
        for (const part of DIRECTORY_PARTS) this.partsToRead.add(part);
        return { ...read, ...missingOnly(read, known), generation: this.generation };
      }
    }
  }

  /**
   * The registry has lost its data and this watcher routes on a copy the cluster primary held: a
   * copy that may predate changes made since (functions removed, deployed), which written back
   * would be every router's directory. So it is never written back. While the registry's directory
   * is empty, this watcher goes on routing on the copy (better than on nothing); once it holds
   * something (functions the orchestrators re-assert every 10 s), it takes the registry's data as a
   * router with no state of its own does. (Another router's restore and an operator's import come
   * under a new generation, not a seed: judged 'replaced', they never reach here.) A `seed:` stamp
   * alone is no data either: only a process that knew nothing stamps one (one that knew the data
   * restores it); taken for data, it gave the copy up for an empty directory.
   * An override alone (an operator's undrain) is no directory: the copy stays, but the override is
   * routed by, over the copy's for its region (as a router that wrote its live state back keeps an
   * entry written since the loss): the copy's drain or weight must not undo an operator's since.
   */
  private async lostWithHeldCopy(read: RegistryState, generation: string, heldCopyAt: number, now: number): Promise<RegistryState> {
    if (!holdsDirectory(read)) {
      this.noteDataLost(generation, heldCopyAt, now);
      return this.onHeldCopy(read);
    }
    // As a router that found this registry with no state of its own to put back: adopt its stamp, or stamp it.
    this.generation = read.generation ?? (await this.stamp(now));
    this.heldCopyAt = null;
    this.dataLostAt = null;
    this.options.onEvent?.({ type: 'held-copy-dropped', heldCopyAt, generation: this.generation });
    return read;
  }

  /**
   * The read, routed on the held copy's directory (the registry's being empty), with the
   * registry's overrides over the copy's.
   */
  private onHeldCopy(read: RegistryState): RegistryState {
    // Read whole until then, so that an entry written since is seen as the registry's, not taken for the copy's.
    for (const part of DIRECTORY_PARTS) this.partsToRead.add(part);
    // The registry's directory is empty (lostWithHeldCopy): the copy's, with the registry's overrides over it.
    return { ...read, ...missingOnly(read, this.state), generation: this.generation };
  }

  /** The registry found without its data: noted (and told) once, when it is first found so. */
  private noteDataLost(generation: string, heldCopyAt: number | null, now: number): void {
    if (this.dataLostAt !== null) return;
    this.dataLostAt = now;
    this.options.onEvent?.({ type: 'data-lost', generation, heldCopyAt });
  }

  /** Stamps a new `seed:` generation (or takes the one that stands); null when that failed (retried at the next read). */
  private stamp(now: number): Promise<string | null> {
    return this.options.registry.stampGeneration(newGeneration('seed', now)).catch((err: unknown) => {
      this.options.onEvent?.({ type: 'error', error: `could not stamp the registry's generation: ${thrownText(err)}` });
      return null;
    });
  }

  /** Newest wins, among the reports and among the probe heartbeats, each apart (by the heartbeat's source). */
  private mergeHeartbeats(hbs: ReadonlyMap<RegionId, Heartbeat>): void {
    // Keyed by the heartbeat's own region (records.ts refuses one naming another).
    for (const hb of hbs.values()) if (!this.fromTheFuture(hb)) this.takeHeartbeat(hb);
  }

  /** Keeps `hb` unless an older one than what this process holds of its region and source; false when not kept. */
  private takeHeartbeat(hb: Heartbeat): boolean {
    const into = this.heartbeatsOf(hb);
    const known = into.get(hb.region);
    if (known !== undefined && known.reportedAt > hb.reportedAt) return false;
    this.noteArrival(hb, known);
    into.set(hb.region, hb);
    return true;
  }

  private heartbeatsOf(hb: Heartbeat): Map<RegionId, Heartbeat> {
    return hb.source === 'probe' ? this.probeHeartbeats : this.heartbeats;
  }

  /**
   * A heartbeat dated more than a TTL ahead of this router's clock is refused (the README asks for
   * skew well under the TTL): it would never age, so a region whose reporter died would stay up,
   * and as the newest it would shadow every real heartbeat after it, even once gone from the registry.
   */
  private fromTheFuture(hb: Heartbeat): boolean {
    const aheadMs = hb.reportedAt - this.now();
    if (aheadMs <= this.ttlMs) return false;
    this.options.onEvent?.({ type: 'error', error: `ignored a heartbeat of ${hb.region} dated ${aheadMs} ms ahead of this router's clock` });
    return true;
  }

  // --- clock and staleness -------------------------------------------------------------------

  private touch(): void {
    const now = this.now();
    const at = this.elapsed();
    if (this.stale && this.contactAt !== null) {
      // A seeded watcher's contact was another process's: on the wall clock, the one it shares.
      this.options.onEvent?.({ type: 'recovered', staleForMs: this.contactElapsedAt === null ? now - this.contactAt : at - this.contactElapsedAt });
      // Reporters reconnect on their own schedule: for a grace period after an outage, judge the
      // heartbeats from before it as of the moment the outage began, not as of now — otherwise
      // the first router back would see every region down until the reporters catch up.
      this.frozenAt = this.contactAt;
      this.frozenUntil = at + this.recoveryGraceMs;
    }
    this.contactAt = now;
    this.contactElapsedAt = at;
    this.stale = false;
    this.troubleSinceContact = undefined;
  }

  private markTrouble(err: unknown): void {
    // A call that fails once the watcher has stopped (its registry closed under it) is no news.
    if (this.stopped) return;
    this.troubleSinceFullRead = true;
    const message = thrownText(err);
    this.troubleSinceContact = message;
    const now = this.now();
    const becameStale = this.contactAt === null ? !this.announcedNoContact : !this.stale && this.silentForMs() > this.staleAfterMs;
    if (becameStale) {
      this.stale = true;
      this.announcedNoContact = true;
      this.options.onEvent?.({ type: 'stale', sinceMs: this.contactAt ?? now, error: message });
    } else {
      this.options.onEvent?.({ type: 'error', error: message });
    }
  }

  private tick(): void {
    if (this.stopped) return;
    if (!this.stale && this.contactAt !== null && this.silentForMs() > this.staleAfterMs) {
      this.stale = true;
      // The failing calls' own words where there are some (an OOM or READONLY refusal is not silence).
      this.options.onEvent?.({ type: 'stale', sinceMs: this.contactAt, error: this.troubleSinceContact ?? 'no answer from the registry' });
    }
    // Heartbeats age only while the registry is heard from (fail-static).
    if (this.synced && !statusesEqual(this.statuses, regionStatuses(this.options.regions, this.mergedState(), this.clock()))) {
      this.rebuild();
    }
  }

  /** How long since the last contact, on the elapsed clock (0 before any of this process's own). */
  private silentForMs(): number {
    return this.contactElapsedAt === null ? 0 : this.elapsed() - this.contactElapsedAt;
  }

  private clock(): SnapshotClock {
    const contactAt = this.contactAt ?? this.now();
    return { contactAt: this.elapsed() < this.frozenUntil ? this.frozenAt : contactAt, heartbeatTtlMs: this.ttlMs, probeHeartbeatTtlMs: this.probeTtlMs, agedFrom: this.agedFrom };
  }

  /**
   * From when a heartbeat ages: the moment a newer one than this process had arrived, when that is
   * later than the time it carries (by at most MAX_ARRIVAL_CREDIT_MS); else its own time. A writer
   * whose clock is behind this router's sends heartbeats already old on arrival: judged by their
   * own time, an orchestrator 2.5 s behind had its region flap down and up every second, on every
   * router (its heartbeats lived TTL less the skew), and one 3 s behind stayed down (found by
   * review). The first heartbeat seen of a region is judged by its own time: it may have lain in
   * the registry since its writer died.
   */
  private readonly agedFrom = (hb: Heartbeat): number => {
    const arrivals = this.arrivalsOf(hb).get(hb.region);
    if (arrivals?.credited?.reportedAt !== hb.reportedAt) return hb.reportedAt;
    return Math.max(hb.reportedAt, Math.min(arrivals.credited.arrivedAt, hb.reportedAt + MAX_ARRIVAL_CREDIT_MS));
  };

  /** `hb` replaces `known` (same region and source): when it is newer, the moment it arrived is kept (agedFrom). */
  private noteArrival(hb: Heartbeat, known: Heartbeat | undefined): void {
    const byRegion = this.arrivalsOf(hb);
    const arrivals = byRegion.get(hb.region);
    const now = this.now();
    if (known === undefined || arrivals === undefined) {
      byRegion.set(hb.region, { firstSeenAt: now, credited: null });
      return;
    }
    if (hb.reportedAt <= known.reportedAt) return;
    // The first heartbeat judged by its arrival, just after the first sight: a region whose writer's
    // clock is behind turns up now, where a router already running had it up all along.
    if (arrivals.credited === null && now - arrivals.firstSeenAt <= 2 * this.ttlMs) this.firstCredited.add(hb.region);
    arrivals.credited = { reportedAt: hb.reportedAt, arrivedAt: now };
  }

  private arrivalsOf(hb: Heartbeat): Map<RegionId, Arrivals> {
    return hb.source === 'probe' ? this.probeArrivals : this.reportArrivals;
  }

  private mergedState(): RegistryState {
    return { ...this.state, heartbeats: this.heartbeats, probeHeartbeats: this.probeHeartbeats, ejections: this.ejectionsNow() };
  }

  /** The registry's ejections (sharedEjectionsHeld), with this process's own where they last longer (expired ones dropped). */
  private ejectionsNow(): RegistryState['ejections'] {
    const now = this.now();
    const shared = this.sharedEjectionsHeld(now);
    if (this.ownEjections.size === 0) return shared;
    let merged: Map<RegionId, Ejection> | undefined;
    for (const [region, own] of this.ownEjections) {
      if (own.until <= now) {
        this.ownEjections.delete(region);
        continue;
      }
      if ((shared.get(region)?.until ?? 0) >= own.until) continue;
      (merged ??= new Map(shared)).set(region, own);
    }
    return merged ?? shared;
  }

  /**
   * The registry's ejections, each held to MAX_EJECTION_MS from when this process first read it.
   * Its end is the ejecting router's clock: one ten minutes fast (a VM without NTP) ejected a
   * region for every router for ten minutes and a half, where no ejection lasts over five (found
   * by review). A clock behind ends its ejections early for the others: nothing to hold there.
   */
  private sharedEjectionsHeld(now: number): RegistryState['ejections'] {
    const ejections = this.state.ejections;
    for (const region of this.ejectionsRead.keys()) if (!ejections.has(region)) this.ejectionsRead.delete(region);
    let held: Map<RegionId, Ejection> | undefined;
    for (const [region, ejection] of ejections) {
      let read = this.ejectionsRead.get(region);
      if (read === undefined || read.until !== ejection.until || read.count !== ejection.count) {
        read = { until: ejection.until, count: ejection.count, heldUntil: Math.min(ejection.until, now + MAX_EJECTION_MS) };
        this.ejectionsRead.set(region, read);
      }
      if (read.heldUntil !== ejection.until) (held ??= new Map(ejections)).set(region, { ...ejection, until: read.heldUntil });
    }
    return held ?? ejections;
  }

  // --- output --------------------------------------------------------------------------------

  private rebuild(first = false): void {
    if (!this.synced && this.heartbeats.size === 0 && this.probeHeartbeats.size === 0 && this.ownEjections.size === 0) return;
    const state = this.mergedState();
    const clock = this.synced ? this.clock() : { contactAt: this.now(), heartbeatTtlMs: this.ttlMs, probeHeartbeatTtlMs: this.probeTtlMs };
    // Before the first sync (registry down at start), regions nobody has reported stay as configured.
    const next = buildSnapshot(this.options.regions, state, clock, ++this.version);
    if (!this.synced) {
      const regions = new Map(this.current.regions);
      for (const region of [...this.heartbeats.keys(), ...this.probeHeartbeats.keys()]) regions.set(region, next.regions.get(region)!);
      // This process's own ejections hold from the start too (on the configured health, not a guessed one).
      for (const region of this.ownEjections.keys()) regions.set(region, { ...regions.get(region)!, ejectedUntil: next.regions.get(region)!.ejectedUntil });
      this.current = { ...this.current, version: next.version, regions };
      return;
    }
    const statuses = this.options.regions.map((r) => next.regions.get(r.id)!.status);
    const previous = this.statuses;
    const previousSnapshot = this.current;
    this.current = next;
    this.statuses = statuses;
    // Taken before the walk: a transition's listener may rebuild at once (the router reinstates a
    // region back up: applyEjection), and that rebuild clears the set for the regions still to come.
    const firstCredited = this.firstCredited.size === 0 ? NONE_CREDITED : new Set(this.firstCredited);
    this.firstCredited.clear();
    if (first) return;
    this.options.regions.forEach((r, i) => {
      if (previous[i] !== statuses[i]) this.recordTransition(r.id, previous[i]!, statuses[i]!, previousSnapshot, firstCredited);
    });
  }

  private recordTransition(region: RegionId, from: RegionStatus, to: RegionStatus, before: RegistrySnapshot, firstCredited: ReadonlySet<RegionId>): void {
    // A region heard from for the first time is news to this router only, not a health change.
    const firstHeard = before.regions.get(region)?.heartbeatAt == null || (to === 'up' && firstCredited.has(region));
    this.options.onEvent?.(firstHeard ? { type: 'transition', region, from, to, firstHeard } : { type: 'transition', region, from, to });
    if (this.stale || firstHeard) return;
    const probe = this.probeHeartbeats.get(region);
    const probeFailed = probe?.status === 'down' && isFresh(probe, this.clock());
    const event: HealthEvent = {
      at: this.now(),
      region,
      kind: to,
      cause: to === 'down' ? (probeFailed ? 'health probe failed' : 'heartbeat expired') : `reported ${to} (was ${from})`,
    };
    // Every router notices the same flip; the key makes one of them write it.
    const onceKey = `${region}:${to}:${before.regions.get(region)?.heartbeatAt ?? 'never'}`;
    this.options.registry.appendEvent(event, onceKey).catch((err: unknown) => this.markTrouble(err));
  }
}

const NONE_CREDITED: ReadonlySet<RegionId> = new Set();

/**
 * The directory and overrides of `read` with the entries of `known` it lacks: what a missing-only
 * restore of `known` leaves in the registry (an entry written since the loss stands).
 */
function missingOnly(read: RegistryState, known: RegistryState): Pick<RegistryState, 'functions' | 'residency' | 'domains' | 'overrides'> {
  const functions = new Map(known.functions);
  for (const [org, byFn] of read.functions) functions.set(org, new Map([...(known.functions.get(org) ?? []), ...byFn]));
  return {
    functions,
    residency: new Map([...known.residency, ...read.residency]),
    domains: new Map([...known.domains, ...read.domains]),
    overrides: new Map([...known.overrides, ...read.overrides]),
  };
}

/** Whether a read found any directory entry (a part it could not read holds the copy's entries: withHeldParts). */
function holdsDirectory(read: RegistryState): boolean {
  return DIRECTORY_PARTS.some((part) => !read.unreadable.has(part) && read[part].size > 0);
}

function statusesEqual(a: readonly RegionStatus[], b: readonly RegionStatus[]): boolean {
  return a.length === b.length && a.every((s, i) => s === b[i]);
}

/**
 * The most a heartbeat's arrival may count for over the time it carries (agedFrom): a writer's
 * clock further behind than this is not made up for, nor is a heartbeat that lay this long in a
 * registry the router could not read.
 */
const MAX_ARRIVAL_CREDIT_MS = 30_000;

/** How one region's heartbeats of one source arrived at this process. */
interface Arrivals {
  /** When this process first saw a heartbeat of it. */
  readonly firstSeenAt: number;
  /** The current heartbeat's time and arrival, once one replaced an older one (agedFrom); null before. */
  credited: { readonly reportedAt: number; readonly arrivedAt: number } | null;
}
