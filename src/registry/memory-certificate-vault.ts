/**
 * The CertificateVault in this process's memory: for one router process without Redis (a single
 * host, development). Nothing survives a restart, and nothing is shared with other processes, so
 * the router refuses `--acme-directory` with `--workers > 1` unless the registry is Redis.
 */
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

export class MemoryCertificateVault implements CertificateVault {
  private accountKey: string | null = null;
  private readonly challenges = new Map<string, { value: string; until: number }>();
  private readonly leases = new Map<string, { holder: string; until: number }>();
  private readonly certificates = new Map<string, IssuedCertificate>();
  private readonly failures = new Map<string, IssueFailure>();
  private orderPause: { pause: OrderPause; ends: number } | null = null;
  private changes = 0;

  constructor(private readonly now: () => number = Date.now) {}

  async shareAccountKey(fresh: string): Promise<string> {
    this.accountKey ??= fresh;
    return this.accountKey;
  }

  async putChallenge(token: string, keyAuthorization: string, ttlMs: number): Promise<void> {
    this.sweep();
    this.challenges.set(token, { value: keyAuthorization, until: this.now() + ttlMs });
  }

  async readChallenge(token: string): Promise<string | null> {
    const entry = this.challenges.get(token);
    return entry !== undefined && entry.until > this.now() ? entry.value : null;
  }

  async deleteChallenge(token: string): Promise<void> {
    this.challenges.delete(token);
  }

  async takeLease(name: string, holder: string, ttlMs: number): Promise<boolean> {
    const lease = this.leases.get(name);
    if (lease !== undefined && lease.until > this.now() && lease.holder !== holder) return false;
    this.leases.set(name, { holder, until: this.now() + ttlMs });
    return true;
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    if (this.leases.get(name)?.holder === holder) this.leases.delete(name);
  }

  async putCertificate(certificate: IssuedCertificate): Promise<void> {
    this.certificates.set(certificate.name, certificate);
    this.failures.delete(certificate.name);
    this.changes++;
  }

  async putFailure(failure: IssueFailure): Promise<void> {
    this.failures.set(failure.name, failure);
    this.changes++;
  }

  async forget(name: string): Promise<void> {
    this.certificates.delete(name);
    this.failures.delete(name);
    this.changes++;
  }

  async pauseOrders(pause: OrderPause, ms: number): Promise<void> {
    this.orderPause = { pause, ends: this.now() + Math.min(Math.max(0, ms), MAX_ORDER_PAUSE_MS) };
  }

  async readOrderPause(): Promise<SharedOrderPause | null> {
    if (this.orderPause === null) return null;
    const remainingMs = this.orderPause.ends - this.now();
    if (remainingMs <= -ORDER_PAUSE_MEMORY_MS) this.orderPause = null;
    return this.orderPause === null ? null : { pause: this.orderPause.pause, remainingMs };
  }

  async clearOrderPause(): Promise<void> {
    this.orderPause = null;
  }

  async version(): Promise<string> {
    return String(this.changes);
  }

  async readAll(): Promise<VaultContents> {
    return { certificates: [...this.certificates.values()], failures: [...this.failures.values()] };
  }

  /** In one process a whole read hands over references, not copies: it is always whole. */
  async readChangesSince(): Promise<VaultChanges> {
    const contents = await this.readAll();
    return { ...contents, version: String(this.changes), whole: true, names: [] };
  }

  async close(): Promise<void> {}

  /** Expired answers go when a new one comes: the map stays as small as the orders in progress. */
  private sweep(): void {
    const now = this.now();
    for (const [token, entry] of this.challenges) if (entry.until <= now) this.challenges.delete(token);
  }
}
