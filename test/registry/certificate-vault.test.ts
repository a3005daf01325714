/**
 * The CertificateVault contract, run against the memory vault and the Redis vault alike (a real
 * redis-server: the shared one, under a private key prefix), plus what only Redis can get wrong:
 * records someone else wrote there.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { MAX_ORDER_PAUSE_MS, ORDER_PAUSE_MEMORY_MS, type CertificateVault, type IssuedCertificate, type OrderPause, type VaultChanges, type VaultContents } from '../../src/core/certificate-vault.js';
import { MemoryCertificateVault } from '../../src/registry/memory-certificate-vault.js';
import { READ_PAGE, RedisCertificateVault } from '../../src/registry/redis-certificate-vault.js';
import { until } from '../support/until.js';
import { redisKeyspace } from '../support/redis-keyspace.js';
import { REDIS_MISSING } from '../support/system-program.js';

const PAUSE: OrderPause = { name: 'a.example', reason: 'too many new orders (300) from this account in the last 3h0m0s', at: 5_000, until: 5_000 + 3 * 60 * 60_000, refusals: 1 };

const CERT: IssuedCertificate = { name: 'shop.example.net', certPem: 'CERT', keyPem: 'KEY', notBefore: 1_000, notAfter: 2_000 };

/** A router's copy of the vault (as the certificate manager keeps it), brought up to date by `changes`. */
function applied(view: VaultContents, changes: VaultChanges): VaultContents {
  if (changes.whole) return { certificates: changes.certificates, failures: changes.failures };
  const gone = new Set(changes.names);
  return {
    certificates: [...view.certificates.filter((c) => !gone.has(c.name)), ...changes.certificates],
    failures: [...view.failures.filter((f) => !gone.has(f.name)), ...changes.failures],
  };
}

const byName = (contents: VaultContents) => ({
  certificates: [...contents.certificates].sort((a, b) => a.name.localeCompare(b.name)),
  failures: [...contents.failures].sort((a, b) => a.name.localeCompare(b.name)),
});

function vaultContract(label: string, open: () => { vault: CertificateVault; peer: CertificateVault }) {
  describe(`${label}: the CertificateVault contract`, () => {
    it('shares one account key: the first offer stands', async () => {
      const { vault, peer } = open();
      expect(await vault.shareAccountKey('first')).toBe('first');
      expect(await peer.shareAccountKey('second')).toBe('first');
    });

    it('keeps a challenge answer for its time, readable by every router, until deleted', async () => {
      const { vault, peer } = open();
      await vault.putChallenge('tok-aaaaaaaaaaaaaaaa', 'tok.thumb', 60_000);
      await vault.putChallenge('tok-bbbbbbbbbbbbbbbb', 'short', 30);
      expect(await peer.readChallenge('tok-aaaaaaaaaaaaaaaa')).toBe('tok.thumb');
      expect(await peer.readChallenge('tok-unknownnnnnnnnn')).toBeNull();
      await sleep(80);
      expect(await peer.readChallenge('tok-bbbbbbbbbbbbbbbb')).toBeNull();
      await vault.deleteChallenge('tok-aaaaaaaaaaaaaaaa');
      expect(await peer.readChallenge('tok-aaaaaaaaaaaaaaaa')).toBeNull();
    });

    it('gives a name\'s lease to one holder at a time, renewable by it, free again when released or expired', async () => {
      const { vault, peer } = open();
      expect(await vault.takeLease('a.example', 'router-1', 60_000)).toBe(true);
      expect(await peer.takeLease('a.example', 'router-2', 60_000)).toBe(false);
      expect(await vault.takeLease('a.example', 'router-1', 60_000)).toBe(true);
      expect(await peer.takeLease('b.example', 'router-2', 60_000)).toBe(true);
      await peer.releaseLease('a.example', 'router-2'); // not its lease: nothing happens
      expect(await peer.takeLease('a.example', 'router-2', 60_000)).toBe(false);
      await vault.releaseLease('a.example', 'router-1');
      expect(await peer.takeLease('a.example', 'router-2', 30)).toBe(true);
      await sleep(80);
      expect(await vault.takeLease('a.example', 'router-1', 60_000)).toBe(true);
    });

    it('stores certificates and failures, a certificate clearing its name\'s failure, and moves the version with each write', async () => {
      const { vault, peer } = open();
      const versions = [await peer.version()];
      await vault.putFailure({ name: CERT.name, attempts: 1, at: 10, retryAt: 20, reason: 'connection refused' });
      await vault.putFailure({ name: 'other.example', attempts: 2, at: 10, retryAt: 30, reason: 'timeout' });
      versions.push(await peer.version());
      expect((await peer.readAll()).failures.map((f) => f.name).sort()).toEqual(['other.example', CERT.name]);
      await vault.putCertificate(CERT);
      versions.push(await peer.version());
      expect(await peer.readAll()).toEqual({ certificates: [CERT], failures: [{ name: 'other.example', attempts: 2, at: 10, retryAt: 30, reason: 'timeout' }] });
      await vault.forget(CERT.name);
      await vault.forget('other.example');
      versions.push(await peer.version());
      expect(await peer.readAll()).toEqual({ certificates: [], failures: [] });
      expect(new Set(versions).size).toBe(versions.length);
    });

    it('shares a pause of every router\'s orders: its time counted by the vault\'s clock, bounded, remembered a while after it ends, until cleared', async () => {
      const { vault, peer } = open();
      expect(await peer.readOrderPause()).toBeNull();
      await vault.pauseOrders(PAUSE, 60_000);
      const seen = await peer.readOrderPause();
      expect(seen?.pause).toEqual(PAUSE);
      // Counted from the write, not from `until` (another router's clock, which may be off).
      expect(seen!.remainingMs).toBeGreaterThan(50_000);
      expect(seen!.remainingMs).toBeLessThanOrEqual(60_000);

      // However long it is asked for (a CA's Retry-After of a year), never more than the bound.
      await vault.pauseOrders({ ...PAUSE, refusals: 2 }, 365 * 24 * 60 * 60_000);
      const bounded = await peer.readOrderPause();
      expect(bounded?.pause.refusals).toBe(2);
      expect(bounded!.remainingMs).toBeGreaterThan(MAX_ORDER_PAUSE_MS - 10_000);
      expect(bounded!.remainingMs).toBeLessThanOrEqual(MAX_ORDER_PAUSE_MS);

      // Over, but remembered (how many refusals in a row) for a while after.
      await vault.pauseOrders({ ...PAUSE, refusals: 3 }, 30);
      await sleep(80);
      const over = await peer.readOrderPause();
      expect(over?.pause.refusals).toBe(3);
      expect(over!.remainingMs).toBeLessThanOrEqual(0);
      expect(over!.remainingMs).toBeGreaterThan(-ORDER_PAUSE_MEMORY_MS);

      await peer.clearOrderPause();
      expect(await vault.readOrderPause()).toBeNull();
    });

    it('brings a router\'s copy up to date from what changed since the version it read', async () => {
      const { vault, peer } = open();
      await vault.putCertificate(CERT);
      await vault.putFailure({ name: 'failing.example', attempts: 1, at: 10, retryAt: 20, reason: 'timeout' });
      const first = await peer.readChangesSince(null);
      expect(first.whole).toBe(true);
      expect(first.version).toBe(await peer.version());
      let view: VaultContents = applied({ certificates: [], failures: [] }, first);
      expect(byName(view)).toEqual(byName(await peer.readAll()));

      await vault.putCertificate({ ...CERT, name: 'new.example' });
      await vault.putCertificate({ ...CERT, certPem: 'RENEWED', notAfter: 3_000 });
      await vault.putCertificate({ ...CERT, name: 'failing.example' });
      await vault.putFailure({ name: 'other.example', attempts: 1, at: 10, retryAt: 20, reason: 'dns' });
      await vault.forget('other.example');
      const next = await peer.readChangesSince(first.version);
      expect(next.version).toBe(await peer.version());
      view = applied(view, next);
      expect(byName(view)).toEqual(byName(await peer.readAll()));
      expect(view.certificates.find((c) => c.name === CERT.name)?.certPem).toBe('RENEWED');

      // Nothing since: nothing to change.
      const still = await peer.readChangesSince(next.version);
      expect(still.version).toBe(next.version);
      expect(byName(applied(view, still))).toEqual(byName(view));
    });
  });
}

vaultContract('MemoryCertificateVault', () => {
  const vault = new MemoryCertificateVault();
  return { vault, peer: vault };
});

describe.skipIf(REDIS_MISSING)('RedisCertificateVault', () => {
  // Every key goes under the keyspace's prefix, which it deletes after the suite.
  const { url, prefix: base, raw } = redisKeyspace('certificate-vault');
  const connections: Redis[] = [];
  afterAll(() => connections.forEach((c) => c.disconnect()));
  const openVault = (prefix: string, rejected: string[] = []) => {
    const cmd = new Redis(url);
    connections.push(cmd);
    return new RedisCertificateVault(cmd, prefix, (where, reason) => rejected.push(`${where}: ${reason}`));
  };
  let n = 0;

  vaultContract('RedisCertificateVault', () => {
    const prefix = `${base}${n++}:`;
    return { vault: openVault(prefix), peer: openVault(prefix) };
  });

  it('reads only the names that changed, and everything when it cannot say what changed', async () => {
    const prefix = `${base}${n++}:`;
    const cmd = new Redis(url);
    connections.push(cmd);
    const vault = new RedisCertificateVault(cmd, prefix, () => undefined, 3);
    const peer = openVault(prefix);
    await vault.putCertificate(CERT);
    const start = await peer.readChangesSince(null);
    await vault.putCertificate({ ...CERT, name: 'b.example' });
    await vault.forget(CERT.name);
    const changes = await peer.readChangesSince(start.version);
    expect(changes).toMatchObject({ whole: false, names: expect.arrayContaining(['b.example', CERT.name]), certificates: [{ name: 'b.example' }], failures: [] });
    expect(changes.names).toHaveLength(2);

    // Past three names the oldest changes are trimmed: a router that read before them reads everything.
    await vault.putCertificate({ ...CERT, name: 'c.example' });
    await vault.putCertificate({ ...CERT, name: 'd.example' });
    expect((await peer.readChangesSince(changes.version)).whole).toBe(false);
    expect(await peer.readChangesSince(start.version)).toMatchObject({ whole: true, certificates: expect.arrayContaining([expect.objectContaining({ name: 'd.example' })]) });

    // A write that bypassed the change list (a router from before it, in a rolling upgrade) is noticed.
    const before = await peer.version();
    await raw.multi().hset(`${prefix}acme:certs`, 'e.example', JSON.stringify({ ...CERT, name: 'e.example' })).incr(`${prefix}acme:version`).exec();
    await vault.putCertificate({ ...CERT, name: 'f.example' });
    const afterBypass = await peer.readChangesSince(before);
    expect(afterBypass.whole).toBe(true);
    expect(afterBypass.certificates.map((c) => c.name)).toContain('e.example');

    // Changes lost while the version moved on: nothing listed is not believed.
    const listed = await peer.readChangesSince(null);
    await vault.putFailure({ name: 'h.example', attempts: 1, at: 1, retryAt: 2, reason: 'x' });
    await raw.del(`${prefix}acme:changes`);
    expect(await peer.readChangesSince(listed.version)).toMatchObject({ whole: true, failures: [{ name: 'h.example' }] });
    expect((await peer.readChangesSince(await peer.version())).whole).toBe(false);
  });

  it('reads many certificates a page at a time, whole or changed: no command asks Redis for more than READ_PAGE records', async () => {
    // 100,000 certificates in one HGETALL (300–500 MB) could not arrive within the 2 s command timeout.
    const prefix = `${base}${n++}:`;
    const vault = openVault(prefix);
    const peer = openVault(prefix);
    await vault.putCertificate({ ...CERT, name: 'first.example' });
    const start = await peer.readChangesSince(null);
    const names = Array.from({ length: 2 * READ_PAGE + 7 }, (_, i) => `n${i}.example`);
    for (const name of names) await vault.putCertificate({ ...CERT, name });
    await vault.putFailure({ name: 'failed.example', attempts: 1, at: 1, retryAt: 2, reason: 'x' });
    const monitor = await raw.monitor();
    const reads: string[][] = [];
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args[1]?.startsWith(`${prefix}acme:`) && /^(hgetall|hscan|hmget)$/i.test(args[0] ?? '')) reads.push(args);
    });
    try {
      const changed = await peer.readChangesSince(start.version);
      expect(changed.whole).toBe(false);
      expect(changed.certificates.map((c) => c.name).sort()).toEqual([...names].sort());
      const whole = await peer.readChangesSince(null);
      expect(whole.whole).toBe(true);
      expect(whole.certificates.map((c) => c.name).sort()).toEqual(['first.example', ...names].sort());
      expect(whole.failures.map((f) => f.name)).toEqual(['failed.example']);
      await until('the reads seen', () => reads.some((r) => /^hscan$/i.test(r[0]!) && r[1] === `${prefix}acme:failures`), 3_000);
    } finally {
      await monitor.disconnect();
    }
    expect(reads.filter((r) => /^hgetall$/i.test(r[0]!))).toEqual([]);
    for (const r of reads) {
      if (/^hmget$/i.test(r[0]!)) expect(r.length - 2).toBeLessThanOrEqual(READ_PAGE);
      else expect(r.slice(3)).toEqual(['COUNT', String(READ_PAGE)]);
    }
    expect(reads.filter((r) => /^hmget$/i.test(r[0]!) && r[1] === `${prefix}acme:certs`)).toHaveLength(3);
  });

  it('reads everything when the keys were lost and begun again, even once the version is back at the number a router holds', async () => {
    // A Redis restarted empty, or a failover to a replica that was behind: the counters start over.
    const prefix = `${base}${n++}:`;
    const vault = openVault(prefix);
    const peer = openVault(prefix);
    for (const name of ['a.example', 'b.example', 'c.example']) await vault.putCertificate({ ...CERT, name });
    const held = await peer.readChangesSince(null);
    for (const key of ['epoch', 'version', 'recorded', 'changes', 'horizon', 'certs', 'failures']) await raw.del(`${prefix}acme:${key}`);
    for (const name of ['x.example', 'y.example', 'z.example']) await vault.putCertificate({ ...CERT, name });
    const now = await peer.version();
    expect(now.split('.').slice(1)).toEqual(held.version.split('.').slice(1)); // the same counts…
    expect(now).not.toBe(held.version); // …in another epoch
    const changes = await peer.readChangesSince(held.version);
    expect(changes.whole).toBe(true);
    expect(changes.certificates.map((c) => c.name).sort()).toEqual(['x.example', 'y.example', 'z.example']);
  });

  it('lets the pause\'s key expire by itself once it is no longer remembered, and skips a malformed pause', async () => {
    const prefix = `${base}${n++}:`;
    const rejected: string[] = [];
    const vault = openVault(prefix, rejected);
    await vault.pauseOrders(PAUSE, 60_000);
    const ttl = await raw.pttl(`${prefix}acme:pause`);
    expect(ttl).toBeGreaterThan(60_000);
    expect(ttl).toBeLessThanOrEqual(60_000 + ORDER_PAUSE_MEMORY_MS);
    await raw.set(`${prefix}acme:pause`, JSON.stringify({ ...PAUSE, refusals: 'many' }), 'PX', 60_000);
    expect(await vault.readOrderPause()).toBeNull();
    expect(rejected).toEqual([expect.stringMatching(new RegExp(`^${prefix}acme:pause: `))]);
  });

  it('skips and reports records it cannot serve: broken JSON, a wrong shape, a record filed under another name', async () => {
    const prefix = `${base}${n++}:`;
    const rejected: string[] = [];
    const vault = openVault(prefix, rejected);
    await vault.putCertificate(CERT);
    await raw.hset(`${prefix}acme:certs`, 'broken.example', '{not json', 'shape.example', JSON.stringify({ name: 'shape.example', certPem: 1 }), 'moved.example', JSON.stringify({ ...CERT }));
    await raw.hset(`${prefix}acme:failures`, 'f.example', JSON.stringify({ name: 'f.example', attempts: -1, at: 1, retryAt: 2, reason: '' }));
    expect(await vault.readAll()).toEqual({ certificates: [CERT], failures: [] });
    expect(rejected.sort()).toEqual([
      `${prefix}acme:certs[broken.example]: not valid JSON`,
      `${prefix}acme:certs[moved.example]: its name is not its field`,
      expect.stringMatching(new RegExp(`^${prefix}acme:certs\\[shape\\.example\\]: `)),
      expect.stringMatching(new RegExp(`^${prefix}acme:failures\\[f\\.example\\]: `)),
    ]);
  });
});
