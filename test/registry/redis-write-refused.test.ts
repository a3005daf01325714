/**
 * A Redis that answers reads but refuses writes: full under `maxmemory-policy noeviction` (the
 * policy the README requires), a master turned read-only replica, `min-replicas-to-write` unmet,
 * `CLIENT PAUSE WRITE`. No region's heartbeat can reach it then, whatever the regions do: the
 * registry has gone silent about them as surely as if it were down, and a router must keep routing
 * on the last-known state (fail-static) and say why, not read every region as down.
 */
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { RedisRegistry } from '../../src/registry/redis-registry.js';
import { TestRedisServer } from '../support/redis-server.js';
import { startTestRouter } from '../support/router.js';
import { REDIS_MISSING } from '../support/system-program.js';
import { until } from '../support/until.js';
import { REGIONS } from '../support/regions.js';
import { heartbeat } from './registry-contract.js';

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

describe.skipIf(REDIS_MISSING)('a Redis that refuses writes but answers reads (own redis-server)', () => {
  it('full under noeviction: the router keeps every region as it was, says why, and follows the reports again once there is room', async () => {
    const server = await TestRedisServer.start(['--maxmemory-policy', 'noeviction']);
    cleanup.push(() => server.stop());
    const regionIds = REGIONS.map((r) => r.id);
    const reporters = new RedisRegistry({ url: server.url, regions: regionIds });
    cleanup.push(() => reporters.close());
    const raw = new Redis(server.url);
    cleanup.push(async () => raw.disconnect());
    await reporters.ready();
    // Five regional reporters, each writing every 200 ms (the router's TTL is 3 s); refusals are counted.
    let reporting = true;
    const refusals = new Set<string>();
    const reportLoop = (async () => {
      while (reporting) {
        await Promise.all(regionIds.map((id) => reporters.writeHeartbeat(heartbeat(id), 3_000).catch((err: Error) => refusals.add(err.message.split(' ')[0]!))));
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    cleanup.push(async () => {
      reporting = false;
      await reportLoop;
    });
    // The router does not probe: the regions' reports are all it knows of them.
    const router = await startTestRouter({}, ['--redis', server.url, '--probe', 'off'], {}, []);
    cleanup.push(() => router.close());
    const statuses = () => [...router.router.watcher.snapshot.regions.values()].map((h) => h.status);
    await until('every region up', () => statuses().every((s) => s === 'up'), 10_000);

    // Something else fills Redis to its limit: from now on every write is refused with OOM.
    for (let i = 0; i < 8; i++) await raw.set(`filler:${i}`, Buffer.alloc(512 * 1024, 1));
    const used = Number(/^used_memory:(\d+)/m.exec(await raw.info('memory'))![1]);
    await raw.config('SET', 'maxmemory', String(used - 1024 * 1024));
    await until('the reporters are refused', () => refusals.has('OOM'), 3_000);
    const seen = new Set<string>();
    const watchedUntil = Date.now() + 6_000; // two heartbeat TTLs
    while (Date.now() < watchedUntil) {
      for (const s of statuses()) seen.add(s);
      await new Promise((r) => setTimeout(r, 20));
    }
    // Before: every region went down one TTL after the first refusal (routing in panic, drains
    // ignored, queued requests turned away), with only a once-a-minute registry_error saying EXECABORT.
    expect([...seen], JSON.stringify(router.logs.filter((l) => l.event === 'region_status'))).toEqual(['up']);
    expect(router.logs.some((l) => l.event === 'registry_stale' && /^OOM/.test(String(l.error)))).toBe(true);

    await raw.config('SET', 'maxmemory', '0');
    const freedAt = Date.now();
    await until('fresh reports after the space came back', () => [...router.router.watcher.snapshot.regions.values()].every((h) => (h.heartbeatAt ?? 0) > freedAt), 8_000);
    expect(statuses().every((s) => s === 'up')).toBe(true);
    expect(router.router.watcher.status().stale).toBe(false);
  }, 40_000);
});
