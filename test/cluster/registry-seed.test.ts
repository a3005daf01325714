/**
 * A replacement worker started while Redis is unreachable cannot read the function directory. Its
 * siblings route on what they last read (fail-static); it must too, or it answers its share of the
 * router's connections 503 registry_unreachable and calls itself not ready until Redis is back.
 */
import { request } from 'undici';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { LastKnownRelay, seedFromSiblings, type SeedableWatcher } from '../../src/cluster/registry-seed.js';
import type { HealthRegistry } from '../../src/registry/health-registry.js';
import { MemoryRegistry } from '../../src/registry/memory-registry.js';
import { RedisRegistry } from '../../src/registry/redis-registry.js';
import { RegistryWatcher, type LastKnownState, type WatcherEvent } from '../../src/registry/registry-watcher.js';
import { linkedPair, type LinkedPair } from '../support/linked-pair.js';
import { TestOrigin } from '../support/origin.js';
import { CLUSTER_START_TIMEOUT_MS, outputLinesWith, readyPidsOf, runEdgeRouter } from '../support/process.js';
import { freePort, TestRedisServer } from '../support/redis-server.js';
import { REGIONS } from '../support/regions.js';
import { regionsFileFor } from '../support/router.js';
import { REDIS_MISSING } from '../support/system-program.js';
import { until, untilDefined } from '../support/until.js';

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});


/** One request on a connection of its own (node:cluster hands each new connection to the next worker). */
async function fresh(port: number, path: string, host?: string): Promise<string> {
  const res = await request(`http://127.0.0.1:${port}${path}`, { headers: { connection: 'close', ...(host === undefined ? {} : { host }) } });
  return `${res.statusCode} ${await res.body.text()}`;
}

describe('seeding a worker from its siblings, through the primary', () => {
  const pairs: LinkedPair[] = [];
  afterEach(() => pairs.splice(0).forEach((p) => p.close()));

  /** A worker's watcher: `known` is what it can give; what it was seeded with is recorded. */
  function fakeWatcher(known: LastKnownState | undefined): SeedableWatcher & { seeded: LastKnownState[] } {
    const seeded: LastKnownState[] = [];
    return {
      seeded,
      lastKnown: () => known,
      seed(state) {
        seeded.push(state);
        known = state;
        return true;
      },
      get snapshot() {
        return seeded.length === 0 && known === undefined ? { directoryUnread: true as const } : {};
      },
    };
  }
  function worker(relay: LastKnownRelay) {
    const pair = linkedPair(1_000);
    pairs.push(pair);
    return { link: pair.worker, detach: relay.attach(pair.primary) };
  }

  it("gives a worker that has read nothing a sibling's state, and the last one relayed once no sibling is left", async () => {
    const registry = new MemoryRegistry();
    await registry.putFunction({ org: 'acme', fn: 'api', regions: null, tier: 'standard', enabled: true });
    const reader = new RegistryWatcher({ registry, regions: REGIONS });
    await reader.start();
    const relay = new LastKnownRelay();
    const sibling = worker(relay);
    const stopAnswering = await seedFromSiblings(sibling.link, reader);
    const first = worker(relay);
    const firstWatcher = fakeWatcher(undefined);
    const stopFirst = await seedFromSiblings(first.link, firstWatcher);
    expect(firstWatcher.seeded).toHaveLength(1);
    expect(firstWatcher.seeded[0]!.state.functions.get('acme')?.has('api')).toBe(true);
    // A running sibling's state: live, as the watcher it came from holds it.
    expect(firstWatcher.seeded[0]!.heldCopyAt).toBeNull();
    // Every worker that knew anything has gone: the primary's one copy still serves, marked as a copy held since the relay.
    const relayedBy = Date.now();
    sibling.detach();
    first.detach();
    const second = worker(relay);
    const secondWatcher = fakeWatcher(undefined);
    const stopSecond = await seedFromSiblings(second.link, secondWatcher);
    expect(secondWatcher.seeded[0]!.state.functions.get('acme')?.has('api')).toBe(true);
    expect(secondWatcher.seeded[0]!.heldCopyAt).toBeLessThanOrEqual(relayedBy);
    // Passed on by a running worker that routes on it, the copy is still one, held since the same moment.
    const third = worker(relay);
    const thirdWatcher = fakeWatcher(undefined);
    const stopThird = await seedFromSiblings(third.link, thirdWatcher);
    expect(thirdWatcher.seeded[0]!.heldCopyAt).toBe(secondWatcher.seeded[0]!.heldCopyAt);
    // A sibling with live state is preferred to those that route on the copy, wherever it comes in the asking.
    const live = worker(relay);
    const stopLive = await seedFromSiblings(live.link, reader);
    const fourth = worker(relay);
    const fourthWatcher = fakeWatcher(undefined);
    const stopFourth = await seedFromSiblings(fourth.link, fourthWatcher);
    expect(fourthWatcher.seeded[0]!.heldCopyAt).toBeNull();
    [stopAnswering, stopFirst, stopSecond, stopThird, stopLive, stopFourth].forEach((stop) => stop());
    await reader.stop();
  });

  it('a watcher routes by a seed as stale as its source, and refuses one once it has read the registry', async () => {
    const registry = new MemoryRegistry();
    await registry.putFunction({ org: 'acme', fn: 'api', regions: null, tier: 'standard', enabled: true });
    const reader = new RegistryWatcher({ registry, regions: REGIONS });
    await reader.start();
    const known = reader.lastKnown()!;
    // A registry that answers nothing: the watcher has read nothing.
    const silent = new Proxy(registry, { get: (target, key) => (key === 'kind' ? target.kind : () => Promise.reject(new Error('unreachable'))) });
    const seeded = new RegistryWatcher({ registry: silent, regions: REGIONS, startupReadRetries: 0 });
    await seeded.start();
    expect(seeded.snapshot.directoryUnread).toBe(true);
    expect(seeded.seed({ ...known, contactAt: known.contactAt - 60_000 })).toBe(true);
    expect(seeded.snapshot.directoryUnread).toBeUndefined();
    expect(seeded.snapshot.functions.get('acme')?.has('api')).toBe(true);
    expect(seeded.status()).toMatchObject({ stale: true, contactAt: known.contactAt - 60_000 });
    expect(reader.seed(known)).toBe(false);
    await Promise.all([reader.stop(), seeded.stop()]);
  });
});

/**
 * The primary's held copy may be from an earlier outage: written back to a Redis that came back
 * empty, it brought back every function removed since and left out every one deployed since, for
 * every router. A live sibling's state is what the router routes by, and is written back as before.
 */
describe.skipIf(REDIS_MISSING)('a seeded worker and a Redis that comes back empty', () => {
  const pairs: LinkedPair[] = [];
  const watchers: RegistryWatcher[] = [];
  afterEach(async () => {
    pairs.splice(0).forEach((p) => p.close());
    await Promise.all(watchers.splice(0).map((w) => w.stop()));
  });

  const API = { org: 'acme', fn: 'api', regions: null, tier: 'standard', enabled: true } as const;

  async function redisWithApi() {
    const redis = await TestRedisServer.start();
    cleanup.push(() => redis.stop());
    const registry = () => {
      const r = new RedisRegistry({ url: redis.url, regions: REGIONS.map((region) => region.id) });
      cleanup.push(() => r.close());
      return r;
    };
    const writer = registry();
    await writer.ready(5_000);
    await writer.putFunction(API);
    return { redis, registry, writer };
  }

  /** A worker: its own watcher on the registry, linked to the primary's relay. */
  async function startWorker(relay: LastKnownRelay, registry: HealthRegistry) {
    const events: WatcherEvent[] = [];
    const watcher = new RegistryWatcher({ registry, regions: REGIONS, pollMs: 100, reconcileMs: 500, startupReadRetries: 0, onEvent: (e) => events.push(e) });
    watchers.push(watcher);
    await watcher.start();
    const pair = linkedPair(1_000);
    pairs.push(pair);
    const detach = relay.attach(pair.primary);
    const stopSeeding = await seedFromSiblings(pair.worker, watcher);
    return {
      watcher,
      events,
      /** Dies: the primary forgets it, and it reads nothing more. */
      async die() {
        detach();
        stopSeeding();
        await watcher.stop();
      },
    };
  }

  /**
   * Redis holding acme/api, read by a first worker; then the third worker of workerOnHeldCopy,
   * routing on the primary's copy of it, and Redis restarted empty and read by that worker.
   */
  async function heldCopyAfterLoss() {
    const { redis, registry, writer } = await redisWithApi();
    const relay = new LastKnownRelay();
    const first = await startWorker(relay, registry());
    await until('the first worker has read acme/api', () => first.watcher.snapshot.functions.get('acme')?.has('api') === true, 10_000);
    const third = await workerOnHeldCopy(relay, redis, registry, first);
    await redis.restart();
    await until('the replacement has read the emptied Redis', () => readAfterLoss(third.events), 20_000);
    return { redis, registry, writer, third };
  }

  /**
   * The outage of these tests: Redis stops, one worker dies and its replacement is seeded from
   * `first` (the primary keeps that copy), then both die at once: the third worker, returned, is
   * seeded from the copy the primary held.
   */
  async function workerOnHeldCopy(relay: LastKnownRelay, redis: TestRedisServer, registry: () => HealthRegistry, first: Awaited<ReturnType<typeof startWorker>>) {
    await redis.stop();
    const second = await startWorker(relay, registry());
    expect(second.watcher.status().heldCopyAt).toBeNull();
    await Promise.all([first.die(), second.die()]);
    const third = await startWorker(relay, registry());
    expect(third.watcher.status().heldCopyAt).not.toBeNull();
    return third;
  }

  const readAfterLoss = (events: WatcherEvent[]) => {
    const lost = events.findIndex((e) => e.type === 'data-lost');
    return lost >= 0 && events.slice(lost).some((e) => e.type === 'synced');
  };

  it("does not write the primary's copy back when every worker died during the outage, and routes on it until Redis holds data", async () => {
    const { redis, registry, writer } = await redisWithApi();
    const relay = new LastKnownRelay();
    const first = await startWorker(relay, registry());
    // Its first read may fail on a loaded machine (the connection still opening): read again at the next poll.
    await until('the first worker has read acme/api', () => first.watcher.snapshot.functions.get('acme')?.has('api') === true);

    // An outage: one worker dies, its replacement is seeded from the other (the primary keeps that
    // copy), then every worker dies at once: the next is seeded from the copy the primary held.
    const third = await workerOnHeldCopy(relay, redis, registry, first);
    expect(third.events.find((e) => e.type === 'seeded')).toMatchObject({ heldCopyAt: expect.any(Number) });
    expect(third.watcher.snapshot.functions.get('acme')?.has('api')).toBe(true);

    // Redis comes back empty.
    await redis.restart();
    await until('the replacement has read the emptied Redis', () => readAfterLoss(third.events), 10_000);
    expect(third.events).toContainEqual({ type: 'data-lost', generation: expect.any(String), heldCopyAt: expect.any(Number) });
    // Not written back (before: acme/api was, under a restore: generation) ...
    const inRedis = await untilDefined('Redis read', () => writer.readState());
    expect(inRedis.generation).toBeNull();
    expect(inRedis.functions.size).toBe(0);
    // ... but routed on, and said so: the degraded readiness a lost registry gives.
    expect(third.watcher.snapshot.functions.get('acme')?.has('api')).toBe(true);
    expect(third.watcher.status()).toMatchObject({ dataLostAt: expect.any(Number), heldCopyAt: expect.any(Number) });

    // An orchestrator re-asserts what it hosts: the registry has data, and the copy gives way to it.
    await untilDefined('the re-assertion', () => writer.assertFunction({ ...API, fn: 'hosted' }));
    await until('the replacement routes by the registry', () => third.watcher.status().heldCopyAt === null, 10_000);
    expect(third.watcher.snapshot.functions.get('acme')?.has('hosted')).toBe(true);
    expect(third.watcher.snapshot.functions.get('acme')?.has('api')).toBe(false);
    expect(third.watcher.status()).toMatchObject({ dataLostAt: null, heldCopyAt: null, generation: expect.stringMatching(/^seed:/) });
    expect(third.events.some((e) => e.type === 'held-copy-dropped')).toBe(true);
    expect((await writer.readState()).functions.get('acme')?.has('api')).toBe(false);
  }, 30_000);

  it("routes by an operator's override written to the emptied Redis, over the primary's copy, while it routes on that copy", async () => {
    const { redis, registry, writer } = await redisWithApi();
    await writer.updateOverrides('fra', { drained: true });
    const relay = new LastKnownRelay();
    const first = await startWorker(relay, registry());
    await until('the first worker has read the drain', () => first.watcher.snapshot.regions.get('fra')?.drained === true);
    const third = await workerOnHeldCopy(relay, redis, registry, first);

    await redis.restart();
    await until('the replacement has read the emptied Redis', () => readAfterLoss(third.events), 10_000);
    // An operator drains lax meanwhile (the directory still empty: the copy stays).
    await untilDefined('the drain', async () => (await writer.updateOverrides('lax', { drained: true }), true));
    await until('the replacement routes by the drain', () => third.watcher.snapshot.regions.get('lax')?.drained === true, 5_000);
    // Where Redis has no word, the copy's stands; the copy is still routed on.
    expect(third.watcher.snapshot.regions.get('fra')?.drained).toBe(true);
    expect(third.watcher.snapshot.functions.get('acme')?.has('api')).toBe(true);
    expect(third.watcher.status().heldCopyAt).not.toBeNull();
  }, 30_000);

  it("keeps routing on the primary's copy when a router with no state of its own only stamped the emptied Redis, and adopts that stamp once Redis holds data", async () => {
    const { registry, writer, third } = await heldCopyAfterLoss();
    // A router started after the loss finds Redis empty and unstamped: it stamps a seed: generation, and has nothing to write.
    // (Its start reads for a second at most: on a loaded machine its connection may take longer to
    // open, and it stamps at its next poll.)
    const fresh = new RegistryWatcher({ registry: registry(), regions: REGIONS, pollMs: 100, startupReadRetries: 10 });
    watchers.push(fresh);
    await fresh.start();
    await until('the fresh router has stamped Redis', () => fresh.status().generation?.startsWith('seed:') === true, 10_000);
    const stamped = fresh.status().generation;
    const inRedis = await untilDefined('Redis read', () => writer.readState(), 10_000);
    expect(inRedis.functions.size).toBe(0);
    // That stamp is no data: the copy still beats the empty directory.
    const readsBefore = third.events.filter((e) => e.type === 'synced').length;
    await until('the replacement has read the stamped Redis', () => third.events.filter((e) => e.type === 'synced').length >= readsBefore + 2, 10_000);
    expect(third.watcher.snapshot.functions.get('acme')?.has('api')).toBe(true);
    expect(third.watcher.status().heldCopyAt).not.toBeNull();
    // Once an orchestrator re-asserts a function, the registry's data, under that stamp, is routed by.
    await untilDefined('the re-assertion', () => writer.assertFunction({ ...API, fn: 'hosted' }));
    await until('the replacement routes by the registry', () => third.watcher.status().heldCopyAt === null, 10_000);
    expect(third.watcher.status().generation).toBe(stamped);
    expect(third.watcher.snapshot.functions.get('acme')?.has('hosted')).toBe(true);
    expect(third.watcher.snapshot.functions.get('acme')?.has('api')).toBe(false);
  }, 90_000);

  it("keeps the primary's copy, and keeps it from being written back, while the emptied Redis's generation key is of the wrong type", async () => {
    const { redis, writer, third } = await heldCopyAfterLoss();
    const raw = new Redis(redis.url);
    cleanup.push(async () => raw.disconnect());
    const readsSince = () => {
      const before = third.events.filter((e) => e.type === 'synced').length;
      return () => third.events.filter((e) => e.type === 'synced').length >= before + 2;
    };

    // A hash where the generation belongs: its read is refused WRONGTYPE, the directory is still empty.
    await raw.hset('edge:generation', 'by', 'hand');
    const twoReads = readsSince();
    await until('the replacement has read the mistyped key twice', () => twoReads() && third.watcher.status().unreadableParts.includes('generation'), 10_000);
    // Before: that read's empty directory replaced the copy, and the copy was no longer a held one.
    expect(third.watcher.snapshot.functions.get('acme')?.has('api')).toBe(true);
    expect(third.watcher.status().heldCopyAt).not.toBeNull();

    // The key removed: the data is lost as before, and the copy is still not written back.
    await raw.del('edge:generation');
    const twoMore = readsSince();
    await until('the replacement has read the generation gone', () => twoMore() && third.watcher.status().unreadableParts.length === 0, 10_000);
    expect(third.watcher.snapshot.functions.get('acme')?.has('api')).toBe(true);
    expect(third.watcher.status()).toMatchObject({ dataLostAt: expect.any(Number), heldCopyAt: expect.any(Number) });
    const inRedis = await untilDefined('Redis read', () => writer.readState());
    expect(inRedis.generation).toBeNull();
    expect(inRedis.functions.size).toBe(0);

    // Mistyped again, and an orchestrator re-asserts what it hosts: the registry holds data, and the copy gives way to it.
    await raw.hset('edge:generation', 'by', 'hand');
    await untilDefined('the re-assertion', () => writer.assertFunction({ ...API, fn: 'hosted' }));
    await until('the replacement routes by the registry', () => third.watcher.status().heldCopyAt === null, 10_000);
    expect(third.watcher.snapshot.functions.get('acme')?.has('hosted')).toBe(true);
    expect(third.watcher.snapshot.functions.get('acme')?.has('api')).toBe(false);
    expect(third.events.some((e) => e.type === 'held-copy-dropped')).toBe(true);
    expect((await writer.readState()).functions.get('acme')?.has('api')).toBe(false);
  }, 60_000);

  it("writes a live sibling's state back, as before, when it is the only worker left", async () => {
    const { redis, registry, writer } = await redisWithApi();
    const relay = new LastKnownRelay();
    const first = await startWorker(relay, registry());
    await until('the first worker has read acme/api', () => first.watcher.snapshot.functions.get('acme')?.has('api') === true);
    await redis.stop();
    const second = await startWorker(relay, registry());
    expect(second.events.find((e) => e.type === 'seeded')).toMatchObject({ heldCopyAt: null });
    // The worker it was seeded from dies: only the seeded one can put the state back.
    await first.die();

    await redis.restart();
    await until('the seeded worker has read the emptied Redis', () => readAfterLoss(second.events), 10_000);
    expect(second.events).toContainEqual({ type: 'data-lost', generation: expect.any(String), heldCopyAt: null });
    const inRedis = await untilDefined('Redis read', () => writer.readState());
    expect(inRedis.generation).toMatch(/^restore:/);
    expect(inRedis.functions.get('acme')?.has('api')).toBe(true);
  }, 30_000);
});

/**
 * A private Redis holding acme/api (its writer kept open for the test), and `router --workers 2`
 * on it (probes on, plain HTTP served) once both workers route acme/api.
 */
async function clusterRoutingAcmeApi() {
  const redis = await TestRedisServer.start();
  cleanup.push(() => redis.stop());
  const writer = new RedisRegistry({ url: redis.url, regions: REGIONS.map((r) => r.id) });
  cleanup.push(() => writer.close());
  await writer.ready(5_000);
  await writer.putFunction({ org: 'acme', fn: 'api', regions: null, tier: 'standard', enabled: true });

  const nyc = await TestOrigin.start('nyc');
  cleanup.push(() => nyc.kill());
  const regions = await regionsFileFor({ nyc: nyc.url });
  const [https, http, admin] = [await freePort(), await freePort(), await freePort()];
  const proc = runEdgeRouter(
    [
      'router', '--workers', '2', '--dev-cert', '--regions', regions, '--redis', redis.url, '--unknown-functions', 'reject', '--plain-http', 'serve',
      '--probe', 'on', '--probe-interval', '200', '--bind', '127.0.0.1', '--https-port', String(https), '--http-port', String(http), '--admin-port', String(admin), '--log-level', 'info',
    ],
    { EDGE_ADMIN_TOKEN: 'registry-seed-test-token-0123456789' },
  );
  cleanup.push(() => proc.stop('SIGKILL'));
  await until('both workers ready', () => readyPidsOf(proc).length === 2, CLUSTER_START_TIMEOUT_MS);
  const host = 'api-acme.telnyxcompute.com';
  await until('both workers route acme/api', async () => (await fresh(http, '/r', host)).startsWith('200') && (await fresh(http, '/r', host)).startsWith('200'), 15_000);
  return { redis, writer, proc, http, admin, host };
}

describe.skipIf(REDIS_MISSING)('a replacement worker started while Redis is unreachable', () => {
  it('routes on the directory its siblings last read (marked stale), and is ready', async () => {
    const { redis, proc, http, admin, host } = await clusterRoutingAcmeApi();

    // Redis goes away; both workers notice and route on what they read (fail-static).
    await redis.stop();
    await until('both workers stale', () => outputLinesWith(proc, '"event":"registry_stale"').length >= 2, 15_000);

    // One worker dies (an OOM kill); its replacement cannot read Redis.
    process.kill(readyPidsOf(proc)[0]!, 'SIGKILL');
    await until('a replacement worker ready', () => readyPidsOf(proc).length === 3 || proc.child.exitCode !== null, 30_000);
    expect(proc.child.exitCode).toBeNull();

    // Every connection, whichever worker takes it, is routed; every readiness probe says ready.
    // Before: one in two answered 503 registry_unreachable, and /readyz flapped between 200 and 503.
    const answers: string[] = [];
    const readiness: string[] = [];
    for (let i = 0; i < 8; i++) {
      answers.push((await fresh(http, '/r', host)).slice(0, 3));
      readiness.push(await fresh(admin, '/readyz'));
    }
    expect(answers).toEqual(Array(8).fill('200'));
    // Ready, and saying on what (as the other worker does): "ready (degraded): the registry has been unreachable …".
    expect(readiness.filter((r) => !r.startsWith('200 ready (degraded): the registry has been unreachable'))).toEqual([]);
    expect(proc.output()).toContain('"event":"registry_seeded"');
    // Once Redis answers, the replacement reads it as any worker does.
    await redis.restart();
    await until('every worker back on Redis', () => outputLinesWith(proc, '"event":"registry_recovered"').length >= 2, 20_000);
    expect(await proc.stop('SIGTERM')).toBe(0);
  }, CLUSTER_START_TIMEOUT_MS + 90_000);

  it("when every worker dies, routes on the primary's copy, and does not write it back to a Redis that came back empty", async () => {
    const { redis, writer, proc, http, admin, host } = await clusterRoutingAcmeApi();

    await redis.stop();
    await until('both workers stale', () => outputLinesWith(proc, '"event":"registry_stale"').length >= 2, 15_000);
    // One worker dies: its replacement is seeded from the other, and the primary keeps that copy.
    process.kill(readyPidsOf(proc)[0]!, 'SIGKILL');
    await until('a replacement worker ready', () => readyPidsOf(proc).length === 3, 30_000);
    expect(outputLinesWith(proc, '"source":"sibling"').length).toBe(1);
    // Then every worker dies at once: their replacements have only the primary's copy.
    for (const pid of readyPidsOf(proc).slice(1)) process.kill(pid, 'SIGKILL');
    await until('two more replacements ready', () => readyPidsOf(proc).length === 5, 30_000);
    expect(outputLinesWith(proc, '"source":"held-copy"').length).toBe(2);
    for (let i = 0; i < 4; i++) expect(await fresh(http, '/r', host)).toMatch(/^200/);

    // Redis comes back empty: each replacement says so, and leaves it empty (before: each wrote the copy back).
    await redis.restart();
    await until('both replacements found Redis without its data', () => outputLinesWith(proc, '"writingBack":false').length === 2, 20_000);
    const inRedis = await untilDefined('Redis read', () => writer.readState(), 5_000);
    expect(inRedis.generation).toBeNull();
    expect(inRedis.functions.size).toBe(0);
    expect(outputLinesWith(proc, '"writingBack":true').length).toBe(0);
    // They route on the copy meanwhile, and say on what.
    for (let i = 0; i < 4; i++) expect(await fresh(http, '/r', host)).toMatch(/^200/);
    expect(await fresh(admin, '/readyz')).toMatch(/^200 ready \(degraded\): the registry lost its data \d+ s ago; routing on the cluster primary's copy/);
    expect(await proc.stop('SIGTERM')).toBe(0);
  }, CLUSTER_START_TIMEOUT_MS + 120_000);
});
