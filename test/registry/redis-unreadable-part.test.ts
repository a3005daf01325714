/**
 * A registry part Redis cannot read (a key of the wrong Redis type, a paged read refused midway)
 * must not replace what the router holds: residency is a legal constraint, and rules read as none
 * served every org from every region. Real Redis (the shared server, a unique key prefix).
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { RedisRegistry } from '../../src/registry/redis-registry.js';
import { RegistryWatcher, type RegistryWatcherOptions, type WatcherEvent } from '../../src/registry/registry-watcher.js';
import { createRouteDecider } from '../../src/routing/route-decider.js';
import { LastKnownRelay, seedFromSiblings } from '../../src/cluster/registry-seed.js';
import { setOrgResidency } from '../../src/registry/operator-actions.js';
import type { GeoLocator } from '../../src/core/geo-locator.js';
import { REGIONS } from '../support/regions.js';
import { REDIS_MISSING } from '../support/system-program.js';
import { linkedPair, type LinkedPair } from '../support/linked-pair.js';
import { heartbeat } from './registry-contract.js';
import { until } from '../support/until.js';

const SHARED_REDIS = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Every client is in London: fra is nearest, so a request for acme goes to fra unless a rule says otherwise. */
const LONDON: GeoLocator = { locate: (ip) => ({ ip, country: 'GB', city: 'London', lat: 51.5074, lon: -0.1278, source: 'geoip' }) };
const decider = createRouteDecider({ regions: REGIONS, zone: 'telnyxcompute.com', locator: LONDON, countryRegions: new Map(), defaultRegion: 'nyc', customDomains: new Map(), unknownFunctions: 'reject' });
const routeAcme = (watcher: RegistryWatcher) => decider.decide('api-acme.telnyxcompute.com', '198.51.100.1', watcher.snapshot, Date.now());
const API = { org: 'acme', fn: 'api', regions: null, tier: 'standard' as const, enabled: true };

describe.skipIf(REDIS_MISSING)('RedisRegistry: a part that cannot be read keeps what the router holds', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** A router's registry (`onRejected` recorded), an operator's, and a raw connection, on a fresh prefix holding acme/api (everywhere), acme's rule (syd) and every region up. */
  async function setup(registryOptions: { directoryPageEntries?: number } = {}) {
    const p = `test:${randomUUID()}:`;
    const rejected: Array<[string, string]> = [];
    const regions = REGIONS.map((r) => r.id);
    const registry = new RedisRegistry({ url: SHARED_REDIS, keyPrefix: p, regions, onRejected: (where, reason) => rejected.push([where, reason]), ...registryOptions });
    const writer = new RedisRegistry({ url: SHARED_REDIS, keyPrefix: p, regions });
    const raw = new Redis(SHARED_REDIS);
    cleanups.push(async () => {
      const keys = await raw.keys(`${p}*`);
      if (keys.length > 0) await raw.del(...keys);
      raw.disconnect();
      await Promise.all([registry.close(), writer.close()]);
    });
    await Promise.all([registry.ready(), writer.ready()]);
    for (const region of regions) await writer.writeHeartbeat(heartbeat(region), 60_000);
    await writer.putFunction(API);
    await writer.setResidency('acme', ['syd']);
    const watcherOn = (on: RedisRegistry, options: Partial<RegistryWatcherOptions> = {}) => {
      // Every reconcile reads each part whole (a key changed by hand moves no revision).
      const watcher = new RegistryWatcher({ registry: on, regions: REGIONS, heartbeatTtlMs: 60_000, pollMs: 50, reconcileMs: 50, unconditionalReadMs: 0, startupReadRetries: 0, ...options });
      cleanups.push(() => watcher.stop());
      return watcher;
    };
    // In one step: a read between a DEL and a SET would rightly find no key, no rules.
    const breakKey = (name: string) => raw.multi().del(`${p}${name}`).set(`${p}${name}`, 'not a hash').exec();
    const saidOf = (name: string) => rejected.filter(([where]) => where === `${p}${name}`);
    return { p, registry, writer, raw, rejected, watcherOn, breakKey, saidOf };
  }

  it('routes an org by the rule it last read when its residency key turns into a string, says so once, and takes the next good read', async () => {
    const { registry, writer, raw, p, watcherOn, breakKey, saidOf } = await setup();
    const watcher = watcherOn(registry);
    await watcher.start();
    expect(routeAcme(watcher)).toMatchObject({ ok: true, candidates: ['syd'], reason: 'residency' });

    await breakKey('residency');
    await until('the broken key said', () => saidOf('residency').length > 0, 3_000);
    // Several whole reads of the broken key since.
    for (let i = 0; i < 3; i++) expect(await watcher.resync()).toBe(true);
    expect(routeAcme(watcher)).toMatchObject({ ok: true, candidates: ['syd'], reason: 'residency' });
    expect(watcher.snapshot.residency.get('acme')).toEqual(new Set(['syd']));
    expect(watcher.status().unreadableParts).toEqual(['residency']);
    expect(saidOf('residency')).toEqual([[`${p}residency`, expect.stringMatching(/^WRONGTYPE the key holds a string, not a hash; its entries are kept as last read/)]]);

    // Mended (the key removed, a rule written): routed by what Redis holds again.
    await raw.del(`${p}residency`);
    await writer.setResidency('acme', ['nyc']);
    await until('routed by the new rule', () => {
      const d = routeAcme(watcher);
      return d.ok && d.candidates.join() === 'nyc' && watcher.status().unreadableParts.length === 0;
    }, 3_000);
    // Broken again: a new episode, said again.
    await breakKey('residency');
    await until('said a second time', () => saidOf('residency').length === 2, 3_000);
    expect(await watcher.resync()).toBe(true);
    expect(routeAcme(watcher)).toMatchObject({ ok: true, candidates: ['nyc'] });
  });

  it('keeps the functions, domains and overrides it last read the same way, each said once', async () => {
    const { registry, writer, watcherOn, breakKey, saidOf } = await setup();
    await writer.putDomain('api.example.com', { fn: 'api', org: 'acme' });
    await writer.setOverrides('fra', { drained: true, weight: null });
    const watcher = watcherOn(registry);
    await watcher.start();
    for (const name of ['functions', 'domains', 'overrides']) await breakKey(name);
    await until('each broken key said', () => saidOf('functions').length > 0 && saidOf('domains').length > 0 && saidOf('overrides').length > 0, 3_000);
    for (let i = 0; i < 3; i++) expect(await watcher.resync()).toBe(true);
    expect(watcher.snapshot.functions.get('acme')?.has('api')).toBe(true);
    expect(watcher.snapshot.domains.get('api.example.com')).toEqual({ fn: 'api', org: 'acme' });
    expect(watcher.snapshot.regions.get('fra')?.drained).toBe(true);
    expect(watcher.status().unreadableParts).toEqual(['functions', 'domains', 'overrides']);
    expect([saidOf('functions').length, saidOf('domains').length, saidOf('overrides').length]).toEqual([1, 1, 1]);
    // Everything else is still read: a new heartbeat, an ejection.
    await writer.setEjection('lax', { until: Date.now() + 60_000, count: 1, cause: 'test' });
    await until('the ejection read', () => (watcher.snapshot.regions.get('lax')?.ejectedUntil ?? 0) > Date.now(), 3_000);
  });

  it('a residency set names its functions unchecked, not "none stranded", when the functions key cannot be read', async () => {
    const { writer, breakKey } = await setup();
    await breakKey('functions');
    const outcome = await setOrgResidency(writer, 'acme', ['fra'], 'test');
    expect(outcome).toMatchObject({ stranded: null, partlyOutside: null });
    expect(String(outcome.unchecked)).toMatch(/the registry's functions could not be read/);
  });

  it('serves nothing (503 registry_unreachable, as with Redis away at start) when it starts on a residency key it cannot read, until the key reads', async () => {
    const { registry, writer, raw, p, watcherOn, breakKey, saidOf } = await setup();
    await breakKey('residency');
    const watcher = watcherOn(registry);
    await watcher.start();
    await until('the broken key said', () => saidOf('residency').length > 0, 3_000);
    for (let i = 0; i < 3; i++) expect(await watcher.resync()).toBe(false);
    expect(routeAcme(watcher)).toMatchObject({ ok: false, code: 'registry_unreachable' });
    expect(watcher.snapshot.directoryUnread).toBe(true);
    expect(watcher.status()).toMatchObject({ lastFullSyncAt: null, unreadableParts: ['residency'] }); // /readyz: not ready
    expect(watcher.lastKnown()).toBeUndefined(); // nothing to hand a sibling
    expect(saidOf('residency')).toHaveLength(1);
    // Heartbeats still count as contact: not stale, only unread.
    expect(watcher.status().stale).toBe(false);

    await raw.del(`${p}residency`);
    await writer.setResidency('acme', ['syd']);
    await until('routed by the rule once it reads', () => {
      const d = routeAcme(watcher);
      return d.ok && d.candidates.join() === 'syd';
    }, 3_000);
    expect(watcher.status().unreadableParts).toEqual([]);
  });

  it('a --workers worker started on the unreadable key takes its sibling\'s rules (registry-seed) and keeps them', async () => {
    const { p, registry, breakKey, saidOf, watcherOn } = await setup();
    const pairs: LinkedPair[] = [];
    cleanups.push(() => pairs.forEach((pair) => pair.close()));
    const relay = new LastKnownRelay();
    const worker = async (watcher: RegistryWatcher) => {
      await watcher.start();
      const pair = linkedPair(1_000);
      pairs.push(pair);
      relay.attach(pair.primary);
      const stop = await seedFromSiblings(pair.worker, watcher);
      cleanups.push(stop);
    };
    const sibling = watcherOn(registry);
    await worker(sibling);
    expect(routeAcme(sibling)).toMatchObject({ ok: true, candidates: ['syd'] });
    await breakKey('residency');
    await until('the broken key said', () => saidOf('residency').length > 0, 3_000);
    expect(await sibling.resync()).toBe(true);

    const other = new RedisRegistry({ url: SHARED_REDIS, keyPrefix: p, regions: REGIONS.map((r) => r.id) });
    cleanups.push(() => other.close());
    const replacement = watcherOn(other);
    await worker(replacement);
    await until('the replacement seeded', () => replacement.snapshot.directoryUnread !== true, 3_000);
    expect(routeAcme(replacement)).toMatchObject({ ok: true, candidates: ['syd'] });
    expect(await replacement.resync()).toBe(true);
    expect(routeAcme(replacement)).toMatchObject({ ok: true, candidates: ['syd'] });
    expect(replacement.status().unreadableParts).toEqual(['residency']);
  });

  it('a generation key of the wrong type is no data lost: said once, nothing written back, the directory still read', async () => {
    const { registry, writer, raw, p, watcherOn, saidOf } = await setup();
    const events: WatcherEvent[] = [];
    const watcher = watcherOn(registry, { onEvent: (event) => events.push(event) });
    await watcher.start();
    const stamped = watcher.status().generation;
    expect(stamped).toMatch(/^seed:/);
    // A hash where a string belongs (a GET of it is refused WRONGTYPE), in one step.
    await raw.multi().del(`${p}generation`).hset(`${p}generation`, 'by', 'hand').exec();
    for (let i = 0; i < 3; i++) expect(await watcher.resync()).toBe(true);
    // Before: read as no generation, so "lost": data-lost, and a write-back refused at every read.
    expect(events.filter((e) => e.type === 'data-lost' || e.type === 'restore-failed' || e.type === 'error')).toEqual([]);
    expect(watcher.status()).toMatchObject({ dataLostAt: null, generation: stamped, unreadableParts: ['generation'] });
    expect(saidOf('generation')).toEqual([[`${p}generation`, expect.stringMatching(/^WRONGTYPE/)]]);
    expect(await raw.type(`${p}generation`)).toBe('hash'); // nothing written over it
    // The directory is the registry's still: a function deployed since is routed.
    await writer.putFunction({ ...API, fn: 'late' });
    await until('the new function read', () => watcher.snapshot.functions.get('acme')?.has('late') === true, 3_000);
    expect(routeAcme(watcher)).toMatchObject({ ok: true, candidates: ['syd'] });

    // Mended by hand to the name it had: the same registry, nothing lost.
    await raw.multi().del(`${p}generation`).set(`${p}generation`, stamped!).exec();
    expect(await watcher.resync()).toBe(true);
    expect(watcher.status()).toMatchObject({ dataLostAt: null, generation: stamped, unreadableParts: [] });
    expect(events.filter((e) => e.type === 'data-lost' || e.type === 'restore-failed' || e.type === 'error' || e.type === 'data-replaced')).toEqual([]);
  });

  it('a router started on a generation key of the wrong type routes by the directory it reads, stamps nothing, and stamps one once the key is gone', async () => {
    const { registry, raw, p, watcherOn, saidOf } = await setup();
    await raw.hset(`${p}generation`, 'by', 'hand');
    const events: WatcherEvent[] = [];
    const watcher = watcherOn(registry, { onEvent: (event) => events.push(event) });
    await watcher.start();
    for (let i = 0; i < 3; i++) expect(await watcher.resync()).toBe(true);
    expect(routeAcme(watcher)).toMatchObject({ ok: true, candidates: ['syd'], reason: 'residency' });
    // Before: a stamp tried (and refused) at every read, each an error.
    expect(events.filter((e) => e.type === 'error' || e.type === 'data-lost' || e.type === 'restore-failed')).toEqual([]);
    expect(watcher.status()).toMatchObject({ generation: null, unreadableParts: ['generation'] });
    expect(saidOf('generation')).toHaveLength(1);
    await raw.del(`${p}generation`);
    expect(await watcher.resync()).toBe(true);
    expect(watcher.status()).toMatchObject({ generation: expect.stringMatching(/^seed:/), unreadableParts: [] });
  });

  it('reads the rest when a paged read of the rules fails midway (the key replaced between two pages), naming the part unreadable', async () => {
    const { registry, writer, raw, p, saidOf, breakKey } = await setup({ directoryPageEntries: 2 });
    // More rules than Redis keeps in a listpack (hash-max-listpack-entries: 128 by default, 512 here), so that HSCAN pages.
    await raw.hset(`${p}residency`, Object.fromEntries(Array.from({ length: 600 }, (_, i) => [`eu${i}`, '["fra"]'])));
    await writer.putFunction({ ...API, fn: 'late' });
    const cmd = (registry as unknown as { cmd: Redis }).cmd;
    const hscan = cmd.hscan.bind(cmd) as (...args: unknown[]) => Promise<[string, string[]]>;
    let residencyPages = 0;
    (cmd as unknown as { hscan: unknown }).hscan = async (...args: unknown[]) => {
      // Redis itself refuses the second page: the key is a string by then.
      if (args[0] === `${p}residency` && ++residencyPages === 2) await breakKey('residency');
      return hscan(...args);
    };
    const state = await registry.readState(undefined, 'paged');
    expect(residencyPages).toBe(2);
    expect(state.unreadable).toEqual(new Map([['residency', expect.stringMatching(/^WRONGTYPE .*\(a paged read, refused midway\)$/)]]));
    expect(state.residency.size).toBe(0); // none of a half-read part: the reader keeps its own
    expect(state.functions.get('acme')?.has('late')).toBe(true);
    expect(saidOf('residency')).toEqual([[`${p}residency`, expect.stringMatching(/^WRONGTYPE/)]]);
    // Read again (the script now finds a string): the same episode, not said again.
    expect((await registry.readState(undefined, 'paged')).unreadable).toEqual(new Map([['residency', 'WRONGTYPE the key holds a string, not a hash']]));
    expect(saidOf('residency')).toHaveLength(1);
  });
});
