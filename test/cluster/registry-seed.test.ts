/**
 * A replacement worker started while Redis is unreachable cannot read the function directory. Its
 * siblings route on what they last read (fail-static); it must too, or it answers its share of the
 * router's connections 503 registry_unreachable and calls itself not ready until Redis is back.
 */
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { LastKnownRelay, seedFromSiblings, type SeedableWatcher } from '../../src/cluster/registry-seed.js';
import { MemoryRegistry } from '../../src/registry/memory-registry.js';
import { RedisRegistry } from '../../src/registry/redis-registry.js';
import { RegistryWatcher, type LastKnownState } from '../../src/registry/registry-watcher.js';
import { linkedPair, type LinkedPair } from '../support/linked-pair.js';
import { TestOrigin } from '../support/origin.js';
import { runEdgeRouter, type RunningProcess } from '../support/process.js';
import { freePort, TestRedisServer } from '../support/redis-server.js';
import { REGIONS } from '../support/regions.js';
import { regionsFileFor } from '../support/router.js';
import { REDIS_MISSING } from '../support/system-program.js';
import { until } from '../support/until.js';

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const readyPidsOf = (proc: RunningProcess): number[] =>
  proc.output().split('\n').filter((l) => l.includes('"edge router ready"')).map((l) => (JSON.parse(l) as { pid: number }).pid);

const linesWith = (proc: RunningProcess, text: string): number => proc.output().split('\n').filter((l) => l.includes(text)).length;

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
    // Every worker that knew anything has gone: the primary's one copy still serves.
    sibling.detach();
    first.detach();
    const second = worker(relay);
    const secondWatcher = fakeWatcher(undefined);
    const stopSecond = await seedFromSiblings(second.link, secondWatcher);
    expect(secondWatcher.seeded[0]!.state.functions.get('acme')?.has('api')).toBe(true);
    [stopAnswering, stopFirst, stopSecond].forEach((stop) => stop());
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

describe.skipIf(REDIS_MISSING)('a replacement worker started while Redis is unreachable', () => {
  it('routes on the directory its siblings last read (marked stale), and is ready', async () => {
    const redis = await TestRedisServer.start();
    cleanup.push(() => redis.stop());
    const writer = new RedisRegistry({ url: redis.url, regions: REGIONS.map((r) => r.id) });
    await writer.ready(5_000);
    await writer.putFunction({ org: 'acme', fn: 'api', regions: null, tier: 'standard', enabled: true });
    await writer.close();

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
    await until('both workers ready', () => readyPidsOf(proc).length === 2, 20_000);
    const host = 'api-acme.telnyxcompute.com';
    await until('both workers route acme/api', async () => (await fresh(http, '/r', host)).startsWith('200') && (await fresh(http, '/r', host)).startsWith('200'), 15_000);

    // Redis goes away; both workers notice and route on what they read (fail-static).
    await redis.stop();
    await until('both workers stale', () => linesWith(proc, '"event":"registry_stale"') >= 2, 15_000);

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
    await until('every worker back on Redis', () => linesWith(proc, '"event":"registry_recovered"') >= 2, 20_000);
    expect(await proc.stop('SIGTERM')).toBe(0);
  }, 90_000);
});
