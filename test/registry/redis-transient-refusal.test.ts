/**
 * A paged read of a directory part that Redis refuses for a moment (LOADING while it loads its
 * dataset, BUSY behind a long script) says nothing of the key: the read fails, as one whose
 * transaction Redis refused or whose connection was cut midway does, and the watcher reads again
 * at its next poll. Taken for a key of the wrong type, the key was logged as bad data, named
 * unreadable (/readyz), and a router at start held its directory back until the next reconcile.
 *
 * Real Redis (its own redis-server, DEBUG enabled: ../support/redis-refusal.ts): LOADING by DEBUG
 * RELOAD, BUSY by a script that loops until SCRIPT KILL. Each starts while the read is between two pages.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { RedisRegistry } from '../../src/registry/redis-registry.js';
import { RegistryWatcher, type WatcherEvent } from '../../src/registry/registry-watcher.js';
import { createRouteDecider } from '../../src/routing/route-decider.js';
import type { GeoLocator } from '../../src/core/geo-locator.js';
import type { TestRedisServer } from '../support/redis-server.js';
import { BUSY, LOADING, startRefusingRedis, type Refusal, type RefusingRedis } from '../support/redis-refusal.js';
import { REGIONS } from '../support/regions.js';
import { REDIS_MISSING } from '../support/system-program.js';
import { until } from '../support/until.js';
import { heartbeat } from './registry-contract.js';

/** Every client is in London: fra is nearest, so acme goes to fra unless its rule (syd) is read. */
const LONDON: GeoLocator = { locate: (ip) => ({ ip, country: 'GB', city: 'London', lat: 51.5074, lon: -0.1278, source: 'geoip' }) };
const decider = createRouteDecider({ regions: REGIONS, zone: 'telnyxcompute.com', locator: LONDON, countryRegions: new Map(), defaultRegion: 'nyc', customDomains: new Map(), unknownFunctions: 'reject' });
const routeAcme = (watcher: RegistryWatcher) => decider.decide('api-acme.telnyxcompute.com', '198.51.100.1', watcher.snapshot, Date.now());

describe.skipIf(REDIS_MISSING)('RedisRegistry: a paged read Redis refuses for a moment (own redis-server)', () => {
  let redis: RefusingRedis | undefined;
  let server: TestRedisServer;
  beforeAll(async () => {
    redis = await startRefusingRedis();
    server = redis.server;
  });
  afterAll(async () => {
    await redis?.stop();
  });
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /**
   * A router's registry (paging 2 entries at a time, `onRejected` recorded) on a fresh prefix holding
   * acme/api, acme's rule (syd) among 600 others, every region up; `refuseAt` begins `refusal`
   * when the read asks for the residency's second page, and ends it once that page is answered.
   */
  async function setup(refusal: Refusal) {
    const p = `test:${randomUUID()}:`;
    const regions = REGIONS.map((r) => r.id);
    const rejected: Array<[string, string]> = [];
    const registry = new RedisRegistry({ url: server.url, keyPrefix: p, regions, directoryPageEntries: 2, onRejected: (where, reason) => rejected.push([where, reason]) });
    const writer = new RedisRegistry({ url: server.url, keyPrefix: p, regions });
    const admin = new Redis(server.url);
    const probe = new Redis(server.url);
    cleanups.push(async () => {
      admin.disconnect();
      probe.disconnect();
      await Promise.all([registry.close(), writer.close()]);
    });
    await Promise.all([registry.ready(), writer.ready()]);
    for (const region of regions) await writer.writeHeartbeat(heartbeat(region), 600_000);
    await writer.putFunction({ org: 'acme', fn: 'api', regions: null, tier: 'standard', enabled: true });
    await writer.setResidency('acme', ['syd']);
    // More rules than Redis keeps in a listpack (hash-max-listpack-entries, 128), so that HSCAN pages.
    await admin.hset(`${p}residency`, Object.fromEntries(Array.from({ length: 600 }, (_, i) => [`eu${i}`, '["fra"]'])));

    const cmd = (registry as unknown as { cmd: Redis }).cmd;
    const hscan = cmd.hscan.bind(cmd) as (...args: unknown[]) => Promise<[string, string[]]>;
    let pages = 0;
    let refused = 0;
    (cmd as unknown as { hscan: unknown }).hscan = async (...args: unknown[]) => {
      if (args[0] !== `${p}residency` || ++pages !== 2 || refused > 0) return hscan(...args);
      refused++;
      const end = await refusal.begin(admin, probe);
      try {
        return await hscan(...args);
      } finally {
        await end();
      }
    };
    return { registry, rejected, refusals: () => refused };
  }

  it.each([LOADING, BUSY])('fails the read on $name, names no key unreadable, and reads it whole once Redis answers', async (refusal) => {
    const { registry, rejected, refusals } = await setup(refusal);
    await expect(registry.readState(undefined, 'paged')).rejects.toThrow(refusal.reply);
    expect(refusals()).toBe(1);
    expect(rejected).toEqual([]);

    const state = await registry.readState(undefined, 'paged');
    expect(state.unreadable).toEqual(new Map());
    expect(state.residency.size).toBe(601);
    expect(state.residency.get('acme')).toEqual(new Set(['syd']));
    expect(rejected).toEqual([]);
  });

  it('a router whose first read is refused LOADING midway never names the key unreadable, and routes by the rule once Redis has loaded', async () => {
    const { registry, rejected, refusals } = await setup(LOADING);
    const events: WatcherEvent[] = [];
    const unreadableSeen = new Set<string>();
    // The reconcile far away: the poll that follows a failed read reads the directory again.
    const watcher: RegistryWatcher = new RegistryWatcher({
      registry,
      regions: REGIONS,
      heartbeatTtlMs: 600_000,
      pollMs: 50,
      reconcileMs: 600_000,
      startupReadRetries: 0,
      onEvent: (e) => {
        events.push(e);
        for (const part of watcher.status().unreadableParts) unreadableSeen.add(part);
      },
    });
    cleanups.push(() => watcher.stop());
    await watcher.start();
    expect(refusals()).toBe(1);
    await until('routed by the rule', () => {
      const d = routeAcme(watcher);
      return d.ok && d.candidates.join() === 'syd';
    }, 5_000);
    expect(watcher.status().unreadableParts).toEqual([]);
    expect([...unreadableSeen]).toEqual([]);
    expect(rejected).toEqual([]);
    // Said as what it is: a read that failed.
    expect(events.some((e) => (e.type === 'error' || e.type === 'stale') && /^LOADING /.test(e.error))).toBe(true);
  }, 20_000);
});
