/**
 * The CertificateVault in the registry's Redis, beside the health registry's keys:
 *   <prefix>acme:account          string  the ACME account key (PEM), set once by whichever router asks first
 *   <prefix>acme:challenge:<tok>  string  an HTTP-01 key authorisation, expiring with the order
 *   <prefix>acme:lease:<name>     string  the router ordering <name> now, expiring if it dies
 *   <prefix>acme:certs            hash    name → JSON IssuedCertificate (key included: Redis must be private, as for ticket keys)
 *   <prefix>acme:failures         hash    name → JSON IssueFailure
 *   <prefix>acme:pause            string  JSON OrderPause: every router's orders paused after a CA's rate limit;
 *                                         expires ORDER_PAUSE_MEMORY_MS after the pause ends, so its TTL,
 *                                         Redis's clock, says how long the pause still lasts
 *   <prefix>acme:version          string  incremented with every write to the two hashes
 *   <prefix>acme:recorded         string  incremented with every write that also updated `changes`
 *   <prefix>acme:epoch            string  random, set by the first write: new whenever the keys were lost
 *   <prefix>acme:changes          zset    name → the version of its last write (forgotten names too),
 *                                         the newest CHANGES_KEPT: what lets a router read only what changed
 *   <prefix>acme:horizon          string  the highest version trimmed from `changes`: a router that read
 *                                         an older version cannot be told what changed, and reads everything
 * Every write is one script, so the version, the record and its change entry move together. The
 * version a router holds is "<epoch>.<version>.<recorded>". Only reading everything is safe when
 * the epoch changed (Redis lost the keys, or failed over to a replica that was behind: the version
 * may come back to the same number with other certificates behind it), when the two counters moved
 * apart (a write bypassed `changes`: a router from before it existed, in a rolling upgrade), or
 * when `changes` lists nothing newer although the version moved (its entries were lost). One loss
 * goes unseen: `changes` evicted alone and written again since; the registry's Redis must not
 * evict keys (`maxmemory-policy noeviction`, as for every registry key; every router checks the
 * policy when it connects and logs `registry_evicts` otherwise).
 * Records are checked when read: a malformed one is reported and skipped, never served.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import {
  MAX_ORDER_PAUSE_MS,
  ORDER_PAUSE_MEMORY_MS,
  type CertificateVault,
  type IssuedCertificate,
  type IssueFailure,
  type OrderPause,
  type SharedOrderPause,
  type VaultChanges,
  type VaultContents,
} from '../core/certificate-vault.js';
import { decodeRecord } from './records.js';
import { execMulti } from './redis-multi.js';

const certificateSchema = z.strictObject({
  name: z.string().min(1).max(253),
  certPem: z.string().min(1).max(64 * 1024),
  keyPem: z.string().min(1).max(16 * 1024),
  notBefore: z.number().int(),
  notAfter: z.number().int(),
});

const failureSchema = z.strictObject({
  name: z.string().min(1).max(253),
  // 0: only refused for a rate limit. A router from before this reads such a record as malformed
  // (reported, skipped): during a rolling upgrade it may order that name before the CA's retry time.
  attempts: z.number().int().min(0),
  at: z.number().int(),
  retryAt: z.number().int(),
  reason: z.string().max(2_000),
});

const pauseSchema = z.strictObject({
  name: z.string().min(1).max(253),
  reason: z.string().max(2_000),
  at: z.number().int(),
  until: z.number().int(),
  refusals: z.number().int().min(1),
});

/** Take the lease when it is free or already the caller's (renewing its expiry). */
const TAKE_LEASE = `
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`;

const RELEASE_LEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`;

/** Names whose last change is remembered. Past it the oldest go, and a router that far behind reads everything. */
export const CHANGES_KEPT = 100_000;

/** More changed names than this are read whole: one HMGET of them all would be a huge command (and argument list). */
const MOST_NAMES_READ = 10_000;

/**
 * Records asked of Redis in one command (HSCAN's COUNT, the names of one HMGET): about 2 MB of
 * certificates. Read in one HGETALL, 100,000 of them (300–500 MB) could not arrive within the
 * connection's 2 s command timeout: a router started then never read the vault, so served no
 * issued certificate and ordered none, trying again every check, every router alike.
 */
export const READ_PAGE = 500;

/**
 * KEYS: version, changes, horizon, certs, failures, recorded, epoch. ARGV: what ('cert' | 'failure'
 * | 'forget'), name, record (JSON, unused by forget), changes kept, an epoch to use if there is none.
 */
const WRITE = `
redis.call('SET', KEYS[7], ARGV[5], 'NX')
local version = redis.call('INCR', KEYS[1])
redis.call('INCR', KEYS[6])
if ARGV[1] == 'cert' then
  redis.call('HSET', KEYS[4], ARGV[2], ARGV[3])
  redis.call('HDEL', KEYS[5], ARGV[2])
elseif ARGV[1] == 'failure' then
  redis.call('HSET', KEYS[5], ARGV[2], ARGV[3])
else
  redis.call('HDEL', KEYS[4], ARGV[2])
  redis.call('HDEL', KEYS[5], ARGV[2])
end
redis.call('ZADD', KEYS[2], version, ARGV[2])
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if excess > 0 then
  local last = redis.call('ZRANGE', KEYS[2], excess - 1, excess - 1, 'WITHSCORES')
  redis.call('SET', KEYS[3], last[2])
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1)
end
return version
`;

export class RedisCertificateVault implements CertificateVault {
  constructor(
    private readonly cmd: Redis,
    private readonly prefix: string,
    private readonly onRejected: (where: string, reason: string) => void = () => undefined,
    /** For tests: how many names' changes are kept (CHANGES_KEPT). */
    private readonly changesKept = CHANGES_KEPT,
  ) {}

  async shareAccountKey(fresh: string): Promise<string> {
    const [, stored] = await execMulti(this.cmd.multi().set(this.key('account'), fresh, 'NX').get(this.key('account')));
    return String(stored);
  }

  async putChallenge(token: string, keyAuthorization: string, ttlMs: number): Promise<void> {
    await this.cmd.set(this.key(`challenge:${token}`), keyAuthorization, 'PX', Math.max(1, Math.round(ttlMs)));
  }

  async readChallenge(token: string): Promise<string | null> {
    return this.cmd.get(this.key(`challenge:${token}`));
  }

  async deleteChallenge(token: string): Promise<void> {
    await this.cmd.del(this.key(`challenge:${token}`));
  }

  async takeLease(name: string, holder: string, ttlMs: number): Promise<boolean> {
    return (await this.cmd.eval(TAKE_LEASE, 1, this.key(`lease:${name}`), holder, String(Math.max(1, Math.round(ttlMs))))) === 1;
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    await this.cmd.eval(RELEASE_LEASE, 1, this.key(`lease:${name}`), holder);
  }

  async putCertificate(certificate: IssuedCertificate): Promise<void> {
    await this.write('cert', certificate.name, JSON.stringify(certificateSchema.parse(certificate)));
  }

  async putFailure(failure: IssueFailure): Promise<void> {
    await this.write('failure', failure.name, JSON.stringify(failureSchema.parse(failure)));
  }

  async forget(name: string): Promise<void> {
    await this.write('forget', name, '');
  }

  async pauseOrders(pause: OrderPause, ms: number): Promise<void> {
    const lasts = Math.round(Math.min(Math.max(0, ms), MAX_ORDER_PAUSE_MS));
    await this.cmd.set(this.key('pause'), JSON.stringify(pauseSchema.parse(pause)), 'PX', lasts + ORDER_PAUSE_MEMORY_MS);
  }

  async readOrderPause(): Promise<SharedOrderPause | null> {
    const [raw, ttl] = (await execMulti(this.cmd.multi().get(this.key('pause')).pttl(this.key('pause')))) as [string | null, number];
    if (raw === null) return null;
    const decoded = decodeRecord(pauseSchema, raw);
    if (!decoded.ok) {
      this.onRejected(this.key('pause'), decoded.reason);
      return null;
    }
    // No expiry at all (-1: written by hand) reads as a pause already over.
    return { pause: decoded.value, remainingMs: Math.min(ttl, MAX_ORDER_PAUSE_MS + ORDER_PAUSE_MEMORY_MS) - ORDER_PAUSE_MEMORY_MS };
  }

  async clearOrderPause(): Promise<void> {
    await this.cmd.del(this.key('pause'));
  }

  async version(): Promise<string> {
    const [epoch, version, recorded] = await this.cmd.mget(this.key('epoch'), this.key('version'), this.key('recorded'));
    return versionToken(epoch ?? null, version ?? null, recorded ?? null);
  }

  async readAll(): Promise<VaultContents> {
    const { certificates, failures } = await this.readWhole();
    return { certificates, failures };
  }

  async readChangesSince(since: string | null): Promise<VaultChanges> {
    const seen = /^([^.]+)\.(\d+)\.(\d+)$/.exec(since ?? '');
    if (seen === null) return this.readWhole();
    const [seenEpoch, seenVersion, seenRecorded] = [seen[1], Number(seen[2]), Number(seen[3])];
    const [epoch, version, recorded, horizon, names] = (await execMulti(
      this.cmd
        .multi()
        .get(this.key('epoch'))
        .get(this.key('version'))
        .get(this.key('recorded'))
        .get(this.key('horizon'))
        .zrangebyscore(this.key('changes'), `(${seenVersion}`, '+inf'),
    )) as [string | null, string | null, string | null, string | null, string[]];
    const [now, nowRecorded] = [Number(version ?? 0), Number(recorded ?? 0)];
    const wholeNeeded =
      epoch !== seenEpoch ||
      now < seenVersion ||
      Number(horizon ?? 0) > seenVersion ||
      now - seenVersion !== nowRecorded - seenRecorded ||
      (now > seenVersion && names.length === 0) ||
      names.length > MOST_NAMES_READ;
    if (wholeNeeded) return this.readWhole();
    const token = versionToken(epoch, version, recorded);
    if (names.length === 0) return { version: token, whole: false, names, certificates: [], failures: [] };
    const certs: Record<string, string> = {};
    const failures: Record<string, string> = {};
    // A record written after the names were listed is newer than `version`: harmless, as its
    // name is listed again by the next read. So the pages need not be of one moment either.
    for (let from = 0; from < names.length; from += READ_PAGE) {
      const page = names.slice(from, from + READ_PAGE);
      const [pageCerts, pageFailures] = (await execMulti(this.cmd.multi().hmget(this.key('certs'), ...page).hmget(this.key('failures'), ...page))) as [Array<string | null>, Array<string | null>];
      page.forEach((name, i) => {
        const [cert, failure] = [pageCerts[i], pageFailures[i]];
        if (typeof cert === 'string') certs[name] = cert;
        if (typeof failure === 'string') failures[name] = failure;
      });
    }
    return {
      version: token,
      whole: false,
      names,
      certificates: this.decodeAll(certs, 'certs', certificateSchema),
      failures: this.decodeAll(failures, 'failures', failureSchema),
    };
  }

  /**
   * Every record, a page at a time (READ_PAGE), after the version: a record written or forgotten
   * during the read is newer than the version read, and its name is listed to the next read,
   * which brings it up to date (HSCAN returns every field present throughout, a field may come twice).
   */
  private async readWhole(): Promise<VaultChanges> {
    const [epoch, version, recorded] = (await execMulti(this.cmd.multi().get(this.key('epoch')).get(this.key('version')).get(this.key('recorded')))) as Array<string | null>;
    const [certs, failures] = await Promise.all([this.scanHash('certs'), this.scanHash('failures')]);
    return {
      version: versionToken(epoch ?? null, version ?? null, recorded ?? null),
      whole: true,
      names: [],
      certificates: this.decodeAll(certs, 'certs', certificateSchema),
      failures: this.decodeAll(failures, 'failures', failureSchema),
    };
  }

  private async scanHash(name: string): Promise<Record<string, string>> {
    const hash: Record<string, string> = {};
    let cursor = '0';
    do {
      const [next, flat] = await this.cmd.hscan(this.key(name), cursor, 'COUNT', READ_PAGE);
      for (let i = 0; i + 1 < flat.length; i += 2) hash[flat[i]!] = flat[i + 1]!;
      cursor = next;
    } while (cursor !== '0');
    return hash;
  }

  private async write(what: 'cert' | 'failure' | 'forget', name: string, record: string): Promise<void> {
    const keys = ['version', 'changes', 'horizon', 'certs', 'failures', 'recorded', 'epoch'].map((k) => this.key(k));
    await this.cmd.eval(WRITE, keys.length, ...keys, what, name, record, String(this.changesKept), randomBytes(9).toString('base64url'));
  }

  /** The connection is the registry's: it closes with the registry. */
  async close(): Promise<void> {}

  /** Each field's record, checked as every registry record is (records.ts); a bad one is reported and skipped. */
  private decodeAll<T extends { name: string }>(hash: Record<string, string>, where: string, schema: z.ZodType<T>): T[] {
    const out: T[] = [];
    for (const [field, raw] of Object.entries(hash)) {
      const decoded = decodeRecord(schema, raw);
      const at = `${this.key(where)}[${field}]`;
      if (!decoded.ok) this.onRejected(at, decoded.reason);
      else if (decoded.value.name !== field) this.onRejected(at, 'its name is not its field');
      else out.push(decoded.value);
    }
    return out;
  }

  private key(name: string): string {
    return `${this.prefix}acme:${name}`;
  }
}

/** An epoch never holds a dot (base64url), so the token splits unambiguously; "-" before any write. */
function versionToken(epoch: string | null, version: string | null, recorded: string | null): string {
  return `${epoch ?? '-'}.${version ?? '0'}.${recorded ?? '0'}`;
}
