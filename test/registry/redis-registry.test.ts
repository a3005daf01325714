import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { RedisRegistry, RegistryKeyTypeError } from '../../src/registry/redis-registry.js';
import { REGIONS } from '../support/regions.js';
import { REDIS_MISSING } from '../support/system-program.js';
import { heartbeat, registryContract } from './registry-contract.js';
import { until } from '../support/until.js';
import { overriding } from '../support/overriding.js';
import { TestRedisServer, freePort } from '../support/redis-server.js';
import { RegistryWatcher, type WatcherEvent } from '../../src/registry/registry-watcher.js';
import { describeError } from '../../src/core/errors.js';
import { newTicketKey } from '../../src/core/ticket-key-ring.js';

const SHARED_REDIS = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

describe.skipIf(REDIS_MISSING)('RedisRegistry on the shared redis-server', () => {
  registryContract('RedisRegistry', async () => {
    const keyPrefix = `test:${randomUUID()}:`;
    const handles: RedisRegistry[] = [];
    const open = () => {
      // Pages of 3: every watcher here reads a directory of more than a few entries a page at a time.
      const r = new RedisRegistry({ url: SHARED_REDIS, keyPrefix, regions: REGIONS.map((x) => x.id), directoryPageEntries: 3 });
      handles.push(r);
      return r;
    };
    const registry = open();
    await registry.ready();
    const peer = open();
    await peer.ready();
    return {
      registry,
      peer: () => peer,
      cleanup: async () => {
        const raw = new Redis(SHARED_REDIS);
        const keys = await raw.keys(`${keyPrefix}*`);
        if (keys.length > 0) await raw.del(...keys);
        raw.disconnect();
        await Promise.all(handles.map((h) => h.close()));
      },
    };
  });
});

describe.skipIf(REDIS_MISSING)('RedisRegistry with hostile or malformed data', () => {
  async function setup() {
    const keyPrefix = `test:${randomUUID()}:`;
    const rejected: Array<[string, string]> = [];
    const registry = new RedisRegistry({
      url: SHARED_REDIS,
      keyPrefix,
      regions: REGIONS.map((x) => x.id),
      onRejected: (where, reason) => rejected.push([where, reason]),
    });
    await registry.ready();
    const raw = new Redis(SHARED_REDIS);
    const cleanup = async () => {
      const keys = await raw.keys(`${keyPrefix}*`);
      if (keys.length > 0) await raw.del(...keys);
      raw.disconnect();
      await registry.close();
    };
    return { keyPrefix, registry, raw, rejected, cleanup };
  }

  it('rebases a ticket key ring stamped later than Redis\'s clock reads (a clock stepped back) instead of rotating onto the key just staged', async () => {
    const { keyPrefix: p, registry, raw, cleanup } = await setup();
    try {
      const [a, b, c] = [newTicketKey(), newTicketKey(), newTicketKey()];
      await registry.shareTicketKeys(a, 60_000);
      await registry.shareTicketKeys(b, 60_000); // staged
      await raw.hset(`${p}tls-ticket-keys`, 'createdAt', String(Date.now() + 3_600_000));
      const ring = await registry.shareTicketKeys(c, 60_000);
      expect(ring).toMatchObject({ current: a, next: b });
      expect(Math.abs(ring.createdAt - Date.now())).toBeLessThan(5_000);
      expect(Number(await raw.hget(`${p}tls-ticket-keys`, 'createdAt'))).toBe(ring.createdAt);
    } finally {
      await cleanup();
    }
  });

  it('appends an event under a once key and claims the key together, or neither: a failed append leaves the key for the next router', async () => {
    const { keyPrefix: p, registry, raw, cleanup } = await setup();
    try {
      const down = { at: Date.now(), region: 'atl', kind: 'down' as const, cause: 'heartbeat expired' };
      // The append fails (the list's key holds a string): the once key must not stay claimed.
      await raw.set(`${p}events`, 'not a list');
      await expect(registry.appendEvent(down, 'atl:down:1')).rejects.toThrow(/WRONGTYPE/);
      expect(await raw.exists(`${p}once:atl:down:1`)).toBe(0);
      await raw.del(`${p}events`);
      // Another router's try: written once, then claimed.
      expect(await registry.appendEvent(down, 'atl:down:1')).toBe(true);
      expect(await registry.appendEvent(down, 'atl:down:1')).toBe(false);
      expect(await raw.llen(`${p}events`)).toBe(1);
      expect(await raw.pttl(`${p}once:atl:down:1`)).toBeGreaterThan(3_500_000);
    } finally {
      await cleanup();
    }
  });

  it('takes a stored override whose weight is no JSON number (010, 0x10) as absent when it changes one field, as the readers refuse it', async () => {
    const { keyPrefix: p, registry, raw, cleanup } = await setup();
    try {
      for (const [region, text] of [['atl', '010'], ['nyc', '0x10'], ['fra', '50.']] as const) {
        await raw.hset(`${p}overrides`, region, `{"drained":true,"weight":${text}}`);
        // Refused by every router (so not drained): a weight change must not bring the drain back.
        await registry.updateOverrides(region, { weight: 20 });
        expect(JSON.parse((await raw.hget(`${p}overrides`, region))!), text).toEqual({ drained: false, weight: 20 });
      }
      // A valid one keeps its other field.
      await raw.hset(`${p}overrides`, 'lax', '{"drained":true,"weight":1.5e1}');
      await registry.updateOverrides('lax', { drained: true });
      expect(JSON.parse((await raw.hget(`${p}overrides`, 'lax'))!)).toEqual({ drained: true, weight: 15 });
    } finally {
      await cleanup();
    }
  });

  it('drops each bad entry with a reason and keeps every good one', async () => {
    const { keyPrefix: p, registry, raw, rejected, cleanup } = await setup();
    try {
      const good = heartbeat('atl');
      await registry.writeHeartbeat(good, 3_000);
      await raw.set(`${p}hb:nyc`, '{not json');
      await raw.set(`${p}hb:lax`, JSON.stringify({ ...heartbeat('lax'), inFlight: 'many' }));
      await raw.set(`${p}hb:fra`, JSON.stringify(heartbeat('syd'))); // names another region
      await raw.set(`${p}hb:syd`, 'x'.repeat(2_000_000)); // huge
      await raw.hset(`${p}overrides`, 'atl', JSON.stringify({ drained: true, weight: null }), 'mars', JSON.stringify({ drained: true, weight: null }), 'nyc', JSON.stringify({ drained: 'yes', weight: 1 }));
      await raw.hset(`${p}functions`, 'acme/ok', JSON.stringify({ org: 'acme', fn: 'ok', regions: ['atl'], tier: 'standard', enabled: true }));
      await raw.hset(`${p}functions`, 'acme/bad', JSON.stringify({ org: 'acme', fn: 'bad', regions: ['mars'], tier: 'standard', enabled: true }));
      await raw.hset(`${p}functions`, 'acme/tier', JSON.stringify({ org: 'acme', fn: 'tier', regions: null, tier: 'forever', enabled: true }));
      await raw.hset(`${p}functions`, 'acme/liar', JSON.stringify({ org: 'evil', fn: 'liar', regions: null, tier: 'standard', enabled: true }));
      await raw.hset(`${p}residency`, 'acme', JSON.stringify(['fra']), 'evil', JSON.stringify(['atl', 'pluto']), 'none', '[]');
      await raw.hset(`${p}domains`, 'ok.example.com', JSON.stringify({ fn: 'ok', org: 'acme' }), 'bad.example.com', JSON.stringify({ fn: '<script>', org: 'acme' }));
      await raw.lpush(`${p}events`, 'garbage');

      const state = await registry.readState();
      expect([...state.heartbeats.keys()]).toEqual(['atl']);
      expect(state.heartbeats.get('atl')).toEqual(good);
      expect([...state.overrides.keys()]).toEqual(['atl']);
      // Deployed in a region this router does not know: kept (served from the regions it knows).
      expect([...(state.functions.get('acme')?.keys() ?? [])].sort()).toEqual(['bad', 'ok']);
      expect(state.functions.has('evil')).toBe(false);
      // Residency is never left out: an unknown region stays in the rule, an unreadable rule allows none.
      expect(state.residency).toEqual(new Map([['acme', new Set(['fra'])], ['evil', new Set(['atl', 'pluto'])], ['none', new Set()]]));
      expect([...state.domains.keys()]).toEqual(['ok.example.com']);
      expect(await registry.readEvents(10)).toEqual([]);

      const where = rejected.map(([w]) => w.slice(p.length));
      for (const w of ['hb:nyc', 'hb:lax', 'hb:fra', 'hb:syd', 'overrides[mars]', 'overrides[nyc]', 'functions[acme/tier]', 'functions[acme/liar]', 'residency[none]', 'domains[bad.example.com]', 'events']) {
        expect(where).toContain(w);
      }
      expect(rejected.find(([w]) => w.endsWith('hb:syd'))?.[1]).toMatch(/exceeds/);
      expect(rejected.find(([w]) => w.endsWith('overrides[mars]'))?.[1]).toBe('unknown region mars');
      expect(where).not.toContain('residency[evil]');
      expect(where).not.toContain('functions[acme/bad]');
    } finally {
      await cleanup();
    }
  });

  it('skips an event of a kind this version does not know (a newer writer\'s), keeping the others, and says so once per kind', async () => {
    const { keyPrefix: p, registry, raw, rejected, cleanup } = await setup();
    try {
      const known = (at: number) => JSON.stringify({ at, region: null, kind: 'deployed', cause: `acme/f${at}` });
      await raw.lpush(
        `${p}events`,
        known(1),
        // A later version's kind, which may carry fields of its own.
        JSON.stringify({ at: 2, region: null, kind: 'future_kind', cause: 'x', org: 'acme' }),
        known(3),
        JSON.stringify({ at: 4, region: 'fra', kind: 'other_future', cause: 'y' }),
        JSON.stringify({ at: 5, region: null, kind: 'future_kind', cause: 'z' }),
        // Not an event whatever its kind: refused as malformed, at every read, as before.
        JSON.stringify({ at: 'soon', region: null, kind: 'future_kind', cause: 'w' }),
        JSON.stringify({ at: 7, region: null, kind: 'Not A Kind!', cause: 'v' }),
      );
      for (let read = 0; read < 3; read++) expect((await registry.readEvents(10)).map((e) => e.at)).toEqual([3, 1]);
      const said = rejected.map(([w, reason]) => `${w.slice(p.length)}: ${reason}`);
      const unknown = said.filter((line) => line.includes('not one this version knows'));
      expect(unknown).toEqual([
        'events: kind "future_kind" is not one this version knows (written by a newer one?): its events are skipped (said once per kind)',
        'events: kind "other_future" is not one this version knows (written by a newer one?): its events are skipped (said once per kind)',
      ]);
      // The two malformed entries, at each of the three reads.
      expect(said.length - unknown.length).toBe(6);
    } finally {
      await cleanup();
    }
  });

  it('looks past skipped entries for as many events as asked, to the newest 1,000 entries at most, saying a malformed one once a read', async () => {
    const { keyPrefix: p, registry, raw, rejected, cleanup } = await setup();
    try {
      const known = (at: number) => JSON.stringify({ at, region: null, kind: 'deployed', cause: `acme/f${at}` });
      const later = (at: number) => JSON.stringify({ at, region: null, kind: 'future_kind', cause: 'x' });
      // Oldest first: two known events, then 997 of a later version's kind, a malformed entry and a known one on top.
      await raw.lpush(`${p}events`, known(1), known(2), ...Array.from({ length: 997 }, (_, i) => later(10 + i)), 'garbage', known(2_000));
      expect((await registry.readEvents(2)).map((e) => e.at)).toEqual([2_000, 2]);
      // The malformed entry said once for the read, however many times the read looked again.
      expect(rejected.filter(([, reason]) => !reason.includes('not one this version knows'))).toHaveLength(1);
      // The 1,000 newest entries are all a read looks at: known(1) is the 1,001st.
      expect((await registry.readEvents(50)).map((e) => e.at)).toEqual([2_000, 2]);
      // One more on top pushes known(2) out of them too.
      await raw.lpush(`${p}events`, later(5_000));
      expect((await registry.readEvents(50)).map((e) => e.at)).toEqual([2_000]);
    } finally {
      await cleanup();
    }
  });

  it('changes one override field over a stored value the readers refuse as if none were stored', async () => {
    const { keyPrefix: p, registry, raw, cleanup } = await setup();
    try {
      // Refused by overridesSchema, so routers read the defaults: the change must not keep half of it.
      await raw.hset(`${p}overrides`, 'atl', JSON.stringify({ drained: true, weight: 500 }), 'nyc', '{not json', 'fra', JSON.stringify({ drained: true, weight: 2, extra: 1 }));
      await registry.updateOverrides('atl', { weight: 2 });
      await registry.updateOverrides('nyc', { drained: true });
      await registry.updateOverrides('fra', { weight: 4 });
      const overrides = await registry.readOverrides();
      expect(overrides.get('atl')).toEqual({ drained: false, weight: 2 });
      expect(overrides.get('nyc')).toEqual({ drained: true, weight: null });
      expect(overrides.get('fra')).toEqual({ drained: false, weight: 4 });
    } finally {
      await cleanup();
    }
  });

  it("stores a report's service time beside it, where routers of the version before (strict schema) do not look", async () => {
    const { keyPrefix: p, registry, raw, rejected, cleanup } = await setup();
    try {
      const messages: string[] = [];
      const sub = raw.duplicate();
      sub.on('message', (_channel: string, message: string) => messages.push(message));
      await sub.subscribe(`${p}changes`);
      const report = heartbeat('fra', { serviceMs: 37 });
      await registry.writeHeartbeat(report, 3_000);
      await until('the change published', () => messages.length > 0, 3_000);
      sub.disconnect();
      const { serviceMs: _beside, ...plain } = report;
      // The report key and the message's heartbeat as those routers read them; the time beside.
      expect(JSON.parse((await raw.get(`${p}hb:fra`))!)).toEqual(plain);
      expect(JSON.parse(messages[0]!)).toEqual({ v: 1, kind: 'heartbeat', heartbeat: plain, serviceMs: 37 });
      expect(JSON.parse((await raw.get(`${p}service:fra`))!)).toEqual({ reportedAt: report.reportedAt, serviceMs: 37 });
      expect(await raw.pttl(`${p}service:fra`)).toBeGreaterThan(10_000);
      // A bad one (written by hand, or by a faulty orchestrator) is refused; the report still counts.
      await raw.set(`${p}service:fra`, JSON.stringify({ reportedAt: report.reportedAt, serviceMs: -5 }));
      expect((await registry.readAllHeartbeats()).heartbeats.get('fra')).toEqual(plain);
      expect(rejected).toEqual([[`${p}service:fra`, 'serviceMs: Too small: expected number to be >=0']]);
    } finally {
      await cleanup();
    }
  });

  it('copies a probe heartbeat to the report key only where no report stands (routers of the version before read that key alone)', async () => {
    const { keyPrefix: p, registry, raw, cleanup } = await setup();
    try {
      const probe = (region: string) => heartbeat(region, { source: 'probe', inFlight: 0, warmContainers: 0, warmFunctions: [] });
      await registry.writeHeartbeat(heartbeat('fra', { status: 'draining' }), 3_000);
      await registry.writeHeartbeat(probe('fra'), 6_000);
      await registry.writeHeartbeat(probe('atl'), 6_000);
      expect(JSON.parse((await raw.get(`${p}hb:fra`))!)).toMatchObject({ source: 'reporter', status: 'draining' });
      // Without its TTL there, and in the change message's heartbeat: those routers' schema is strict.
      expect(JSON.parse((await raw.get(`${p}hb:atl`))!)).toEqual({ ...probe('atl'), reportedAt: expect.any(Number) });
      expect(JSON.parse((await raw.get(`${p}probe:atl`))!)).toMatchObject({ source: 'probe', ttlMs: 6_000 });
      const messages: string[] = [];
      const sub = raw.duplicate();
      sub.on('message', (_channel: string, message: string) => messages.push(message));
      await sub.subscribe(`${p}changes`);
      await registry.writeHeartbeat(probe('lax'), 6_000);
      await until('the change published', () => messages.length > 0, 3_000);
      sub.disconnect();
      expect(JSON.parse(messages[0]!)).toEqual({ v: 1, kind: 'heartbeat', heartbeat: { ...probe('lax'), reportedAt: expect.any(Number) }, ttlMs: 6_000 });
      expect(await raw.pttl(`${p}probe:atl`)).toBeGreaterThan(25_000);
      // A prober of the version before wrote its heartbeat to the report key: it is read as a probe heartbeat.
      const old = { ...probe('nyc'), status: 'down' as const };
      await raw.set(`${p}hb:nyc`, JSON.stringify(old));
      const { heartbeats, probeHeartbeats } = await registry.readAllHeartbeats();
      expect([...heartbeats.keys()]).toEqual(['fra']);
      expect(probeHeartbeats.get('nyc')).toEqual(old);
      expect([...probeHeartbeats.keys()].sort()).toEqual(['atl', 'fra', 'lax', 'nyc']);
    } finally {
      await cleanup();
    }
  });

  it('ignores hostile change messages without disturbing the subscription', async () => {
    const { keyPrefix: p, registry, raw, rejected, cleanup } = await setup();
    try {
      const seen: unknown[] = [];
      await registry.subscribe((c) => seen.push(c));
      await raw.publish(`${p}changes`, 'nope');
      await raw.publish(`${p}changes`, JSON.stringify({ v: 99, kind: 'functions' }));
      await raw.publish(`${p}changes`, JSON.stringify({ v: 1, kind: 'heartbeat', heartbeat: { region: 'mars' } }));
      await raw.publish(`${p}changes`, JSON.stringify({ v: 1, kind: 'explode' }));
      await raw.publish(`${p}changes`, JSON.stringify({ v: 1, kind: 'functions' }));
      await until('the valid change arrives', () => seen.length > 0, 2_000);
      expect(seen).toEqual([{ kind: 'functions' }]);
      expect(rejected.filter(([w]) => w.endsWith('changes'))).toHaveLength(4);
    } finally {
      await cleanup();
    }
  });

  it('refuses data from a newer schema version, for reads and writes', async () => {
    const { keyPrefix: p, registry, raw, cleanup } = await setup();
    try {
      await raw.set(`${p}schema`, '2');
      await expect(registry.readState()).rejects.toThrow(/schema version "2" but this router understands 1/);
      await expect(registry.setOverrides('atl', { drained: true, weight: null })).rejects.toThrow(/schema version/);
      expect(await raw.hgetall(`${p}overrides`)).toEqual({});
    } finally {
      await cleanup();
    }
  });

  it('stamps the schema version on first write', async () => {
    const { keyPrefix: p, registry, raw, cleanup } = await setup();
    try {
      await registry.setOverrides('atl', { drained: false, weight: 1 });
      expect(await raw.get(`${p}schema`)).toBe('1');
    } finally {
      await cleanup();
    }
  });
});

describe('RedisRegistry with no Redis to talk to', () => {
  it('fails each call as registry_unreachable (the catalogue\'s 503), not as a fault', async () => {
    const registry = new RedisRegistry({ url: `redis://127.0.0.1:${await freePort()}`, regions: ['atl'], redisOptions: { retryStrategy: () => null } });
    try {
      await expect(registry.readEvents(5)).rejects.toMatchObject({ code: 'registry_unreachable', message: expect.stringMatching(/^the registry is unreachable: /) });
      await expect(registry.setOverrides('atl', { drained: true, weight: null })).rejects.toMatchObject({ code: 'registry_unreachable' });
      expect(describeError(await registry.readState().catch((e: unknown) => e))).toMatchObject({ status: 503, exitCode: 2 });
    } finally {
      await registry.close();
    }
  });
});

describe.skipIf(REDIS_MISSING)('RedisRegistry with hostile data (own redis-server)', () => {
  let server: TestRedisServer;
  beforeAll(async () => {
    server = await TestRedisServer.start();
  });
  afterAll(async () => {
    await server?.stop();
  });

  async function setup() {
    const keyPrefix = `hostile:${randomUUID()}:`;
    const rejected: Array<[string, string]> = [];
    const registry = new RedisRegistry({ url: server.url, keyPrefix, regions: REGIONS.map((x) => x.id), onRejected: (where, reason) => rejected.push([where, reason]) });
    await registry.ready();
    const raw = new Redis(server.url);
    const cleanup = async () => {
      raw.disconnect();
      await registry.close();
    };
    return { p: keyPrefix, registry, raw, rejected, cleanup };
  }

  it('reads every other key when one has the wrong Redis type, and names it', async () => {
    const { p, registry, raw, rejected, cleanup } = await setup();
    try {
      await registry.putDomain('ok.example.com', { fn: 'ok', org: 'acme' });
      await registry.setOverrides('atl', { drained: true, weight: null });
      await raw.set(`${p}ejections`, 'not a hash');
      await raw.rpush(`${p}functions`, 'not a hash either');
      const state = await registry.readState();
      expect(state.domains.get('ok.example.com')).toEqual({ fn: 'ok', org: 'acme' });
      expect(state.overrides.get('atl')).toEqual({ drained: true, weight: null });
      expect(state.ejections.size).toBe(0);
      expect(state.functions.size).toBe(0);
      expect(state.unreadable).toEqual(new Map([['functions', 'WRONGTYPE the key holds a list, not a hash']])); // not "no functions": readers keep theirs
      expect(rejected.map(([w]) => w.slice(p.length)).sort()).toEqual(['ejections', 'functions']);
      expect(rejected[0]![1]).toMatch(/^WRONGTYPE/);
    } finally {
      await cleanup();
    }
  });

  it('keeps writing heartbeats and settings when the schema key has the wrong Redis type', async () => {
    // Reads already took a schema key of the wrong type for bad data (none stamped); every write
    // threw WRONGTYPE instead, so a reporter started after it could never report: its region down
    // in every router, with Redis up and answering.
    const { p, registry, raw, rejected, cleanup } = await setup();
    const watcher = new RegistryWatcher({ registry, regions: REGIONS, pollMs: 50 });
    try {
      await raw.hset(`${p}schema`, 'version', '1');
      await watcher.start();
      await registry.writeHeartbeat(heartbeat('nyc'), 3_000);
      await registry.updateOverrides('fra', { drained: true });
      await until('nyc up and fra drained in the watcher', () => watcher.snapshot.regions.get('nyc')?.status === 'up' && watcher.snapshot.regions.get('fra')?.drained === true, 3_000);
      expect(rejected.some(([w, reason]) => w === `${p}schema` && /^WRONGTYPE/.test(reason))).toBe(true);
    } finally {
      await watcher.stop();
      await cleanup();
    }
  });

  it('keeps a watcher following changes while a key has the wrong Redis type', async () => {
    const { p, registry, raw, cleanup } = await setup();
    const watcher = new RegistryWatcher({ registry, regions: REGIONS, pollMs: 50, reconcileMs: 50, unconditionalReadMs: 0 });
    try {
      // Broken once the watcher holds the directory (one that starts on it routes nothing: redis-unreadable-part.test.ts).
      await watcher.start();
      await raw.set(`${p}residency`, 'not a hash');
      await registry.setOverrides('fra', { drained: true, weight: null });
      await until('the drain reaches the watcher, the residency key read as unreadable', () => watcher.snapshot.regions.get('fra')?.drained === true && watcher.status().unreadableParts.includes('residency'), 3_000);
    } finally {
      await watcher.stop();
      await cleanup();
    }
  });

  it('survives change messages that are JSON but not an object, over 1 MiB, or nested thousands deep, and keeps delivering', async () => {
    const { p, registry, raw, rejected, cleanup } = await setup();
    try {
      const seen: unknown[] = [];
      const unsubscribe = await registry.subscribe((c) => seen.push(c));
      // Thrown from the message handler, `null` was an uncaught exception: a crashed router.
      for (const message of ['null', 'true', '7', JSON.stringify({ v: 1, kind: 'functions', pad: 'x'.repeat(1_100_000) })]) await raw.publish(`${p}changes`, message);
      // So was a message a few KB long nested thousands deep, where its text was made for a reason or a check.
      const deep = '['.repeat(20_000) + ']'.repeat(20_000);
      for (const message of [`{"v":1,"kind":"heartbeat","heartbeat":${deep}}`, `{"v":1,"kind":${deep}}`, `{"v":${deep}}`]) await raw.publish(`${p}changes`, message);
      await raw.publish(`${p}changes`, JSON.stringify({ v: 1, kind: 'domains' }));
      await until('the valid change arrives', () => seen.length > 0, 3_000);
      expect(seen).toEqual([{ kind: 'domains' }]);
      const reasons = rejected.filter(([w]) => w === `${p}changes`).map(([, r]) => r);
      expect(reasons).toHaveLength(7);
      expect(reasons.filter((r) => r === 'message is not a JSON object')).toHaveLength(3);
      expect(reasons[3]).toMatch(/exceeds/);
      expect(reasons.slice(4)).toEqual(['(value): Invalid input: expected object, received array', 'unknown change kind (an array)', 'message schema version (an array) is not supported']);
      await unsubscribe();
    } finally {
      await cleanup();
    }
  });

  it('refuses a heartbeat dated far ahead of the router\'s clock: it would never age nor let real ones through', async () => {
    const { p, registry, raw, cleanup } = await setup();
    const events: WatcherEvent[] = [];
    const watcher = new RegistryWatcher({ registry, regions: REGIONS, heartbeatTtlMs: 3_000, pollMs: 50, onEvent: (e) => events.push(e) });
    try {
      await raw.set(`${p}hb:atl`, JSON.stringify(heartbeat('atl', { reportedAt: Date.now() + 3_600_000 })));
      await registry.writeHeartbeat(heartbeat('nyc'), 3_000);
      await watcher.start();
      await until('nyc up in the watcher', () => watcher.snapshot.regions.get('nyc')?.status === 'up', 3_000);
      expect(watcher.snapshot.regions.get('atl')?.status).toBe('down');
      expect(events).toContainEqual({ type: 'error', error: expect.stringMatching(/heartbeat of atl dated \d+ ms ahead/) });
      // The region's real reporter drains it: that must show, not the hour-ahead "up".
      await registry.writeHeartbeat(heartbeat('atl', { status: 'draining' }), 3_000);
      await until('atl draining in the watcher', () => watcher.snapshot.regions.get('atl')?.status === 'draining', 3_000);
    } finally {
      await watcher.stop();
      await cleanup();
    }
  });
});

describe.skipIf(REDIS_MISSING)('RedisRegistry: incremental directory updates with writers that keep no revisions, lost messages and hostile messages', () => {
  async function setup(watcherOptions: Partial<ConstructorParameters<typeof RegistryWatcher>[0]> = {}) {
    const keyPrefix = `test:${randomUUID()}:`;
    const rejected: Array<[string, string]> = [];
    const registry = new RedisRegistry({ url: SHARED_REDIS, keyPrefix, regions: REGIONS.map((x) => x.id), onRejected: (where, reason) => rejected.push([where, reason]) });
    await registry.ready();
    const raw = new Redis(SHARED_REDIS);
    const reads: Array<ReadonlySet<string>> = [];
    const counting = overriding(registry, {
      readState: async (held) => {
        const state = await registry.readState(held);
        reads.push(state.unchanged);
        return state;
      },
    });
    const watcher = new RegistryWatcher({ registry: counting, regions: REGIONS, pollMs: 60_000, reconcileMs: 60_000, ...watcherOptions });
    const cleanup = async () => {
      await watcher.stop();
      const keys = await raw.keys(`${keyPrefix}*`);
      if (keys.length > 0) await raw.del(...keys);
      raw.disconnect();
      await registry.close();
    };
    const record = (org: string, fn: string) => JSON.stringify({ org, fn, regions: null, tier: 'standard', enabled: true });
    return { p: keyPrefix, registry, raw, rejected, reads, watcher, record, cleanup };
  }

  it('reads a part whole when a writer of an earlier version changes it without a revision (its message names only the kind)', async () => {
    const { p, registry, raw, reads, watcher, record, cleanup } = await setup();
    try {
      await registry.putFunction({ org: 'acme', fn: 'a', regions: null, tier: 'standard', enabled: true });
      await watcher.start();
      await raw.hset(`${p}functions`, 'acme/old', record('acme', 'old'));
      await raw.publish(`${p}changes`, '{"v":1,"kind":"functions"}');
      await until('the old writer\'s function in the snapshot', () => watcher.snapshot.functions.get('acme')?.has('old') === true, 3_000);
      expect(reads.at(-1)!.has('functions')).toBe(false);
    } finally {
      await cleanup();
    }
  });

  it('reads a part whole when a message does not follow the revision it holds (one was missed), and not when a read already included it', async () => {
    const { p, registry, raw, reads, watcher, record, cleanup } = await setup();
    try {
      await registry.putFunction({ org: 'acme', fn: 'a', regions: null, tier: 'standard', enabled: true });
      await watcher.start();
      const held = (await registry.readState()).revisions.functions!;
      // A write whose message this watcher never got (written by hand here, the revision moved on).
      await raw.hset(`${p}functions`, 'acme/missed', record('acme', 'missed'));
      await raw.hset(`${p}revisions`, 'functions', '9.missed');
      const readsBefore = reads.length;
      // A message from before what the watcher holds: already included, nothing read.
      await raw.publish(`${p}changes`, JSON.stringify({ v: 1, kind: 'functions', prev: '', rev: held, field: 'acme/a', value: JSON.parse(record('acme', 'a')) }));
      await new Promise((r) => setTimeout(r, 150));
      expect(reads.length).toBe(readsBefore);
      // The next write chains from 9.missed, which the watcher does not hold: it reads functions whole.
      await registry.putFunction({ org: 'acme', fn: 'b', regions: null, tier: 'standard', enabled: true });
      await until('the missed write in the snapshot', () => watcher.snapshot.functions.get('acme')?.has('missed') === true, 3_000);
      expect(watcher.snapshot.functions.get('acme')?.has('b')).toBe(true);
      expect(reads.length).toBe(readsBefore + 1);
    } finally {
      await cleanup();
    }
  });

  it('reconciles without reading a directory that did not change, and reads it whole at the unconditional pace (a hand edit is seen)', async () => {
    const { p, registry, raw, reads, watcher, record, cleanup } = await setup({ reconcileMs: 50, unconditionalReadMs: 1_000 });
    try {
      await registry.putFunction({ org: 'acme', fn: 'a', regions: null, tier: 'standard', enabled: true });
      await registry.setResidency('acme', ['fra']);
      await registry.putDomain('shop.example.com', { fn: 'a', org: 'acme' });
      await watcher.start();
      // (The read after the first stamps the registry's generation, so it reads everything again.)
      await until('a few reconciles', () => reads.length >= 7, 3_000);
      expect(reads.slice(2, 7).map((unchanged) => unchanged.size)).toEqual([3, 3, 3, 3, 3]);
      // By hand, no message, no revision: only an unconditional read can see it.
      await raw.hset(`${p}functions`, 'acme/by-hand', record('acme', 'by-hand'));
      await until('the hand edit in the snapshot', () => watcher.snapshot.functions.get('acme')?.has('by-hand') === true, 3_000);
      expect(reads.at(-1)!.size).toBe(0);
    } finally {
      await cleanup();
    }
  });

  it('takes a directory message it cannot chain (bad revisions, a field too long) as a plain change, and an entry a read would refuse as its deletion', async () => {
    const { p, registry, raw, rejected, reads, watcher, record, cleanup } = await setup();
    try {
      await registry.putFunction({ org: 'acme', fn: 'a', regions: null, tier: 'standard', enabled: true });
      await registry.putFunction({ org: 'acme', fn: 'b', regions: null, tier: 'standard', enabled: true });
      await watcher.start();
      const readsBefore = reads.length;
      await raw.publish(`${p}changes`, JSON.stringify({ v: 1, kind: 'functions', prev: '', rev: 'not a revision', field: 'acme/x', value: JSON.parse(record('acme', 'x')) }));
      await until('a read for the message that cannot chain', () => reads.length === readsBefore + 1, 3_000);
      expect(watcher.snapshot.functions.get('acme')?.has('x')).toBe(false); // from the message alone: nothing
      await raw.publish(`${p}changes`, JSON.stringify({ v: 1, kind: 'domains', prev: '', rev: '1.x', field: 'a'.repeat(600), value: { fn: 'a', org: 'acme' } }));
      await until('a read for the field too long', () => reads.length === readsBefore + 2, 3_000);
      // A well-formed message whose entry a read would refuse: the entry is gone, and said why.
      const held = (await registry.readState()).revisions.functions;
      const next = `${Number(held!.split('.')[0]) + 1}.other`;
      await raw.publish(`${p}changes`, JSON.stringify({ v: 1, kind: 'functions', prev: held, rev: next, field: 'acme/b', value: { org: 'acme', fn: 'b', regions: null, tier: 'forever', enabled: true } }));
      await until('b gone from the snapshot', () => watcher.snapshot.functions.get('acme')?.has('b') === false, 3_000);
      expect(rejected).toContainEqual([`${p}functions[acme/b]`, expect.stringMatching(/^tier: /)]);
      expect(reads.length).toBe(readsBefore + 2);
    } finally {
      await cleanup();
    }
  });

  it('reads the directory when the revisions key has the wrong Redis type, and writes over it', async () => {
    const { p, registry, raw, cleanup } = await setup();
    try {
      await raw.set(`${p}revisions`, 'not a hash');
      await registry.putFunction({ org: 'acme', fn: 'a', regions: null, tier: 'standard', enabled: true });
      const state = await registry.readState({ generation: null, revisions: { functions: '1.x', residency: '1.x', domains: '1.x' } });
      expect(state.functions.get('acme')?.has('a')).toBe(true);
      expect(state.revisions.functions).toMatch(/^1\./);
    } finally {
      await cleanup();
    }
  });

  it.each(['overwrite', 'keep-existing', 'missing-only'] as const)(
    'refuses a %s restore into keys of another Redis type, naming each key and its type, and writes nothing',
    async (mode) => {
      // Before: Redis does not undo a script's writes when it fails partway, so the entries before
      // the bad key stood, the revisions had moved, and the rest were not written.
      const { p, registry, raw, cleanup } = await setup();
      try {
        await registry.putFunction({ org: 'acme', fn: 'a', regions: null, tier: 'standard', enabled: true });
        await raw.set(`${p}overrides`, 'not a hash');
        await raw.rpush(`${p}domains`, 'a list');
        const revisions = await raw.hgetall(`${p}revisions`);
        const b = { org: 'acme', fn: 'b', regions: null, tier: 'standard' as const, enabled: true };
        const imported = {
          functions: new Map([['acme', new Map([['b', b]])]]),
          residency: new Map([['acme', new Set(['fra'])]]),
          domains: new Map([['b.example.com', { fn: 'b', org: 'acme' }]]),
          overrides: new Map([['atl', { drained: true, weight: null }]]),
        };
        const refused = await registry.restore(imported, 'import:x', mode).then(
          () => null,
          (err: unknown) => err,
        );
        expect(refused).toBeInstanceOf(RegistryKeyTypeError);
        expect((refused as RegistryKeyTypeError).keys).toEqual([
          { part: 'domains', key: `${p}domains`, holds: 'list', expected: 'hash' },
          { part: 'overrides', key: `${p}overrides`, holds: 'string', expected: 'hash' },
        ]);
        expect((refused as Error).message).toBe(`cannot restore into the registry: ${p}domains holds a list, not a hash; ${p}overrides holds a string, not a hash (nothing written)`);
        expect(await raw.hexists(`${p}functions`, 'acme/b')).toBe(0);
        expect(await raw.exists(`${p}residency`)).toBe(0);
        expect(await raw.hgetall(`${p}revisions`)).toEqual(revisions);
        expect(await raw.exists(`${p}generation`)).toBe(0);
      } finally {
        await cleanup();
      }
    },
  );

  it.each(['overwrite', 'keep-existing', 'missing-only'] as const)('refuses a %s restore into data of a newer schema version, and writes nothing', async (mode) => {
    // Every other write refused such data; the restore wrote into it, stamped a new generation,
    // and `registry import` reported success.
    const { p, registry, raw, cleanup } = await setup();
    try {
      await raw.set(`${p}schema`, '2');
      const b = { org: 'acme', fn: 'b', regions: null, tier: 'standard' as const, enabled: true };
      const imported = { functions: new Map([['acme', new Map([['b', b]])]]), residency: new Map(), domains: new Map(), overrides: new Map([['atl', { drained: true, weight: null }]]) };
      await expect(registry.restore(imported, 'import:x', mode)).rejects.toThrow(/schema version "2" but this router understands 1/);
      for (const part of ['functions', 'overrides', 'revisions', 'generation']) expect(await raw.exists(`${p}${part}`), part).toBe(0);
    } finally {
      await cleanup();
    }
  });

  it('refuses a restore when the generation key holds another Redis type, and not for a hash it writes nothing into', async () => {
    const { p, registry, raw, cleanup } = await setup();
    try {
      const b = { org: 'acme', fn: 'b', regions: null, tier: 'standard' as const, enabled: true };
      const imported = { functions: new Map([['acme', new Map([['b', b]])]]), residency: new Map(), domains: new Map(), overrides: new Map() };
      await raw.hset(`${p}generation`, 'by', 'hand');
      await expect(registry.restore(imported, 'import:x', 'overwrite')).rejects.toThrow(`${p}generation holds a hash, not a string`);
      expect(await raw.exists(`${p}functions`)).toBe(0);
      await raw.del(`${p}generation`);
      // The backup has no domains: a domains key of another type is not the import's to judge.
      await raw.set(`${p}domains`, 'not a hash');
      expect((await registry.restore(imported, 'import:y', 'overwrite'))?.functions).toEqual([b]);
      expect(await raw.get(`${p}generation`)).toBe('import:y');
    } finally {
      await cleanup();
    }
  });
});

describe.skipIf(REDIS_MISSING)('RedisRegistry on a database the server does not have', () => {
  it('fails every call (the watcher fails static, stale, its directory unread) instead of reading and writing database 0', async () => {
    const server = await TestRedisServer.start(['--databases', '2']);
    const registry = new RedisRegistry({ url: `${server.url}/5`, regions: REGIONS.map((x) => x.id) });
    const raw = new Redis(server.url);
    const events: WatcherEvent[] = [];
    const watcher = new RegistryWatcher({ registry, regions: REGIONS, pollMs: 50, staleAfterMs: 200, onEvent: (e) => events.push(e) });
    try {
      await raw.hset('edge:functions', 'acme/in-db-0', JSON.stringify({ org: 'acme', fn: 'in-db-0', regions: null, tier: 'standard', enabled: true }));
      await expect(registry.ready()).rejects.toThrow(/has no database 5 \(ERR DB index is out of range\)/);
      await expect(registry.putFunction({ org: 'acme', fn: 'written', regions: null, tier: 'standard', enabled: true })).rejects.toThrow(/has no database 5/);
      await expect(registry.readState()).rejects.toThrow(/has no database 5/);
      await watcher.start();
      expect(watcher.snapshot.functions.size).toBe(0); // database 0's directory is not this router's
      expect(watcher.snapshot.directoryUnread).toBe(true);
      expect(events.some((e) => e.type === 'stale' && /has no database 5/.test(e.error))).toBe(true);
      expect(await raw.hexists('edge:functions', 'acme/written')).toBe(0);
    } finally {
      await watcher.stop();
      raw.disconnect();
      await registry.close();
      await server.stop();
    }
  });
});

describe.skipIf(REDIS_MISSING)('RedisRegistry: two deployments on one Redis, one database each', () => {
  it('hears only its own database\'s changes: pub/sub ignores the database, so the channel names it', async () => {
    const server = await TestRedisServer.start();
    const regions = REGIONS.map((x) => x.id);
    const prod = new RedisRegistry({ url: `${server.url}/0`, regions });
    const staging = new RedisRegistry({ url: `${server.url}/1`, regions });
    const stagingPeer = new RedisRegistry({ url: `${server.url}/1`, regions });
    try {
      await Promise.all([prod.ready(), staging.ready(), stagingPeer.ready()]);
      const heardByProd: string[] = [];
      const heardByStaging: string[] = [];
      const unsubscribeProd = await prod.subscribe((c) => heardByProd.push(c.kind === 'heartbeat' ? `${c.heartbeat.region}:${c.heartbeat.status}` : c.kind));
      const unsubscribeStaging = await stagingPeer.subscribe((c) => heardByStaging.push(c.kind === 'heartbeat' ? `${c.heartbeat.region}:${c.heartbeat.status}` : c.kind));
      // Staging's prober finds its nyc down; prod's nyc is up.
      await staging.writeHeartbeat(heartbeat('nyc', { status: 'down', source: 'probe', inFlight: 0, warmContainers: 0, warmFunctions: [] }), 3_000);
      await prod.writeHeartbeat(heartbeat('nyc'), 3_000);
      await until('each hears its own', () => heardByProd.length > 0 && heardByStaging.length > 0, 3_000);
      await new Promise((resolve) => setTimeout(resolve, 100)); // and nothing more
      expect(heardByProd).toEqual(['nyc:up']);
      expect(heardByStaging).toEqual(['nyc:down']);
      await unsubscribeProd();
      await unsubscribeStaging();
    } finally {
      await Promise.all([prod.close(), staging.close(), stagingPeer.close()]);
      await server.stop();
    }
  });
});

describe.skipIf(REDIS_MISSING)('RedisRegistry: a paged read of a large directory', () => {
  it('reads a part of more entries than a page a page at a time, and a watcher ends exact though writes land between its pages', async () => {
    const keyPrefix = `test:${randomUUID()}:`;
    const registry = new RedisRegistry({ url: SHARED_REDIS, keyPrefix, regions: REGIONS.map((x) => x.id), directoryPageEntries: 4 });
    const writer = new RedisRegistry({ url: SHARED_REDIS, keyPrefix, regions: REGIONS.map((x) => x.id) });
    const raw = new Redis(SHARED_REDIS);
    const watcher = new RegistryWatcher({ registry, regions: REGIONS, pollMs: 60_000, reconcileMs: 60_000 });
    try {
      await Promise.all([registry.ready(), writer.ready()]);
      const record = (fn: string) => ({ org: 'acme', fn, regions: null, tier: 'standard' as const, enabled: true });
      for (let i = 0; i < 40; i++) await writer.putFunction(record(`f${i}`));
      // Between the first and the second page, one function is deleted and one deployed.
      const cmd = (registry as unknown as { cmd: Redis }).cmd;
      const hscan = cmd.hscan.bind(cmd) as (...args: unknown[]) => Promise<[string, string[]]>;
      let pages = 0;
      (cmd as unknown as { hscan: unknown }).hscan = async (...args: unknown[]) => {
        if (++pages === 2) {
          await writer.deleteFunction('acme', 'f7');
          await writer.putFunction(record('late'));
        }
        return hscan(...args);
      };
      await watcher.start();
      expect(pages).toBeGreaterThan(3);
      const expected = [...Array.from({ length: 40 }, (_, i) => `f${i}`).filter((f) => f !== 'f7'), 'late'].sort();
      await until('the watcher holds exactly what Redis holds', () => JSON.stringify([...(watcher.snapshot.functions.get('acme')?.keys() ?? [])].sort()) === JSON.stringify(expected), 3_000);
      // An atomic read (the default: backups, the CLI) takes each part in one reply.
      pages = 100;
      expect((await registry.readState()).functions.get('acme')?.size).toBe(40);
      expect(pages).toBe(100);
    } finally {
      await watcher.stop();
      const keys = await raw.keys(`${keyPrefix}*`);
      if (keys.length > 0) await raw.del(...keys);
      raw.disconnect();
      await Promise.all([registry.close(), writer.close()]);
    }
  });
});
