/**
 * A Redis that restarts empty under load (no persistence, as a careless deployment runs it): the
 * router keeps answering for the functions it knew, writes the directory and the operator's
 * settings back, and says what happened.
 */
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { RedisRegistry } from '../../src/registry/redis-registry.js';
import { agentFor, get } from '../support/clients.js';
import { TestOrigin } from '../support/origin.js';
import { TestRedisServer } from '../support/redis-server.js';
import { startTestRouter } from '../support/router.js';
import { REDIS_MISSING } from '../support/system-program.js';
import { until } from '../support/until.js';
import { REGIONS } from '../support/regions.js';

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

describe.skipIf(REDIS_MISSING)('a Redis that restarts empty under load', () => {
  it('costs no request of a deployed function, and the operator settings come back', async () => {
    const server = await TestRedisServer.start();
    cleanup.push(() => server.stop());
    const prefix = 'edge:';
    const seed = new RedisRegistry({ url: server.url, regions: REGIONS.map((r) => r.id) });
    cleanup.push(() => seed.close());
    await seed.ready();
    await seed.putFunction({ org: 'acme', fn: 'api', regions: null, tier: 'standard', enabled: true });
    await seed.putDomain('api.example.com', { org: 'acme', fn: 'api' });
    await seed.setOverrides('lax', { drained: true, weight: null });
    await seed.setOverrides('fra', { drained: false, weight: 3 });

    const nyc = await TestOrigin.start('nyc');
    cleanup.push(() => nyc.kill());
    const router = await startTestRouter({ nyc: nyc.url }, ['--redis', server.url, '--unknown-functions', 'reject', '--log-level', 'info']);
    cleanup.push(() => router.close());
    await until('the router knows acme/api', () => router.router.watcher.snapshot.functions.get('acme')?.has('api') === true);
    const generation = router.router.watcher.status().generation;
    expect(generation).not.toBeNull();

    const agent = agentFor(router.httpsPort);
    cleanup.push(() => agent.close());
    const statuses = new Map<number, number>();
    let restarted = false;
    const restart = (async () => {
      await until('some requests served', () => (statuses.get(200) ?? 0) >= 50, 10_000);
      await server.stop();
      await server.restart();
      restarted = true;
    })();
    // Bounded: on until the router has noticed the loss and seen the data back (plus a second of
    // requests after that), and never more than 25 s or 40,000 requests.
    const logged = (event: string) => router.logs.some((l) => l.event === event);
    const deadline = Date.now() + 25_000;
    let restoredAt = 0;
    for (let i = 0; i < 40_000 && Date.now() < deadline; i++) {
      const host = i % 2 === 0 ? 'api-acme.telnyxcompute.com' : 'api.example.com';
      const { status } = await get(agent, router.httpsPort, `/r/${i}`, { host }).catch(() => ({ status: 0 }));
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      if (restoredAt === 0 && restarted && logged('registry_data_lost') && logged('registry_data_restored')) restoredAt = Date.now();
      if (restoredAt !== 0 && Date.now() - restoredAt > 1_000) break;
    }
    await restart;
    console.log(`Redis restarted empty under load; answers by status: ${JSON.stringify(Object.fromEntries(statuses))}`);
    expect(logged('registry_data_lost')).toBe(true);
    expect(logged('registry_data_restored')).toBe(true);
    expect(Object.fromEntries(statuses)).toEqual({ 200: expect.any(Number) });

    // The registry holds everything again, under a `restore:` generation the router now knows.
    const raw = new Redis(server.url);
    cleanup.push(async () => raw.disconnect());
    await until('the registry is re-seeded', async () => (await raw.hget(`${prefix}functions`, 'acme/api')) !== null, 5_000);
    expect(await raw.get(`${prefix}generation`)).toMatch(/^restore:/);
    expect(await raw.get(`${prefix}generation`)).toBe(router.router.watcher.status().generation);
    expect(router.router.watcher.status().generation).not.toBe(generation);
    expect(JSON.parse((await raw.hget(`${prefix}overrides`, 'lax'))!)).toEqual({ drained: true, weight: null });
    expect(JSON.parse((await raw.hget(`${prefix}overrides`, 'fra'))!)).toEqual({ drained: false, weight: 3 });
    expect(JSON.parse((await raw.hget(`${prefix}domains`, 'api.example.com'))!)).toEqual({ org: 'acme', fn: 'api' });
    expect(router.router.watcher.status().dataLostAt).toBeNull();
    expect(router.router.watcher.snapshot.regions.get('lax')?.drained).toBe(true);
  }, 40_000);
});
