/**
 * How routers sharing a vault share the work: one order per name however many routers see it
 * due, certificates reaching every router, failures backing off for all. The CA is played by a
 * counting issuer here (its exchange with a real ACME server is test/acme/acme-issuer.test.ts; the whole path through two routers, acme-router.test.ts).
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import type { CertificateVault, IssuedCertificate } from '../../src/core/certificate-vault.js';
import { CertificateManager, type CertificateEvent } from '../../src/acme/certificate-manager.js';
import { RateLimitedError, type CertificateIssuer } from '../../src/acme/acme-issuer.js';
import { FIRST_RETRY_MS, renewalDue } from '../../src/acme/issuance-plan.js';
import { MemoryCertificateVault } from '../../src/registry/memory-certificate-vault.js';
import { RedisCertificateVault } from '../../src/registry/redis-certificate-vault.js';
import { redisKeyspace } from '../support/redis-keyspace.js';
import { REDIS_MISSING } from '../support/system-program.js';

const DAY = 24 * 60 * 60_000;

class CountingIssuer implements CertificateIssuer {
  readonly orders: string[] = [];
  failWith: string | Error | null = null;
  constructor(private readonly now: () => number, private readonly delayMs = 0) {}
  async issue(name: string): Promise<IssuedCertificate> {
    this.orders.push(name);
    await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    if (this.failWith !== null) throw typeof this.failWith === 'string' ? new Error(this.failWith) : this.failWith;
    return { name, certPem: `cert for ${name}`, keyPem: 'key', notBefore: this.now(), notAfter: this.now() + 90 * DAY };
  }
}

function router(vault: CertificateVault, issuer: CertificateIssuer, names: string[], now: () => number, holder: string) {
  const served: Array<ReadonlyMap<string, IssuedCertificate>> = [];
  const events: CertificateEvent[] = [];
  const manager = new CertificateManager({ vault, issuer, holder, now, wantedNames: () => names, onCertificates: (c) => served.push(c), onEvent: (e) => events.push(e) });
  return { manager, served, events };
}

describe('CertificateManager', () => {
  it('orders each wanted name once across routers checking at the same time, and every router serves the result', async () => {
    let now = 1_000 * DAY;
    const clock = () => now;
    const vault = new MemoryCertificateVault(clock);
    const issuer = new CountingIssuer(clock, 20);
    const names = ['a.example', 'b.example'];
    const one = router(vault, issuer, names, clock, 'router-1');
    const two = router(vault, issuer, names, clock, 'router-2');
    await Promise.all([one.manager.check(), two.manager.check()]);
    expect(issuer.orders.sort()).toEqual(['a.example', 'b.example']);
    await Promise.all([one.manager.check(), two.manager.check()]);
    expect(issuer.orders).toHaveLength(2);
    for (const r of [one, two]) expect([...r.served.at(-1)!.keys()].sort()).toEqual(names);
    expect(one.events.concat(two.events).filter((e) => e.type === 'issued')).toHaveLength(2);

    now += 61 * DAY; // past two thirds of 90 days (and so past the renewal time of every name): renewed, once
    await Promise.all([one.manager.check(), two.manager.check()]);
    expect(issuer.orders).toHaveLength(4);
    expect(one.events.concat(two.events).filter((e) => e.type === 'issued' && e.reason === 'renewal')).toHaveLength(2);
  });

  it('gives up an order that outlasts nine tenths of its lease, so that no other router orders the name while it runs', async () => {
    const now = 1_000 * DAY;
    const clock = () => now;
    const vault = new MemoryCertificateVault(clock);
    const slow = new CountingIssuer(clock, 2_000); // the CA takes 2 s; the lease is 500 ms
    const served: Array<ReadonlyMap<string, IssuedCertificate>> = [];
    const events: CertificateEvent[] = [];
    const manager = new CertificateManager({ vault, issuer: slow, holder: 'router-1', now: clock, wantedNames: () => ['a.example'], onCertificates: (c) => served.push(c), onEvent: (e) => events.push(e), leaseMs: 500 });
    const started = Date.now();
    await manager.check();
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(events).toEqual([{ type: 'failed', failure: expect.objectContaining({ name: 'a.example', attempts: 1, reason: 'the order did not finish within 450 ms, nine tenths of its lease; given up, to be tried again' }) }]);
    // Given up, its lease is free again, and the failure's backoff is what holds the name back now.
    expect(await vault.takeLease('a.example', 'router-2', 500)).toBe(true);
    expect([...(served.at(-1) ?? new Map()).keys()]).toEqual([]);
  });

  it('gives up an order in progress when stopped, releasing its lease at once and recording no failure', async () => {
    const now = 1_000 * DAY;
    const clock = () => now;
    const vault = new MemoryCertificateVault(clock);
    let ordered!: () => void;
    const orderStarted = new Promise<void>((resolve) => (ordered = resolve));
    // A CA that never answers within this test (one polling for minutes, as ACME's may).
    const silent: CertificateIssuer = { issue: () => (ordered(), new Promise<IssuedCertificate>(() => undefined)) };
    const events: CertificateEvent[] = [];
    const manager = new CertificateManager({ vault, issuer: silent, holder: 'router-1', now: clock, wantedNames: () => ['a.example'], onCertificates: () => undefined, onEvent: (e) => events.push(e) });
    void manager.check();
    await orderStarted;
    expect(await vault.takeLease('a.example', 'router-2', 60_000)).toBe(false); // router-1 holds it
    const stopped = manager.stop().then(() => 'stopped');
    expect(await Promise.race([stopped, new Promise((resolve) => setTimeout(() => resolve('still waiting'), 2_000))])).toBe('stopped');
    expect(events).toEqual([{ type: 'abandoned', name: 'a.example' }]);
    expect(manager.status().failures).toEqual([]);
    expect(await vault.takeLease('a.example', 'router-2', 60_000)).toBe(true);
  });

  it('starts no order once stopped while it was taking the name\'s lease: the CA is not asked for a certificate nobody will store', async () => {
    const now = 1_000 * DAY;
    const clock = () => now;
    const vault = new MemoryCertificateVault(clock);
    const issuer = new CountingIssuer(clock);
    let leaseAsked!: () => void;
    const asked = new Promise<void>((resolve) => (leaseAsked = resolve));
    let grant!: () => void;
    const granted = new Promise<void>((resolve) => (grant = resolve));
    // A vault slow to grant the lease (a Redis round trip under load).
    const slow = Object.assign(Object.create(vault) as MemoryCertificateVault, {
      takeLease: async (name: string, holder: string, ms: number) => {
        leaseAsked();
        await granted;
        return vault.takeLease(name, holder, ms);
      },
    });
    const manager = new CertificateManager({ vault: slow, issuer, holder: 'router-1', now: clock, wantedNames: () => ['a.example'], onCertificates: () => undefined });
    const checking = manager.check();
    await asked;
    const stopped = manager.stop();
    grant();
    await Promise.all([checking, stopped]);
    // Before, the order went to the CA and was abandoned at once, against its duplicate-certificate limit.
    expect(issuer.orders).toEqual([]);
    expect(await vault.takeLease('a.example', 'router-2', 60_000)).toBe(true);
  });

  it('records a failure that every router honours until its retry time, then orders again', async () => {
    let now = 1_000 * DAY;
    const clock = () => now;
    const vault = new MemoryCertificateVault(clock);
    const issuer = new CountingIssuer(clock);
    issuer.failWith = 'urn:ietf:params:acme:error:connection: Fetching http://a.example/.well-known/acme-challenge/x: Connection refused';
    const one = router(vault, issuer, ['a.example'], clock, 'router-1');
    const two = router(vault, issuer, ['a.example'], clock, 'router-2');
    await one.manager.check();
    await two.manager.check();
    expect(issuer.orders).toEqual(['a.example']);
    expect(two.manager.status().failures).toEqual([{ name: 'a.example', attempts: 1, at: new Date(now).toISOString(), retryAt: new Date(now + FIRST_RETRY_MS).toISOString(), reason: issuer.failWith }]);
    expect(one.events).toEqual([{ type: 'failed', failure: expect.objectContaining({ name: 'a.example', attempts: 1 }) }]);

    now += FIRST_RETRY_MS;
    issuer.failWith = null;
    await two.manager.check();
    expect(issuer.orders).toEqual(['a.example', 'a.example']);
    expect(two.manager.status().failures).toEqual([]);
    await one.manager.check();
    expect([...one.served.at(-1)!.keys()]).toEqual(['a.example']);
    // What operators see: dates and the renewal time, never the key or the certificate itself.
    const status = one.manager.status();
    expect(status).toEqual({
      certificates: [{ name: 'a.example', notBefore: new Date(now).toISOString(), notAfter: new Date(now + 90 * DAY).toISOString(), renewAt: new Date(renewalDue({ name: 'a.example', certPem: '', keyPem: '', notBefore: now, notAfter: now + 90 * DAY })).toISOString() }],
      failures: [],
      ordersPaused: null,
      total: { domains: 1, certificates: 1, failures: 0 },
      next: null,
    });
  });

  it('stops every router ordering when the CA answers one with a rate limit, without counting it against the name', async () => {
    let now = 1_000 * DAY;
    const clock = () => now;
    const vault = new MemoryCertificateVault(clock);
    const issuer = new CountingIssuer(clock);
    const threeHours = 3 * 60 * 60_000;
    const detail = 'too many new orders (300) from this account in the last 3h0m0s';
    issuer.failWith = new RateLimitedError(detail, now + threeHours);
    const names = ['a.example', 'b.example', 'c.example'];
    // a.example already failed twice for reasons of its own: a rate limit says nothing more about it.
    await vault.putFailure({ name: 'a.example', attempts: 2, at: now - DAY, retryAt: now - 1, reason: 'connection refused' });
    const one = router(vault, issuer, names, clock, 'router-1');
    const two = router(vault, issuer, names, clock, 'router-2');
    // Every name after the first was refused too: a customer's 10,000 domains, 10,000 refused orders a check.
    await one.manager.check();
    expect(issuer.orders).toEqual(['b.example']);
    const refusedAt = now;
    expect(one.events).toEqual([
      {
        type: 'rate-limited',
        failure: { name: 'b.example', attempts: 0, at: refusedAt, retryAt: refusedAt + threeHours, reason: detail },
        pause: { name: 'b.example', reason: detail, at: refusedAt, until: refusedAt + FIRST_RETRY_MS, refusals: 1 },
      },
    ]);

    // The other router, and this one, order nothing while the pause lasts: the fleet sent one refused order, not one per router.
    now += 60_000;
    await two.manager.check();
    await one.manager.check();
    expect(issuer.orders).toEqual(['b.example']);
    const paused = { name: 'b.example', reason: detail, since: new Date(refusedAt).toISOString(), until: new Date(refusedAt + FIRST_RETRY_MS).toISOString(), refusals: 1 };
    expect(two.manager.status().ordersPaused).toEqual(paused);
    expect(two.manager.status().failures).toEqual([
      expect.objectContaining({ name: 'a.example', attempts: 2 }),
      expect.objectContaining({ name: 'b.example', attempts: 0, retryAt: new Date(refusedAt + threeHours).toISOString() }),
    ]);

    // After the pause one router asks again, with another name (a limit may be that name's alone);
    // refused again, the whole fleet waits twice as long (the CA's retry time at most).
    now = refusedAt + FIRST_RETRY_MS;
    await two.manager.check();
    await one.manager.check();
    expect(issuer.orders).toEqual(['b.example', 'c.example']);
    expect(two.manager.status().ordersPaused).toMatchObject({ name: 'c.example', refusals: 2, until: new Date(now + 2 * FIRST_RETRY_MS).toISOString() });
    expect(one.manager.status().failures.map((f) => [f.name, f.attempts])).toEqual([['a.example', 2], ['b.example', 0], ['c.example', 0]]);

    // The limit has gone: the next order goes through and ends the pause for everyone.
    now += 2 * FIRST_RETRY_MS;
    issuer.failWith = null;
    await one.manager.check();
    expect(issuer.orders).toEqual(['b.example', 'c.example', 'a.example']);
    expect(await vault.readOrderPause()).toBeNull();
    await two.manager.check();
    expect(two.manager.status().ordersPaused).toBeNull();

    // The refused names wait for the CA's retry time, not a failure's backoff.
    now = refusedAt + threeHours - 1;
    await one.manager.check();
    expect(issuer.orders).toHaveLength(3);
    now += 1;
    await one.manager.check();
    expect(issuer.orders).toEqual(['b.example', 'c.example', 'a.example', 'b.example', 'c.example']);
  });

  it('honours a shared pause for what the vault says is left, not the refused router\'s clock (a year ahead here)', async () => {
    let now = 1_000 * DAY;
    const clock = () => now;
    const vault = new MemoryCertificateVault(clock);
    await vault.pauseOrders({ name: 'x.example', reason: 'too many new orders', at: now + 365 * DAY, until: now + 366 * DAY, refusals: 1 }, 60_000);
    const issuer = new CountingIssuer(clock);
    const one = router(vault, issuer, ['a.example'], clock, 'router-1');
    await one.manager.check();
    expect(issuer.orders).toEqual([]);
    expect(one.manager.status().ordersPaused).toMatchObject({ name: 'x.example', until: new Date(now + 60_000).toISOString() });
    now += 60_000;
    await one.manager.check();
    expect(issuer.orders).toEqual(['a.example']);
    expect(one.manager.status().ordersPaused).toBeNull();
  });

  it('deletes a removed domain\'s certificate from the vault once it has expired, not before', async () => {
    let now = 1_000 * DAY;
    const clock = () => now;
    const vault = new MemoryCertificateVault(clock);
    const issuer = new CountingIssuer(clock);
    const names = ['kept.example', 'removed.example'];
    const one = router(vault, issuer, names, clock, 'router-1');
    await one.manager.check();
    expect((await vault.readAll()).certificates.map((c) => c.name).sort()).toEqual(names);

    names.splice(1, 1); // the custom domain is removed
    now += 30 * DAY;
    await one.manager.check();
    expect((await vault.readAll()).certificates.map((c) => c.name).sort()).toEqual(['kept.example', 'removed.example']);

    now += 61 * DAY; // both expired: kept.example is ordered again, removed.example deleted
    await one.manager.check();
    expect((await vault.readAll()).certificates.map((c) => c.name)).toEqual(['kept.example']);
    expect(issuer.orders).toEqual(['kept.example', 'removed.example', 'kept.example']);
    expect(one.events.filter((e) => e.type === 'forgotten')).toEqual([{ type: 'forgotten', name: 'removed.example' }]);
    expect(one.manager.status().certificates.map((c) => c.name)).toEqual(['kept.example']);
  });

  it('does not delete a certificate another router renewed while this one was busy with an order', async () => {
    const now = 1_000 * DAY;
    const clock = () => now;
    const vault = new MemoryCertificateVault(clock);
    await vault.putCertificate({ name: 'x.example', certPem: 'old', keyPem: 'key', notBefore: now - 100 * DAY, notAfter: now - 10 * DAY });
    const slow = new CountingIssuer(clock, 300);
    slow.failWith = 'connection refused';
    // A no longer has x.example among its custom domains (its registry view moved first); B still has.
    const a = router(vault, slow, ['slow.example'], clock, 'router-a');
    const b = router(vault, new CountingIssuer(clock), ['x.example'], clock, 'router-b');
    const checkingA = a.manager.check(); // its view: x.example expired and unwanted; then 300 ms ordering slow.example
    await expect.poll(() => slow.orders.length).toBe(1);
    await b.manager.check(); // B renews x.example meanwhile
    await checkingA;
    const left = (await vault.readAll()).certificates;
    expect(left.map((c) => c.name)).toEqual(['x.example']);
    expect(left[0]!.notAfter).toBe(now + 90 * DAY);
    expect(a.events.filter((e) => e.type === 'forgotten')).toEqual([]);
  });

  it('does not order a name while another router holds its lease (a crashed router\'s lease runs out)', async () => {
    let now = 1_000 * DAY;
    const clock = () => now;
    const vault = new MemoryCertificateVault(clock);
    const issuer = new CountingIssuer(clock);
    await vault.takeLease('a.example', 'crashed-router', 10 * 60_000);
    const one = router(vault, issuer, ['a.example'], clock, 'router-1');
    await one.manager.check();
    expect(issuer.orders).toEqual([]);
    now += 10 * 60_000;
    await one.manager.check();
    expect(issuer.orders).toEqual(['a.example']);
  });

  it('does not order a name removed (or now covered by a certificate file) while earlier orders of the same check ran', async () => {
    const now = 1_000 * DAY;
    const clock = () => now;
    const vault = new MemoryCertificateVault(clock);
    const names = ['a.example', 'b.example', 'c.example'];
    // The orders of one check run one after another, for hours when many names are due (a bulk
    // import, a customer's domains that fail): the operator removes b.example meanwhile.
    const issuer = new CountingIssuer(clock);
    const issue = issuer.issue.bind(issuer);
    issuer.issue = (name) => {
      if (name === 'a.example') names.splice(names.indexOf('b.example'), 1);
      return issue(name);
    };
    const one = router(vault, issuer, names, clock, 'router-1');
    await one.manager.check();
    expect(issuer.orders).toEqual(['a.example', 'c.example']);
    expect(one.manager.status().failures).toEqual([]);
  });

  it('reports a vault it cannot read and carries on at the next check', async () => {
    const vault = new MemoryCertificateVault();
    let broken = true;
    const flaky = Object.assign(Object.create(vault) as MemoryCertificateVault, {
      version: () => (broken ? Promise.reject(new Error('the registry is unreachable')) : vault.version()),
    });
    const issuer = new CountingIssuer(Date.now);
    const one = router(flaky, issuer, ['a.example'], Date.now, 'router-1');
    await one.manager.check();
    expect(one.events).toEqual([{ type: 'vault-error', message: 'the registry is unreachable' }]);
    broken = false;
    await one.manager.check();
    expect(issuer.orders).toEqual(['a.example']);
  });
});

describe.skipIf(REDIS_MISSING)('CertificateManager on the Redis vault: routers read only what changed', () => {
  const { url, prefix } = redisKeyspace('certificate-manager');
  const connections: Redis[] = [];
  afterAll(() => connections.forEach((c) => c.disconnect()));
  const openVault = () => {
    const cmd = new Redis(url);
    connections.push(cmd);
    return new RedisCertificateVault(cmd, prefix);
  };

  it('keeps every router\'s copy equal to the vault through orders, failures, renewals and removals', async () => {
    let now = 1_000 * DAY;
    const clock = () => now;
    const issuer = new CountingIssuer(clock);
    const names = ['a.example', 'b.example'];
    const one = router(openVault(), issuer, names, clock, 'router-1');
    const two = router(openVault(), issuer, names, clock, 'router-2');
    issuer.failWith = 'connection refused';
    await one.manager.check();
    await two.manager.check(); // its first read: everything
    expect(two.manager.status().failures.map((f) => f.name)).toEqual(names);

    now += FIRST_RETRY_MS;
    issuer.failWith = null;
    await one.manager.check(); // both issued: each clears its failure
    await two.manager.check(); // what changed only
    expect(two.manager.status()).toEqual(one.manager.status());
    expect(two.manager.status()).toMatchObject({ certificates: [{ name: 'a.example' }, { name: 'b.example' }], failures: [] });
    expect([...two.served.at(-1)!.keys()].sort()).toEqual(names);

    names.splice(1, 1); // b.example removed; a.example renewed and b.example forgotten once expired
    now += 91 * DAY;
    await one.manager.check();
    await two.manager.check();
    expect(two.manager.status()).toEqual(one.manager.status());
    expect(two.manager.status().certificates.map((c) => c.name)).toEqual(['a.example']);
    expect([...two.served.at(-1)!.keys()]).toEqual(['a.example']);
  });
});
