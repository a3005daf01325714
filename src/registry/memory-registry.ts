/**
 * HealthRegistry in process memory: the embedded default for `npm start` and single-router
 * setups. Same contract as RedisRegistry (one test suite runs against both); it shares state
 * only with code in the same process.
 */
import type { FunctionRecord, FunctionRef, RegionId } from '../core/types.js';
import { SEED_PREFIX } from './generation.js';
import { DIRECTORY_PARTS, NO_REVISIONS, nextRevision, type DirectoryPart, type DirectoryPatch, type HeldDirectory } from './directory-patch.js';
import { nextTicketRing, type TicketKeyRing } from '../core/ticket-key-ring.js';
import { checkedHeartbeat, storedEjection, storedFunction } from './records.js';
import {
  DEFAULT_OVERRIDES,
  EVENT_LOG_LIMIT,
  HEALTH_EVENT_KINDS,
  sameRegions,
  storedEvent,
  withTtl,
  type AllHeartbeats,
  type DurableState,
  type Ejection,
  type HealthEvent,
  type HealthRegistry,
  type Heartbeat,
  type RegionOverrides,
  type RegistryChange,
  type RegistryState,
  type RestoredChanges,
  type RestoreMode,
  type StampedResidency,
} from './health-registry.js';

const KNOWN_KINDS: ReadonlySet<string> = new Set(HEALTH_EVENT_KINDS);

export class MemoryRegistry implements HealthRegistry {
  readonly kind = 'memory';
  private readonly heartbeats = new Map<RegionId, { hb: Heartbeat; expiresAt: number }>();
  /** Probe heartbeats apart from the reports (see RegistryState.probeHeartbeats). */
  private readonly probeHeartbeats = new Map<RegionId, { hb: Heartbeat; expiresAt: number }>();
  private readonly overrides = new Map<RegionId, RegionOverrides>();
  private readonly ejections = new Map<RegionId, Ejection>();
  private readonly functions = new Map<string, Map<string, FunctionRecord>>();
  private readonly residency = new Map<string, ReadonlySet<RegionId>>();
  private readonly domains = new Map<string, FunctionRef>();
  private readonly events: HealthEvent[] = [];
  private readonly onceKeys = new Map<string, number>();
  private readonly listeners = new Set<(change: RegistryChange) => void>();
  private generation: string | null = null;
  private readonly revisions: Record<DirectoryPart, string | null> = { ...NO_REVISIONS };
  private ticketKeys: TicketKeyRing | null = null;
  private closed = false;

  constructor(private readonly now: () => number = Date.now) {}

  async writeHeartbeat(written: Heartbeat, ttlMs: number): Promise<void> {
    this.assertOpen();
    const heartbeat = checkedHeartbeat(withTtl(written, ttlMs));
    // Like the Redis key's expiry: kept a few TTLs for the dashboard, then forgotten.
    (heartbeat.source === 'probe' ? this.probeHeartbeats : this.heartbeats).set(heartbeat.region, { hb: heartbeat, expiresAt: this.now() + ttlMs * 5 });
    this.notify({ kind: 'heartbeat', heartbeat });
  }

  async setOverrides(region: RegionId, overrides: RegionOverrides): Promise<void> {
    this.assertOpen();
    this.overrides.set(region, { ...overrides });
    this.notify({ kind: 'overrides' });
  }

  async updateOverrides(region: RegionId, change: Partial<RegionOverrides>): Promise<void> {
    this.assertOpen();
    // Read and written in one synchronous step: no other call runs in between.
    const current = this.overrides.get(region) ?? { drained: false, weight: null };
    this.overrides.set(region, { drained: change.drained ?? current.drained, weight: change.weight === undefined ? current.weight : change.weight });
    this.notify({ kind: 'overrides' });
  }

  async setEjection(region: RegionId, ejection: Ejection | null): Promise<void> {
    this.assertOpen();
    if (ejection === null) this.ejections.delete(region);
    else this.ejections.set(region, storedEjection(ejection));
    this.notify({ kind: 'ejections' });
  }

  async putFunction(record: FunctionRecord): Promise<void> {
    this.assertOpen();
    this.storeFunction(record);
  }

  async putFunctionUnderResidency(record: FunctionRecord, stamp: string): Promise<boolean> {
    this.assertOpen();
    // Compared and written in one synchronous step: no setResidency runs in between.
    if (this.residencyStamp(record.org) !== stamp) return false;
    this.storeFunction(record);
    return true;
  }

  private storeFunction(record: FunctionRecord): void {
    const byFn = this.functions.get(record.org) ?? new Map<string, FunctionRecord>();
    const stored = { ...record, regions: record.regions === null ? null : new Set(record.regions) };
    byFn.set(record.fn, stored);
    this.functions.set(record.org, byFn);
    // Shared as readState shares it: a stored record is replaced, never changed.
    this.notifyPatch({ part: 'functions', org: record.org, fn: record.fn, record: stored });
  }

  async assertFunction(record: FunctionRecord): Promise<boolean> {
    this.assertOpen();
    if (this.functions.get(record.org)?.has(record.fn)) return false;
    await this.putFunction(record);
    return true;
  }

  async deleteFunction(org: string, fn: string): Promise<boolean> {
    this.assertOpen();
    const byFn = this.functions.get(org);
    const existed = byFn?.delete(fn) ?? false;
    if (byFn?.size === 0) this.functions.delete(org);
    if (existed) this.notifyPatch({ part: 'functions', org, fn, record: null });
    return existed;
  }

  async setResidency(org: string, regions: readonly RegionId[] | null): Promise<void> {
    this.assertOpen();
    if (regions === null) this.residency.delete(org);
    else this.residency.set(org, new Set(regions));
    this.notifyPatch({ part: 'residency', org, regions: regions === null ? null : new Set(regions) });
  }

  async putDomain(host: string, ref: FunctionRef): Promise<void> {
    this.assertOpen();
    this.domains.set(host, { fn: ref.fn, org: ref.org });
    this.notifyPatch({ part: 'domains', host, ref: { fn: ref.fn, org: ref.org } });
  }

  async deleteDomain(host: string): Promise<boolean> {
    this.assertOpen();
    const existed = this.domains.delete(host);
    if (existed) this.notifyPatch({ part: 'domains', host, ref: null });
    return existed;
  }

  async appendEvent(event: HealthEvent, onceKey?: string): Promise<boolean> {
    this.assertOpen();
    if (onceKey !== undefined) {
      const now = this.now();
      for (const [key, expiresAt] of this.onceKeys) if (expiresAt <= now) this.onceKeys.delete(key);
      if (this.onceKeys.has(onceKey)) return false;
      this.onceKeys.set(onceKey, now + 3_600_000);
    }
    this.events.unshift({ ...storedEvent(event) });
    this.events.length = Math.min(this.events.length, EVENT_LOG_LIMIT);
    this.notify({ kind: 'events' });
    return true;
  }

  async shareTicketKeys(fresh: string, rotateEveryMs: number): Promise<TicketKeyRing> {
    this.assertOpen();
    this.ticketKeys = nextTicketRing(this.ticketKeys, fresh, this.now(), rotateEveryMs);
    return this.ticketKeys;
  }

  async stampGeneration(candidate: string): Promise<string> {
    this.assertOpen();
    this.generation ??= candidate;
    return this.generation;
  }

  async restore(state: DurableState, generation: string, mode: RestoreMode): Promise<RestoredChanges | null> {
    this.assertOpen();
    const keep = mode !== 'overwrite';
    // As in Redis: a re-seed writes only where no generation, or a fresh seed, stands.
    if (mode === 'missing-only' && this.generation !== null && !this.generation.startsWith(SEED_PREFIX)) return null;
    // What changed, as RedisRegistry's script tells it: an entry written as it stood changes nothing.
    // An entry is written where its stored form differs, as the script compares stored text.
    const functions: FunctionRecord[] = [];
    const residency = new Map<string, ReadonlySet<RegionId>>();
    const domains = new Map<string, FunctionRef>();
    const overrides = new Map<RegionId, { before: RegionOverrides | null; after: RegionOverrides }>();
    let wrote = false;
    for (const byFn of state.functions.values()) {
      for (const record of byFn.values()) {
        const before = this.functions.get(record.org)?.get(record.fn);
        if (before !== undefined && (keep || storedFunction(before) === storedFunction(record))) continue;
        await this.putFunction(record);
        functions.push(record);
        wrote = true;
      }
    }
    for (const [org, regions] of state.residency) {
      const before = this.residency.get(org);
      if (before !== undefined && (keep || JSON.stringify([...before]) === JSON.stringify([...regions]))) continue;
      await this.setResidency(org, [...regions]);
      if (!sameRegions(regions, before)) residency.set(org, regions);
      wrote = true;
    }
    for (const [host, ref] of state.domains) {
      const before = this.domains.get(host);
      if (before !== undefined && (keep || (before.fn === ref.fn && before.org === ref.org))) continue;
      await this.putDomain(host, ref);
      domains.set(host, ref);
      wrote = true;
    }
    for (const [region, after] of state.overrides) {
      const before = this.overrides.get(region) ?? null;
      if (before !== null && (keep || (before.drained === after.drained && before.weight === after.weight))) continue;
      await this.setOverrides(region, after);
      const was = before ?? DEFAULT_OVERRIDES;
      if (was.drained !== after.drained || was.weight !== after.weight) overrides.set(region, { before, after: { drained: after.drained, weight: after.weight } });
      wrote = true;
    }
    // As in Redis: an import that changed nothing in a stamped registry stamps nothing.
    if (!wrote && this.generation !== null && mode !== 'missing-only') return { functions, residency, domains, overrides, generation: this.generation };
    // As in Redis: every part at a new revision, the data replaced under whoever held it.
    for (const part of DIRECTORY_PARTS) this.revisions[part] = nextRevision(this.revisions[part]);
    this.generation = generation;
    this.notify({ kind: 'resync' });
    return { functions, residency, domains, overrides, generation };
  }

  async readState(held?: HeldDirectory): Promise<RegistryState> {
    this.assertOpen();
    // Awaited first, so that everything after is one synchronous step: which parts are unchanged
    // and the revisions reported must be of the same moment, as Redis's script reads them. Judged
    // before this await, a write that ran during it (the cluster primary serves a worker's read and
    // write arriving in one IPC read back to back) was reported at its new revision with its part
    // left out as unchanged: the reader kept its old directory under the new revision.
    const heartbeats = await this.readAllHeartbeats();
    const unchanged = new Set<DirectoryPart>();
    if (held !== undefined && held.generation === this.generation) {
      for (const part of DIRECTORY_PARTS) if (held.revisions[part] !== null && held.revisions[part] === this.revisions[part]) unchanged.add(part);
    }
    return {
      generation: this.generation,
      ...heartbeats,
      overrides: new Map(this.overrides),
      ejections: new Map(this.ejections),
      functions: unchanged.has('functions') ? new Map() : new Map([...this.functions].map(([org, byFn]) => [org, new Map(byFn)])),
      residency: unchanged.has('residency') ? new Map() : new Map(this.residency),
      domains: unchanged.has('domains') ? new Map() : new Map(this.domains),
      revisions: { ...this.revisions },
      unchanged,
      // Maps in memory: every part always reads.
      unreadable: new Map(),
    };
  }

  async readAllHeartbeats(): Promise<AllHeartbeats> {
    this.assertOpen();
    const now = this.now();
    const unexpired = (stored: ReadonlyMap<RegionId, { hb: Heartbeat; expiresAt: number }>) => {
      const heartbeats = new Map<RegionId, Heartbeat>();
      for (const [region, { hb, expiresAt }] of stored) if (expiresAt > now) heartbeats.set(region, hb);
      return heartbeats;
    };
    return { heartbeats: unexpired(this.heartbeats), probeHeartbeats: unexpired(this.probeHeartbeats) };
  }

  async readOverrides(): Promise<ReadonlyMap<RegionId, RegionOverrides>> {
    this.assertOpen();
    return new Map(this.overrides);
  }

  async readResidency(org: string): Promise<StampedResidency> {
    this.assertOpen();
    const regions = this.residency.get(org);
    return { allowed: regions === undefined ? null : new Set(regions), stamp: this.residencyStamp(org) };
  }

  /** The org's rule as stored, as text (StampedResidency.stamp): `-` for none. */
  private residencyStamp(org: string): string {
    const regions = this.residency.get(org);
    return regions === undefined ? '-' : `=${JSON.stringify([...regions])}`;
  }

  async readEvents(limit: number): Promise<HealthEvent[]> {
    this.assertOpen();
    // As RedisRegistry reads them: an event of a kind this version does not know (one given as
    // such, as a later version's router would) is skipped and does not count against the limit.
    // The log is capped, so the scan is too.
    const count = Math.max(0, Math.floor(limit));
    const events: HealthEvent[] = [];
    for (const event of this.events) {
      if (events.length >= count) break;
      if (KNOWN_KINDS.has(event.kind)) events.push(event);
    }
    return events;
  }

  async subscribe(onChange: (change: RegistryChange) => void): Promise<() => Promise<void>> {
    this.assertOpen();
    this.listeners.add(onChange);
    return async () => {
      this.listeners.delete(onChange);
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
  }

  /** Takes the written part to its next revision, and tells watchers the entry with both revisions. */
  private notifyPatch(patch: DirectoryPatch): void {
    const prev = this.revisions[patch.part];
    const rev = nextRevision(prev);
    this.revisions[patch.part] = rev;
    this.notify({ kind: 'patch', prev, rev, patch });
  }

  private notify(change: RegistryChange): void {
    // Delivered asynchronously, like a pub/sub message, so writers never run watcher code inline.
    for (const listener of this.listeners) queueMicrotask(() => listener(change));
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('registry is closed');
  }
}
