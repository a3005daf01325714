/**
 * The CertificateVault in the registry's Redis, beside the health registry's keys:
 *   <prefix>acme:account          string  the ACME account key (PEM), set once by whichever router asks first
 *   <prefix>acme:challenge:<tok>  string  an HTTP-01 key authorisation, expiring with the order
 *   <prefix>acme:lease:<name>     string  the router ordering <name> now, expiring if it dies
 *   <prefix>acme:certs            hash    name → JSON IssuedCertificate (key included: Redis must be private, as for ticket keys)
 *   <prefix>acme:failures         hash    name → JSON IssueFailure
 *   <prefix>acme:version          string  incremented with every write to the two hashes
 * Records are checked when read: a malformed one is reported and skipped, never served.
 */
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { CertificateVault, IssuedCertificate, IssueFailure, VaultContents } from '../core/certificate-vault.js';
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
  attempts: z.number().int().min(1),
  at: z.number().int(),
  retryAt: z.number().int(),
  reason: z.string().max(2_000),
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

export class RedisCertificateVault implements CertificateVault {
  constructor(
    private readonly cmd: Redis,
    private readonly prefix: string,
    private readonly onRejected: (where: string, reason: string) => void = () => undefined,
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
    const record = JSON.stringify(certificateSchema.parse(certificate));
    await execMulti(this.cmd.multi().hset(this.key('certs'), certificate.name, record).hdel(this.key('failures'), certificate.name).incr(this.key('version')));
  }

  async putFailure(failure: IssueFailure): Promise<void> {
    const record = JSON.stringify(failureSchema.parse(failure));
    await execMulti(this.cmd.multi().hset(this.key('failures'), failure.name, record).incr(this.key('version')));
  }

  async forget(name: string): Promise<void> {
    await execMulti(this.cmd.multi().hdel(this.key('certs'), name).hdel(this.key('failures'), name).incr(this.key('version')));
  }

  async version(): Promise<string> {
    return (await this.cmd.get(this.key('version'))) ?? '0';
  }

  async readAll(): Promise<VaultContents> {
    const [certs, failures] = await execMulti(this.cmd.multi().hgetall(this.key('certs')).hgetall(this.key('failures')));
    return {
      certificates: this.decodeAll(certs as Record<string, string>, 'certs', certificateSchema),
      failures: this.decodeAll(failures as Record<string, string>, 'failures', failureSchema),
    };
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
