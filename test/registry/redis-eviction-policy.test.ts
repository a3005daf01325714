/**
 * A registry Redis that may evict keys is called out: at connect, and again on every reconnect
 * (a failover or restart can bring a server configured otherwise). Own redis-server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { evictionPolicyOf, RedisRegistry } from '../../src/registry/redis-registry.js';
import { TestRedisServer } from '../support/redis-server.js';
import { REDIS_MISSING } from '../support/system-program.js';
import { until } from '../support/until.js';
import { startTestRouter } from '../support/router.js';

describe('evictionPolicyOf', () => {
  it('reads the policy from INFO memory, whatever the line endings, and null when there is none', () => {
    expect(evictionPolicyOf('# Memory\r\nused_memory:1\r\nmaxmemory_policy:allkeys-lru\r\nmem_fragmentation_ratio:1\r\n')).toBe('allkeys-lru');
    expect(evictionPolicyOf('maxmemory_policy:noeviction\n')).toBe('noeviction');
    expect(evictionPolicyOf('# Memory\r\nused_memory:1\r\n')).toBeNull();
  });
});

describe.skipIf(REDIS_MISSING)('a registry Redis that may evict keys (own redis-server)', () => {
  let server: TestRedisServer;
  beforeAll(async () => {
    server = await TestRedisServer.start();
  });
  afterAll(async () => server?.stop());

  const open = (said: string[]) => new RedisRegistry({ url: server.url, regions: ['nyc'], onEvictingServer: (policy) => said.push(policy) });

  it('says nothing about a server that does not evict', async () => {
    const said: string[] = [];
    const registry = open(said);
    await registry.ready();
    await registry.readState(); // a command after the check, on the same connection: its answer came first
    expect(said).toEqual([]);
    await registry.close();
  });

  it('names the policy at connect, and again after a reconnect to a server that changed', async () => {
    const admin = new Redis(server.url);
    try {
      await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
      const said: string[] = [];
      const registry = open(said);
      await registry.ready();
      await until('the policy named', () => said.length === 1, 3_000);
      expect(said).toEqual(['allkeys-lru']);
      // The server is reconfigured and the registry's connection dropped: it reconnects and checks again.
      await admin.config('SET', 'maxmemory-policy', 'volatile-ttl');
      await admin.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
      await until('the new policy named', () => said.length === 2, 5_000);
      expect(said).toEqual(['allkeys-lru', 'volatile-ttl']);
      await registry.close();
    } finally {
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      admin.disconnect();
    }
  });

  it('says when it cannot read the policy (a user without INFO), rather than passing in silence', async () => {
    const admin = new Redis(server.url);
    try {
      await admin.acl('SETUSER', 'no-info', 'on', '>no-info-password', '~*', '&*', '+@all', '-info');
      const unchecked: string[] = [];
      const registry = new RedisRegistry({
        url: server.url.replace('redis://', 'redis://no-info:no-info-password@'),
        regions: ['nyc'],
        onEvictingServer: () => unchecked.push('evicting?'),
        onEvictionUnchecked: (reason) => unchecked.push(reason),
      });
      await registry.ready();
      await until('the check reported', () => unchecked.length === 1, 3_000);
      expect(unchecked[0]).toMatch(/NOPERM/);
      await registry.close();
    } finally {
      await admin.acl('DELUSER', 'no-info');
      admin.disconnect();
    }
  });

  it('is an error in the router’s log, naming the policy and the fix', async () => {
    const admin = new Redis(server.url);
    try {
      await admin.config('SET', 'maxmemory-policy', 'allkeys-random');
      const router = await startTestRouter({}, ['--redis', server.url, '--log-level', 'info']);
      try {
        await until('the router warned', () => router.logs.some((l) => l.event === 'registry_evicts'), 5_000);
        expect(router.logs.filter((l) => l.event === 'registry_evicts')).toEqual([
          expect.objectContaining({ level: 50, policy: 'allkeys-random', msg: expect.stringContaining('set maxmemory-policy noeviction') }),
        ]);
      } finally {
        await router.close();
      }
    } finally {
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      admin.disconnect();
    }
  });
});
