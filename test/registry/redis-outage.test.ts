import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { RedisRegistry } from '../../src/registry/redis-registry.js';
import { RegistryWatcher, type WatcherEvent } from '../../src/registry/registry-watcher.js';
import { createRouteDecider } from '../../src/routing/route-decider.js';
import type { GeoLocator } from '../../src/core/geo-locator.js';
import { REGIONS } from '../support/regions.js';
import { TestRedisServer } from '../support/redis-server.js';
import { REDIS_MISSING } from '../support/system-program.js';
import { heartbeat } from './registry-contract.js';
import { timeUnstalled } from '../support/time-unstalled.js';
import { until } from '../support/until.js';

const LONDON: GeoLocator = {
  locate: (ip) => ({ ip, country: 'GB', city: 'London', lat: 51.5074, lon: -0.1278, source: 'geoip' }),
};

/** Every client is in London: fra is nearest. */
const londonDecider = () =>
  createRouteDecider({
    regions: REGIONS,
    zone: 'telnyxcompute.com',
    locator: LONDON,
    countryRegions: new Map(),
    defaultRegion: 'nyc',
    customDomains: new Map(),
    unknownFunctions: 'forward',
  });

async function commandCount(url: string): Promise<number> {
  const raw = new Redis(url);
  const info = await raw.info('commandstats');
  raw.disconnect();
  return [...info.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)].filter(([, name]) => name !== 'info').reduce((sum, [, , n]) => sum + Number(n), 0);
}

describe.skipIf(REDIS_MISSING)('Redis registry under outage (own redis-server)', () => {
  let server: TestRedisServer;
  beforeAll(async () => {
    server = await TestRedisServer.start();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('keeps routing on the last snapshot while Redis is down, then resyncs when it returns', async () => {
    const regionIds = REGIONS.map((r) => r.id);
    const reporters = new RedisRegistry({ url: server.url, regions: regionIds });
    const routerSide = new RedisRegistry({ url: server.url, regions: regionIds });
    const events: WatcherEvent[] = [];
    // Heartbeats live 2 s: long enough that a reporter loop stalled by a busy machine (seen: a full
    // run with every region read down when the outage began) does not let one expire beforehand.
    const watcher = new RegistryWatcher({ registry: routerSide, regions: REGIONS, heartbeatTtlMs: 2_000, pollMs: 100, staleAfterMs: 300, onEvent: (e) => events.push(e) });
    let reporting = true;
    let writeFailures = 0;
    // Five regional reporters, each writing every 100 ms; failures are counted, never thrown.
    const reportLoop = (async () => {
      while (reporting) {
        await Promise.all(regionIds.map((id) => reporters.writeHeartbeat(heartbeat(id), 2_000).catch(() => writeFailures++)));
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const decider = londonDecider();
    let decisions = 0;
    let failures = 0;
    let firstFailure = '';
    const route = () => {
      const d = decider.decide('echo-demo.telnyxcompute.com', '198.51.100.1', watcher.snapshot, Date.now());
      decisions++;
      if (!d.ok || d.candidates[0] !== 'fra' || d.reason !== 'nearest') {
        failures++;
        // Say why, with the regions as the watcher held them (a failure here was seen once in a full run).
        firstFailure ||= JSON.stringify({
          decision: d.ok ? { candidates: d.candidates, reason: d.reason } : d,
          regions: [...watcher.snapshot.regions].map(([id, h]) => `${id}:${h.status}, heartbeat ${h.heartbeatAt === null ? 'never' : `${Date.now() - h.heartbeatAt} ms ago`}`),
          watcher: watcher.status(),
          writeFailures,
        });
      }
    };
    try {
      await watcher.start();
      // Heard from Redis, not only "up": under load the first reads can fail while ioredis is still
      // connecting, and a watcher that never had contact reports no `recovered` later (seen in full runs).
      // And every heartbeat fresh, checked just before the outage: heartbeats are judged against the
      // last contact, so a reporter stalled by a busy machine for a TTL before the outage begins
      // would have every region read down through it (seen in a full run: all down from the start).
      const freshAndUp = () =>
        !watcher.status().stale && [...watcher.snapshot.regions.values()].every((h) => h.status === 'up' && h.heartbeatAt !== null && Date.now() - h.heartbeatAt < 500);
      await until('the watcher has read Redis and sees every region up, each heard from within 500 ms', freshAndUp);

      const eventsBeforeOutage = events.length;
      await server.stop();
      const stoppedAt = Date.now();
      while (Date.now() - stoppedAt < 1_500) {
        for (let i = 0; i < 100; i++) route();
        await new Promise((r) => setTimeout(r, 5));
      }
      expect(failures, firstFailure).toBe(0);
      expect(decisions).toBeGreaterThan(1_000);
      expect(watcher.status().stale).toBe(true);
      expect([...watcher.snapshot.regions.values()].every((h) => h.status === 'up')).toBe(true);
      expect(events.some((e) => e.type === 'stale')).toBe(true);
      expect(writeFailures).toBeGreaterThan(0);

      await server.restart();
      const restartedAt = Date.now();
      // The watcher's contract: the first answer after an outage emits `recovered`, then clears `stale`.
      await until(() => events.some((e) => e.type === 'recovered'), 8_000).catch((err: Error) => {
        // Seen once in a full run under load (2026-12-01): say what the watcher last heard.
        const kinds = events.slice(eventsBeforeOutage).map((e) => (e.type === 'transition' ? `${e.region}:${e.from}>${e.to}` : e.type));
        throw new Error(`${err.message}; watcher ${JSON.stringify(watcher.status())}; events since the outage ${kinds.join(' ')}`);
      });
      expect(watcher.status().stale).toBe(false);
      // The restarted Redis is empty; reporters refill it and operator changes flow again.
      expect([...watcher.snapshot.regions.values()].every((h) => h.status === 'up')).toBe(true);
      await reporters.ready(5_000);
      // Regions stayed up through the reporters' reconnect (recovery grace), and fresh heartbeats follow.
      await until(() => [...watcher.snapshot.regions.values()].every((h) => (h.heartbeatAt ?? 0) > restartedAt), 5_000);
      expect(events.slice(eventsBeforeOutage).filter((e) => e.type === 'transition')).toEqual([]);
      await reporters.setOverrides('fra', { drained: true, weight: null });
      await until(() => watcher.snapshot.regions.get('fra')?.drained === true, 3_000);
      const d = decider.decide('echo-demo.telnyxcompute.com', '198.51.100.1', watcher.snapshot, Date.now());
      expect(d).toMatchObject({ ok: true, reason: 'failover:fra-draining' });
    } finally {
      reporting = false;
      await reportLoop;
      await watcher.stop();
      await reporters.close();
      await routerSide.close();
      if (!server.running) await server.restart(); // the next tests need it, whatever failed here
    }
  }, 30_000);

  it('makes zero Redis commands per routing decision', async () => {
    const registry = new RedisRegistry({ url: server.url, regions: REGIONS.map((r) => r.id) });
    await registry.ready();
    for (const r of REGIONS) await registry.writeHeartbeat(heartbeat(r.id), 60_000);
    const watcher = new RegistryWatcher({ registry, regions: REGIONS, heartbeatTtlMs: 60_000 });
    await watcher.start();
    await watcher.stop(); // no background polls during the burst: any command would come from the request path
    const decider = londonDecider();
    const before = await commandCount(server.url);
    let ok = 0;
    for (let i = 0; i < 10_000; i++) if (decider.decide(`fn${i}-org.telnyxcompute.com`, '198.51.100.1', watcher.snapshot, Date.now()).ok) ok++;
    const after = await commandCount(server.url);
    await registry.close();
    expect(ok).toBe(10_000);
    expect(after - before).toBe(0);
  });

  it('propagates an operator change to another router within 1 s (measured)', async () => {
    const writer = new RedisRegistry({ url: server.url, regions: REGIONS.map((r) => r.id) });
    const reader = new RedisRegistry({ url: server.url, regions: REGIONS.map((r) => r.id) });
    await writer.ready();
    const watcher = new RegistryWatcher({ registry: reader, regions: REGIONS });
    await watcher.start();
    const samples: number[] = [];
    try {
      // Each change timed apart from the test process's own waits for a core
      // (support/time-unstalled.ts); the waits for what is seen only keep a lost change from hanging.
      const setWeight = async (weight: number) => {
        await writer.setOverrides('syd', { drained: false, weight });
        await until(`syd's weight ${weight} in the watcher`, () => watcher.snapshot.regions.get('syd')?.weight === weight && watcher.snapshot.version > 0, 5_000);
      };
      for (let i = 0; i < 20; i++) {
        const weight = 1 + (i % 5);
        samples.push(await timeUnstalled(() => setWeight(weight), () => setWeight(50)));
        await setWeight(50);
      }
    } finally {
      await watcher.stop();
      await writer.close();
      await reader.close();
    }
    samples.sort((a, b) => a - b);
    console.log(`registry propagation over ${samples.length} changes: median ${samples[10]!.toFixed(1)} ms, max ${samples.at(-1)!.toFixed(1)} ms`);
    expect(samples.at(-1)).toBeLessThan(1_000);
  });
});
