/**
 * After the subscriber connection is made again, the pushes missed meanwhile are made up by a
 * resync (a full read). That read must not run before the channel is subscribed again: a write
 * landing between the two is neither in the read nor pushed, and waits for the next reconcile
 * (10 s by default). On loopback the re-subscription always wins that race; a relay that holds
 * the SUBSCRIBE back makes it lose, as a congested path to Redis can.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { RegistryChange } from '../../src/registry/health-registry.js';
import { RedisRegistry } from '../../src/registry/redis-registry.js';
import { REGIONS } from '../support/regions.js';
import { TestRedisServer } from '../support/redis-server.js';
import { REDIS_MISSING } from '../support/system-program.js';
import { TcpRelay } from '../support/tcp-relay.js';
import { until } from '../support/until.js';

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

describe.skipIf(REDIS_MISSING)('the resync after the subscriber reconnects (own redis-server)', () => {
  it('is asked for once the channel is subscribed again: a write just after it is pushed, not left to a reconcile', async () => {
    const server = await TestRedisServer.start();
    cleanup.push(() => server.stop());
    const relay = await TcpRelay.start(server.port);
    cleanup.push(() => relay.close());
    const ids = REGIONS.map((r) => r.id);
    const writer = new RedisRegistry({ url: server.url, regions: ids });
    cleanup.push(() => writer.close());
    const reader = new RedisRegistry({ url: relay.url, regions: ids });
    cleanup.push(() => reader.close());
    const changes: RegistryChange[] = [];
    const unsubscribe = await reader.subscribe((change) => changes.push(change));
    cleanup.push(() => unsubscribe());
    await writer.appendEvent({ at: 1, region: 'syd', kind: 'ejected', cause: 'before' });
    await until('the push arriving', () => changes.some((c) => c.kind === 'events'), 2_000);

    relay.delayFrom(/subscribe/i, 1_000);
    expect(relay.cut(/subscribe/i)).toBe(1);
    changes.length = 0;
    await until('a resync asked for', () => changes.some((c) => c.kind === 'resync'), 5_000);
    // A watcher reads everything now; a write after that read must reach it as a push.
    await writer.appendEvent({ at: 2, region: 'syd', kind: 'ejected', cause: 'after the resync' });
    // Before: the resync came at the reconnect, the write landed while the SUBSCRIBE was still on
    // its way, and no push ever came.
    await until('the write after the resync pushed', () => changes.some((c) => c.kind === 'events'), 3_000);
  }, 20_000);
});
