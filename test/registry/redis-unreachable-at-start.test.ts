/**
 * A router that starts while Redis cannot be reached has no function directory yet: a function
 * missing from it may well exist. It must not answer "no such function" (a 404, which clients and
 * caches take as final) for every request until Redis answers.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { RegistryChange } from '../../src/registry/health-registry.js';
import { Redis } from 'ioredis';
import { RedisRegistry } from '../../src/registry/redis-registry.js';
import { heartbeat } from './registry-contract.js';
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

describe.skipIf(REDIS_MISSING)('a router started while Redis is unreachable', () => {
  it('answers 503 (try again), not 404 function_not_found, and is not ready until it has read the directory; then routes', async () => {
    const server = await TestRedisServer.start();
    cleanup.push(() => server.stop());
    await server.stop();

    const nyc = await TestOrigin.start('nyc');
    cleanup.push(() => nyc.kill());
    const router = await startTestRouter({ nyc: nyc.url }, ['--redis', server.url, '--unknown-functions', 'reject']);
    cleanup.push(() => router.close());
    const agent = agentFor(router.httpsPort);
    cleanup.push(() => agent.close());

    expect(router.router.watcher.status().lastFullSyncAt).toBeNull();
    const before = await get(agent, router.httpsPort, '/r', { host: 'api-acme.telnyxcompute.com' });
    // Before the fix: 404 {"code":"function_not_found"} while /readyz said "ready".
    expect(before.status, before.body).toBe(503);
    expect(JSON.parse(before.body)).toMatchObject({ error: { code: 'registry_unreachable' } });
    expect(before.headers['retry-after']).toBe('1');
    // Nor does it call itself ready: a load balancer sends its traffic to routers that know the directory.
    const readyz = async (port: number) => {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      return `${res.status} ${await res.text()}`;
    };
    expect(await readyz(router.adminPort)).toBe('503 not ready: the function directory has not been read yet (no answer from the registry since start)\n');
    expect(await readyz(router.httpPort)).toBe('503 not ready\n');

    // Redis comes back with the function: the router reads it and routes.
    await server.restart();
    const seed = new RedisRegistry({ url: server.url, regions: REGIONS.map((r) => r.id) });
    cleanup.push(() => seed.close());
    await seed.ready(5_000);
    await seed.putFunction({ org: 'acme', fn: 'api', regions: null, tier: 'standard', enabled: true });
    await until('the router knows acme/api', () => router.router.watcher.snapshot.functions.get('acme')?.has('api') === true, 10_000);
    expect((await get(agent, router.httpsPort, '/r', { host: 'api-acme.telnyxcompute.com' })).status).toBe(200);
    expect(await readyz(router.adminPort)).toBe('200 ready\n');
    expect(await readyz(router.httpPort)).toBe('200 ready\n');
    // Once read, a function missing from the directory is the 404 it always was.
    const missing = await get(agent, router.httpsPort, '/r', { host: 'nothere-acme.telnyxcompute.com' });
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body)).toMatchObject({ error: { code: 'function_not_found' } });
  }, 40_000);

  it('subscribes all the same: the pushes come once Redis answers, and unsubscribing detaches (a refused subscribe left its listeners for good)', async () => {
    const server = await TestRedisServer.start();
    cleanup.push(() => server.stop());
    await server.stop();
    const regions = REGIONS.map((r) => r.id);
    const registry = new RedisRegistry({ url: server.url, regions });
    cleanup.push(() => registry.close());
    const seen: RegistryChange[] = [];
    const heartbeats = () => seen.filter((c) => c.kind === 'heartbeat').length;
    const unsubscribe = await registry.subscribe((c) => seen.push(c)); // its SUBSCRIBE unanswered in time

    await server.restart();
    const writer = new RedisRegistry({ url: server.url, regions });
    cleanup.push(() => writer.close());
    await writer.ready(5_000);
    const deadline = Date.now() + 10_000;
    while (heartbeats() === 0 && Date.now() < deadline) {
      await writer.writeHeartbeat(heartbeat('fra'), 3_000);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(heartbeats()).toBeGreaterThan(0);

    await unsubscribe();
    const before = seen.length;
    await writer.writeHeartbeat(heartbeat('fra'), 3_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(seen).toHaveLength(before);
  }, 40_000);

  it('refuses a subscribe Redis itself refuses (an ACL without the channel), leaving nothing attached', async () => {
    const server = await TestRedisServer.start();
    cleanup.push(() => server.stop());
    const admin = new Redis(server.url);
    cleanup.push(async () => admin.disconnect());
    await admin.call('ACL', 'SETUSER', 'router', 'on', '>secret', '~*', 'resetchannels', '+@all');
    const url = new URL(server.url);
    url.username = 'router';
    url.password = 'secret';
    const registry = new RedisRegistry({ url: url.toString(), regions: REGIONS.map((r) => r.id) });
    cleanup.push(() => registry.close());
    await expect(registry.subscribe(() => undefined)).rejects.toThrow(/NOPERM/);
    const sub = (registry as unknown as { sub: Redis }).sub;
    expect([sub.listenerCount('message'), sub.listenerCount('ready')]).toEqual([0, 0]);
  }, 20_000);
});
