import { afterEach, describe, expect, it } from 'vitest';
import type { HealthRegistry } from '../../src/registry/health-registry.js';
import { MemoryRegistry } from '../../src/registry/memory-registry.js';
import { RegistryWatcher, type WatcherEvent } from '../../src/registry/registry-watcher.js';
import { REGIONS } from '../support/regions.js';
import { MAX_EJECTION_MS } from '../../src/core/types.js';
import { heartbeat } from './registry-contract.js';
import { until } from '../support/until.js';

/**
 * A registry that can be "cut off" (every call fails while `down` is set) or swapped for another
 * (`inner`: a Redis that restarted with other data, or none).
 */
function cuttable(first: HealthRegistry): HealthRegistry & { down: boolean; inner: HealthRegistry } {
  const wrapper = { down: false, inner: first } as HealthRegistry & { down: boolean; inner: HealthRegistry };
  for (const key of Object.getOwnPropertyNames(Object.getPrototypeOf(first)) as (keyof HealthRegistry)[]) {
    if (typeof first[key] !== 'function' || key === ('constructor' as keyof HealthRegistry)) continue;
    Object.defineProperty(wrapper, key, {
      value: (...args: unknown[]) => {
        if (wrapper.down) return Promise.reject(new Error('connection refused'));
        return (wrapper.inner[key] as (...a: unknown[]) => unknown).apply(wrapper.inner, args);
      },
    });
  }
  Object.defineProperty(wrapper, 'kind', { value: first.kind });
  return wrapper;
}

const watchers: RegistryWatcher[] = [];
afterEach(async () => {
  await Promise.all(watchers.splice(0).map((w) => w.stop()));
});

function watch(registry: HealthRegistry, events: WatcherEvent[] = [], extra: Partial<ConstructorParameters<typeof RegistryWatcher>[0]> = {}) {
  const w = new RegistryWatcher({ registry, regions: REGIONS, heartbeatTtlMs: 300, pollMs: 50, staleAfterMs: 200, recoveryGraceMs: 400, onEvent: (e) => events.push(e), ...extra });
  watchers.push(w);
  return w;
}

describe('RegistryWatcher', () => {
  it('tries a first read that failed again before start resolves, so a registry slow for a moment at start leaves no request unrouted', async () => {
    const registry = cuttable(new MemoryRegistry());
    await registry.putFunction({ org: 'acme', fn: 'api', regions: null, tier: 'standard', enabled: true });
    registry.down = true;
    setTimeout(() => (registry.down = false), 250);
    const w = watch(registry, [], { pollMs: 60_000 }); // no poll to do it instead
    await w.start();
    expect(w.snapshot.directoryUnread).toBeUndefined();
    expect(w.snapshot.functions.get('acme')?.get('api')).toBeDefined();
    // A registry that stays unreachable: start gives up after its retries, the directory unread.
    const dead = cuttable(new MemoryRegistry());
    dead.down = true;
    const d = watch(dead, [], { pollMs: 60_000, startupReadRetries: 2 });
    await d.start();
    expect(d.snapshot.directoryUnread).toBe(true);
  });

  it('marks regions without a heartbeat down after the first sync, and up when they report', async () => {
    const registry = new MemoryRegistry();
    const w = watch(registry);
    expect(w.snapshot.regions.get('atl')?.status).toBe('up'); // before any contact: as configured
    await w.start();
    expect(w.snapshot.regions.get('atl')?.status).toBe('down');
    // A TTL that outlasts a stalled turn or two on a loaded machine: up is all this needs.
    await registry.writeHeartbeat(heartbeat('atl', { inFlight: 4, capacity: { soft: 1, hard: 2 } }), 3_000);
    await until(() => w.snapshot.regions.get('atl')?.status === 'up');
    expect(w.snapshot.regions.get('atl')).toMatchObject({ inFlight: 4, capacity: { soft: 1, hard: 2 }, warmFunctions: new Set(['demo/echo']) });
  });

  it('judges a heartbeat by the TTL it was written with: a prober elsewhere probing slowly keeps its regions up', async () => {
    // Before: a router without probes of its own took every probe heartbeat to last 6 s (the
    // default pace), so `edge-router probe --probe-interval 6000` (heartbeats 6 s apart) made its regions flap down.
    const registry = new MemoryRegistry();
    const w = new RegistryWatcher({ registry, regions: REGIONS, pollMs: 50 });
    watchers.push(w);
    await w.start();
    const probe = (region: string, ageMs: number) => heartbeat(region, { source: 'probe', reportedAt: Date.now() - ageMs, inFlight: 0, warmContainers: 0, warmFunctions: [] });
    await registry.writeHeartbeat(probe('atl', 10_000), 18_000);
    await registry.writeHeartbeat(probe('fra', 1_000), 500);
    await until('atl up, by its own 18 s', () => w.snapshot.regions.get('atl')?.status === 'up');
    // A short TTL counts as much: fra's, 1 s old, has expired, where the default (6 s) would keep it.
    expect(w.snapshot.regions.get('fra')?.status).toBe('down');
  });

  /** A watcher (3 s TTL) on its own clock, and syd's orchestrator whose clock is `behindMs` behind it. */
  async function behindBy(behindMs: number) {
    const registry = new MemoryRegistry();
    const events: WatcherEvent[] = [];
    const clock = { now: 2_000_000_000 };
    const w = watch(registry, events, { now: () => clock.now, heartbeatTtlMs: 3_000, staleAfterMs: 60_000 });
    await w.start();
    const report = async () => {
      await registry.writeHeartbeat(heartbeat('syd', { reportedAt: clock.now - behindMs }), 60_000);
      await w.resync();
    };
    const status = () => w.snapshot.regions.get('syd')?.status;
    return { registry, events, clock, w, report, status };
  }

  it("keeps a region up whose orchestrator's clock is behind this router's, judging each newer heartbeat from its arrival, and still turns it down when they stop", async () => {
    // 2.5 s behind with heartbeats 1 s apart and a 3 s TTL: judged by their own time they lived
    // half a second, and the region flapped down and up every second.
    const { events, clock, w, report, status } = await behindBy(2_500);
    await report(); // the first one is judged by its own time: it may have lain there since its writer died
    for (let i = 0; i < 4; i++) {
      clock.now += 1_000;
      await report();
      clock.now += 900; // just before the next one
      await w.resync();
      expect(status()).toBe('up');
      clock.now -= 900;
    }
    expect(events.filter((e) => e.type === 'transition' && e.region === 'syd' && e.to === 'down')).toEqual([]);
    // They stop: down a TTL after the last one arrived.
    clock.now += 3_001;
    await w.resync();
    expect(status()).toBe('down');
  });

  it("takes a region whose writer's clock is behind by over the TTL as first heard when its second heartbeat brings it up: no event, no ejection lifted", async () => {
    // Down on its first heartbeat (judged by its own time), up on the next (by its arrival): news
    // to this router only. Taken as a health change, every router's restart lifted the region's
    // ejection for every router, and wrote an event no other router's matched.
    const { registry, events, clock, report, status } = await behindBy(3_500);
    await report();
    expect(status()).toBe('down');
    clock.now += 1_000;
    await report();
    expect(status()).toBe('up');
    expect(events.filter((e) => e.type === 'transition' && e.region === 'syd')).toEqual([{ type: 'transition', region: 'syd', from: 'down', to: 'up', firstHeard: true }]);
    expect((await registry.readEvents(10)).filter((e) => e.region === 'syd')).toEqual([]);
  });

  it('takes such a region as first heard also when an earlier region coming back up in the same read is reinstated (a rebuild within the rebuild)', async () => {
    // The router reinstates a region that came back (edge-router.ts): applyEjection rebuilds at once,
    // inside the outer rebuild's walk over the regions, and that inner rebuild forgot which regions
    // were first credited; syd, after atl in the walk, was then taken for a real health change.
    // No change messages: both heartbeats arrive in one read, as a poll finds them.
    class ReadOnly extends MemoryRegistry {
      override async subscribe(): Promise<() => Promise<void>> {
        return async () => undefined;
      }
    }
    const registry = new ReadOnly();
    const events: WatcherEvent[] = [];
    const clock = { now: 2_000_000_000 };
    const w: RegistryWatcher = watch(registry, events, {
      now: () => clock.now,
      heartbeatTtlMs: 3_000,
      staleAfterMs: 60_000,
      onEvent: (e) => {
        events.push(e);
        if (e.type === 'transition' && e.from === 'down' && e.to === 'up' && e.firstHeard !== true) w.applyEjection(e.region, null);
      },
    });
    await w.start();
    const report = async (reports: Array<[string, number]>) => {
      for (const [region, behindMs] of reports) await registry.writeHeartbeat(heartbeat(region, { reportedAt: clock.now - behindMs }), 60_000);
      await w.resync();
    };
    const status = (region: string) => w.snapshot.regions.get(region)?.status;
    await report([['atl', 0]]);
    clock.now += 1_000;
    await report([['atl', 0]]); // atl's heartbeats are judged by their arrival from now on
    clock.now += 6_000; // atl's have stopped: down; syd's first, 3.5 s behind, is judged by its own time: down
    await report([['syd', 3_500]]);
    expect([status('atl'), status('syd')]).toEqual(['down', 'down']);
    clock.now += 1_000; // one read: atl back up for real, syd up on its first heartbeat judged by its arrival
    const before = events.length;
    await report([['atl', 0], ['syd', 3_500]]);
    expect([status('atl'), status('syd')]).toEqual(['up', 'up']);
    expect(events.slice(before).filter((e) => e.type === 'transition')).toEqual([
      { type: 'transition', region: 'atl', from: 'down', to: 'up' },
      { type: 'transition', region: 'syd', from: 'down', to: 'up', firstHeard: true },
    ]);
    await until('atl back up in the event log', async () => (await registry.readEvents(10)).some((e) => e.region === 'atl' && e.kind === 'up'));
    expect((await registry.readEvents(10)).filter((e) => e.region === 'syd')).toEqual([]);
  });

  it('decides nothing and says nothing on a heartbeat poll that answers after the watcher stopped', async () => {
    // The router closes its registry right after stop(): a poll still under way went on to rebuild
    // (transitions, event-log writes on a closed registry) or reported its failure as news.
    let gate: Promise<void> | null = null;
    let polled = 0;
    class HeldPolls extends MemoryRegistry {
      override async readAllHeartbeats() {
        polled++;
        if (gate !== null) await gate;
        return super.readAllHeartbeats();
      }
    }
    const registry = new HeldPolls();
    const events: WatcherEvent[] = [];
    // No reconcile meanwhile: its read (which reads the heartbeats too) would wait on the gate, and stop() on it.
    const w = watch(registry, events, { pollMs: 20, reconcileMs: 60_000 });
    await w.start();
    let release!: () => void;
    gate = new Promise<void>((resolve) => (release = resolve));
    const before = polled;
    await until('a poll waits for its answer', () => polled > before);
    await w.stop();
    const said = events.length;
    await registry.writeHeartbeat(heartbeat('fra'), 60_000);
    release();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(events.slice(said)).toEqual([]);
    expect(w.snapshot.regions.get('fra')?.heartbeatAt ?? null).toBeNull();
  });

  it('measures the registry\'s silence on a clock that wall-clock steps do not move', async () => {
    // On Date.now(), a step forward called a live registry stale (and recovered, at the next poll),
    // and a step back kept an outage from being called stale for the length of the step.
    const registry = cuttable(new MemoryRegistry());
    const events: WatcherEvent[] = [];
    let stepMs = 0;
    // Polled every 300 ms and judged every 250 ms: the judge comes before the next contact.
    const w = watch(registry, events, { now: () => Date.now() + stepMs, pollMs: 300, staleAfterMs: 1_000 });
    await w.start();
    stepMs = 3_600_000; // an hour forward, the registry answering
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(events.filter((e) => e.type === 'stale' || e.type === 'recovered')).toEqual([]);
    stepMs = -3_600_000; // an hour back, then the registry goes away
    registry.down = true;
    await until('the outage is called stale', () => events.some((e) => e.type === 'stale'), 3_000);
    expect(w.status().staleForMs).toBeGreaterThanOrEqual(0);
  });

  it("measures a seeded watcher's silence from the contact it was seeded with, not from a poll of its own", async () => {
    // A worker whose heartbeat polls reach Redis while its directory cannot be read is seeded by a
    // sibling: it reported the sibling's contact beside a silence counted from its own poll.
    const source = new MemoryRegistry();
    const reader = watch(source);
    await reader.start();
    const known = reader.lastKnown()!;
    class NoDirectory extends MemoryRegistry {
      override async readState(): Promise<never> {
        throw new Error('LOADING Redis is loading the dataset in memory');
      }
    }
    const w = watch(new NoDirectory(), [], { startupReadRetries: 0 });
    await w.start();
    await until('a poll of its own reached the registry', () => w.status().contactAt !== null);
    expect(w.seed({ ...known, contactAt: Date.now() - 60_000 })).toBe(true);
    expect(w.status().staleForMs).toBeGreaterThanOrEqual(60_000);
  });

  it('turns a region down when its heartbeats stop, and logs the flip once', async () => {
    const registry = new MemoryRegistry();
    const events: WatcherEvent[] = [];
    const w = watch(registry, events);
    await w.start();
    // 1 s: long enough to be seen up through a stalled turn (300 ms was not, on a loaded machine), short enough to expire.
    await registry.writeHeartbeat(heartbeat('nyc'), 1_000);
    await until(() => w.snapshot.regions.get('nyc')?.status === 'up');
    const second = watch(registry);
    await second.start();
    await until(() => w.snapshot.regions.get('nyc')?.status === 'down', 5_000);
    await until(() => second.snapshot.regions.get('nyc')?.status === 'down', 5_000);
    expect(events).toContainEqual({ type: 'transition', region: 'nyc', from: 'up', to: 'down' });
    await until('the flip is in the event log', async () => (await registry.readEvents(10)).some((e) => e.region === 'nyc' && e.kind === 'down'));
    const log = await registry.readEvents(10);
    expect(log.filter((e) => e.region === 'nyc' && e.kind === 'down')).toHaveLength(1);
    expect(log.find((e) => e.kind === 'down')?.cause).toBe('heartbeat expired');
  });

  it('fail-static: when the registry goes silent, regions keep their last status and the snapshot says it is stale', async () => {
    const registry = cuttable(new MemoryRegistry());
    const events: WatcherEvent[] = [];
    const w = watch(registry, events);
    await w.start();
    for (const r of REGIONS) await registry.writeHeartbeat(heartbeat(r.id), 1_000);
    await until(() => [...w.snapshot.regions.values()].every((h) => h.status === 'up'));

    registry.down = true;
    await new Promise((r) => setTimeout(r, 1_500)); // well past the 1 s heartbeat TTL
    expect([...w.snapshot.regions.values()].map((h) => h.status)).toEqual(['up', 'up', 'up', 'up', 'up']);
    expect(w.status().stale).toBe(true);
    expect(w.status().staleForMs).toBeGreaterThan(500);
    expect(events.some((e) => e.type === 'stale')).toBe(true);

    registry.down = false;
    await until(() => !w.status().stale);
    expect(events.some((e) => e.type === 'recovered')).toBe(true);
    // Back in contact: a grace period lets reporters reconnect before old heartbeats are judged again…
    expect([...w.snapshot.regions.values()].every((h) => h.status === 'up')).toBe(true);
    // …after which regions that still have not reported are down.
    await until(() => [...w.snapshot.regions.values()].every((h) => h.status === 'down'));
  });

  it('starts with the configured regions when the registry is down at start, and says so', async () => {
    const registry = cuttable(new MemoryRegistry());
    registry.down = true;
    const events: WatcherEvent[] = [];
    const w = watch(registry, events);
    await w.start();
    expect(w.status()).toMatchObject({ stale: true, contactAt: null });
    expect(events[0]).toMatchObject({ type: 'stale' });
    expect([...w.snapshot.regions.values()].every((h) => h.status === 'up')).toBe(true);
    // Local probes still apply while the registry is away.
    w.applyHeartbeat(heartbeat('fra', { status: 'down', source: 'probe' }));
    expect(w.snapshot.regions.get('fra')?.status).toBe('down');
    expect(w.snapshot.regions.get('atl')?.status).toBe('up');
    registry.down = false;
    await until(() => !w.status().stale && w.status().lastFullSyncAt !== null);
  });

  it("applies this process's own ejection at once and while the registry is away, and keeps it over the registry's reads until it ends or is lifted", async () => {
    const registry = cuttable(new MemoryRegistry());
    const w = watch(registry);
    await w.start();
    registry.down = true; // the write of the ejection fails: only this process knows it
    const ejectedUntil = Date.now() + 60_000;
    w.applyEjection('fra', { until: ejectedUntil, count: 1, cause: 'five consecutive failures' });
    expect(w.snapshot.regions.get('fra')?.ejectedUntil).toBe(ejectedUntil);
    registry.down = false;
    const version = w.snapshot.version;
    await w.resync(); // the registry, which has no ejection, is read again: this one holds
    expect(w.snapshot.version).toBeGreaterThan(version);
    expect(w.snapshot.regions.get('fra')?.ejectedUntil).toBe(ejectedUntil);
    w.applyEjection('fra', null);
    expect(w.snapshot.regions.get('fra')?.ejectedUntil).toBe(0);
    // An ejection that has run out leaves no trace.
    w.applyEjection('atl', { until: Date.now() - 1, count: 1, cause: 'old' });
    expect(w.snapshot.regions.get('atl')?.ejectedUntil).toBe(0);
  });

  it("holds another router's ejection to the longest an ejection lasts from when it is first read, whatever that router's clock says", async () => {
    // A router ten minutes fast ejects a region until its own now + 30 s.
    const registry = new MemoryRegistry();
    let now = 1_000_000_000;
    const w = watch(registry, [], { now: () => now });
    await w.start();
    await registry.setEjection('fra', { until: now + 630_000, count: 1, cause: 'five consecutive failures' });
    await until('the ejection read', () => (w.snapshot.regions.get('fra')?.ejectedUntil ?? 0) > 0);
    expect(w.snapshot.regions.get('fra')?.ejectedUntil).toBe(now + MAX_EJECTION_MS);
    // Read again later, it keeps the end it was given when first read.
    now += 60_000;
    await w.resync();
    expect(w.snapshot.regions.get('fra')?.ejectedUntil).toBe(now - 60_000 + MAX_EJECTION_MS);
    // A new ejection (another end) is judged afresh; one within the bound is taken as written.
    await registry.setEjection('fra', { until: now + 30_000, count: 2, cause: 'five consecutive failures' });
    await until('the new ejection read', () => w.snapshot.regions.get('fra')?.ejectedUntil === now + 30_000);
  });

  it('ignores heartbeats for regions it does not know and older than the one it has', async () => {
    const registry = new MemoryRegistry();
    const w = watch(registry);
    await w.start();
    const now = Date.now();
    w.applyHeartbeat(heartbeat('atl', { reportedAt: now, inFlight: 5 }));
    w.applyHeartbeat(heartbeat('atl', { reportedAt: now - 100, inFlight: 1 }));
    w.applyHeartbeat(heartbeat('mars', { reportedAt: now }));
    expect(w.snapshot.regions.get('atl')?.inFlight).toBe(5);
    expect(w.snapshot.regions.has('mars')).toBe(false);
  });

  it('replaces the snapshot whole: an old reference never changes', async () => {
    const registry = new MemoryRegistry();
    const w = watch(registry);
    await w.start();
    const before = w.snapshot;
    await registry.setOverrides('atl', { drained: true, weight: null });
    await until(() => w.snapshot.regions.get('atl')?.drained === true);
    expect(before.regions.get('atl')?.drained).toBe(false);
    expect(w.snapshot.version).toBeGreaterThan(before.version);
  });
});

describe('RegistryWatcher: directory messages held while a read is under way', () => {
  it('reads the directory again right after a read during which more messages came than it keeps, not at the next reconcile', async () => {
    const registry = new MemoryRegistry();
    await registry.stampGeneration('seed:test'); // (a stamp through the wrapper below would land on the wrapper)
    const gated = Object.create(registry) as HealthRegistry;
    let gates: { beforeRead: Promise<void>; afterRead: Promise<void>; read: () => void } | undefined;
    gated.readState = async (held) => {
      const g = gates;
      if (g === undefined) return registry.readState(held);
      await g.beforeRead;
      const state = await registry.readState(held);
      g.read();
      await g.afterRead; // read, but not yet in the watcher
      return state;
    };
    const w = watch(gated, [], { pollMs: 60_000, reconcileMs: 60_000 });
    await w.start();
    const record = (i: number) => ({ org: 'acme', fn: `f${i}`, regions: null, tier: 'standard' as const, enabled: true });
    let openBefore!: () => void;
    let openAfter!: () => void;
    let wasRead!: () => void;
    const read = new Promise<void>((r) => (wasRead = r));
    gates = { beforeRead: new Promise((r) => (openBefore = r)), afterRead: new Promise((r) => (openAfter = r)), read: () => wasRead() };
    const resynced = w.resync();
    // 10,000 writes the read includes, their messages held (the most the watcher keeps), then some it does not.
    for (let i = 0; i < 10_000; i++) await registry.putFunction(record(i));
    await new Promise((r) => setTimeout(r, 0));
    openBefore();
    await read;
    gates = undefined;
    for (let i = 10_000; i < 10_010; i++) await registry.putFunction(record(i));
    await new Promise((r) => setTimeout(r, 0));
    openAfter();
    expect(await resynced).toBe(true);
    await until('every write in the snapshot', () => w.snapshot.functions.get('acme')?.size === 10_010, 2_000);
  });
});

describe('RegistryWatcher: a registry that lost its data', () => {
  const api = { org: 'acme', fn: 'api', regions: null, tier: 'standard', enabled: true } as const;

  async function seeded(): Promise<MemoryRegistry> {
    const registry = new MemoryRegistry();
    for (const r of REGIONS) await registry.writeHeartbeat(heartbeat(r.id), 60_000);
    await registry.putFunction(api);
    await registry.setOverrides('fra', { drained: true, weight: null });
    await registry.setOverrides('lax', { drained: false, weight: 3 });
    await registry.putDomain('api.example.com', { org: 'acme', fn: 'api' });
    await registry.setResidency('euonly', ['fra']);
    return registry;
  }

  it('keeps routing by the last-known directory and settings, writes them back, and says so', async () => {
    const events: WatcherEvent[] = [];
    const registry = cuttable(await seeded());
    const w = watch(registry, events, { reconcileMs: 50, heartbeatTtlMs: 60_000 });
    await w.start();
    expect(w.snapshot.functions.get('acme')?.get('api')).toBeDefined();
    // Never stamped before: the first sync stamps a generation.
    const generation = w.status().generation;
    expect(generation).not.toBeNull();
    expect((await registry.readState()).generation).toBe(generation);

    // Redis restarts empty; an operator undrains fra before anyone re-seeds.
    const empty = new MemoryRegistry();
    await empty.setOverrides('fra', { drained: false, weight: null });
    for (const r of REGIONS) await empty.writeHeartbeat(heartbeat(r.id), 60_000);
    registry.inner = empty;
    await until('the loss is noticed', () => events.some((e) => e.type === 'data-lost'));
    expect(w.snapshot.functions.get('acme')?.get('api')).toBeDefined();
    expect(w.snapshot.domains.get('api.example.com')).toEqual({ org: 'acme', fn: 'api' });
    await until('the registry holds its data again', () => events.some((e) => e.type === 'data-restored'));
    expect(w.status().dataLostAt).toBeNull();

    const restored = await empty.readState();
    // Under a name of its own, which no other process can take for a seed (generation.ts).
    expect(restored.generation).toMatch(/^restore:/);
    expect(w.status().generation).toBe(restored.generation);
    expect(restored.functions.get('acme')?.get('api')).toEqual(api);
    expect(restored.domains.get('api.example.com')).toEqual({ org: 'acme', fn: 'api' });
    expect(restored.residency.get('euonly')).toEqual(new Set(['fra']));
    // What was written after the loss stands; what was lost comes back.
    expect(restored.overrides).toEqual(new Map([['fra', { drained: false, weight: null }], ['lax', { drained: false, weight: 3 }]]));
    expect(w.snapshot.regions.get('fra')?.drained).toBe(false);
    expect(w.snapshot.regions.get('lax')?.weight).toBe(3);
    expect(w.snapshot.functions.get('acme')?.get('api')).toBeDefined();
  });

  it('takes a registry some fresh router stamped empty (a seed: generation) for the loss it is, and restores it', async () => {
    const events: WatcherEvent[] = [];
    const registry = cuttable(await seeded());
    const w = watch(registry, events, { reconcileMs: 50, heartbeatTtlMs: 60_000 });
    await w.start();
    const stampedEmpty = new MemoryRegistry();
    await stampedEmpty.stampGeneration('seed:2026-12-01T00:00:00.000Z/fresh000');
    registry.inner = stampedEmpty;
    await until('restored over the fresh stamp', async () => (await stampedEmpty.readState()).generation?.startsWith('restore:') === true);
    expect((await stampedEmpty.readState()).functions.get('acme')?.get('api')).toEqual(api);
    expect(events.some((e) => e.type === 'data-replaced')).toBe(false);
  });

  it('settles when a process started after the loss stamped the empty registry: one restore, which the newcomer takes', async () => {
    // A seen in review: the old router restored under its old `seed:` name, the newcomer took that
    // for a seed over its own and restored back, and so on, thousands of times a second; anything an
    // operator deleted meanwhile came straight back.
    const eventsA: WatcherEvent[] = [];
    const eventsB: WatcherEvent[] = [];
    const registry = cuttable(await seeded());
    const a = watch(registry, eventsA, { reconcileMs: 50, heartbeatTtlMs: 60_000 });
    await a.start();
    const emptied = new MemoryRegistry();
    for (const r of REGIONS) await emptied.writeHeartbeat(heartbeat(r.id), 60_000);
    let restores = 0;
    const restore = emptied.restore.bind(emptied);
    emptied.restore = (...args) => {
      restores += 1;
      return restore(...args);
    };
    // The newcomer reads the emptied registry first and stamps it: a `seed:` of its own.
    const b = watch(emptied, eventsB, { reconcileMs: 50, heartbeatTtlMs: 60_000 });
    await b.start();
    expect(b.status().generation).toMatch(/^seed:/);
    registry.inner = emptied;
    await until('the old router restored', () => eventsA.some((e) => e.type === 'data-restored'));
    await until('the newcomer took the restored data', () => b.snapshot.functions.get('acme')?.get('api') !== undefined);
    await new Promise((resolve) => setTimeout(resolve, 500)); // ten reconcile rounds each
    expect(restores).toBe(1);
    expect(a.status().generation).toMatch(/^restore:/);
    expect(b.status().generation).toBe(a.status().generation);
    expect(a.status().dataLostAt).toBeNull();
    expect(b.status().dataLostAt).toBeNull();
    expect(eventsB).toContainEqual({ type: 'data-replaced', from: expect.stringMatching(/^seed:/), to: a.status().generation });

    // Settled: a function deleted now stays deleted.
    expect(await emptied.deleteFunction('acme', 'api')).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await emptied.readState()).functions.get('acme')?.get('api')).toBeUndefined();
    expect(restores).toBe(1);
  });

  /** A watcher of a seeded registry that comes back empty and refuses the re-seed (a read-only replica), once it said so. */
  async function reseedFailing() {
    const events: WatcherEvent[] = [];
    const registry = cuttable(await seeded());
    const w = watch(registry, events, { reconcileMs: 50, heartbeatTtlMs: 60_000 });
    await w.start();
    const readOnly = new MemoryRegistry();
    readOnly.restore = () => Promise.reject(new Error('READONLY You can\'t write against a read only replica.'));
    registry.inner = readOnly;
    await until('a failed re-seed is reported', () => events.some((e) => e.type === 'restore-failed'));
    return { w, readOnly };
  }

  it('keeps serving the last-known state while the re-seed fails, and reports each failure', async () => {
    const { w } = await reseedFailing();
    expect(w.status().dataLostAt).not.toBeNull();
    expect(w.snapshot.functions.get('acme')?.get('api')).toBeDefined();
    expect(w.snapshot.regions.get('fra')?.drained).toBe(true);
  });

  it('routes by what is written to the registry since the loss while the re-seed fails: an undrain, a function deployed', async () => {
    // Every read while the restore failed routed on the last-known directory and settings alone: an
    // operator's undrain was thrown away at each read, and a function deployed was never routed
    // (its part's revision was taken as read, with the old entries).
    const { w, readOnly } = await reseedFailing();
    await readOnly.setOverrides('fra', { drained: false, weight: null });
    await readOnly.putFunction({ ...api, fn: 'since' });
    expect(await w.resync()).toBe(true);
    expect(w.snapshot.regions.get('fra')?.drained).toBe(false);
    expect(w.snapshot.functions.get('acme')?.get('since')).toBeDefined();
    // What the registry lost is still routed by.
    expect(w.snapshot.functions.get('acme')?.get('api')).toBeDefined();
    expect(w.snapshot.regions.get('lax')?.weight).toBe(3);
    expect(w.status().dataLostAt).not.toBeNull();
  });

  it('takes data put in place on purpose (another generation) as it is, without writing anything back', async () => {
    const events: WatcherEvent[] = [];
    const registry = cuttable(await seeded());
    const w = watch(registry, events, { reconcileMs: 50, heartbeatTtlMs: 60_000 });
    await w.start();
    const imported = new MemoryRegistry();
    await imported.restore({ functions: new Map([['beta', new Map([['web', { ...api, org: 'beta', fn: 'web' }]])]]), residency: new Map(), domains: new Map(), overrides: new Map() }, 'imported', 'overwrite');
    registry.inner = imported;
    await until('the new generation is taken', () => w.status().generation === 'imported');
    expect(events).toContainEqual({ type: 'data-replaced', from: expect.any(String), to: 'imported' });
    await until('the snapshot follows it', () => w.snapshot.functions.get('beta')?.get('web') !== undefined);
    expect(w.snapshot.functions.get('acme')).toBeUndefined();
    expect((await imported.readState()).functions.get('acme')).toBeUndefined();
  });
});
