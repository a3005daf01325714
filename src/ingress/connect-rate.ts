/**
 * New connections per peer address per second, as a token bucket. A TLS handshake costs the
 * router a signature and a key exchange (about 1–2 ms of its one thread), the client almost
 * nothing when it never sends a request: one address connecting in a loop can take a core. The
 * open-connection limit does not see it (each connection closes at once), so the rate is bounded
 * separately and checked at accept, before any handshake work.
 *
 * Each address starts with `burst` tokens and earns `perSecond` a second up to `burst`; a new
 * connection spends one. An address whose bucket is full again is forgotten (nothing to remember),
 * swept at most every few seconds; past `maxAddresses` the oldest entry goes, so many addresses
 * cost bounded memory (each then starts afresh, as any new address does).
 */
interface Bucket {
  tokens: number;
  atMs: number;
}

const SWEEP_INTERVAL_MS = 5_000;

export class ConnectRate {
  private readonly buckets = new Map<string, Bucket>();
  private lastSweepMs = 0;
  readonly burst: number;

  /** `perSecond` 0 = no limit (nothing is remembered). */
  constructor(
    readonly perSecond: number,
    burst?: number,
    private readonly maxAddresses = 100_000,
  ) {
    this.burst = burst ?? perSecond * 2;
  }

  /** Spends one of `address`'s tokens; false when it has none (the connection is to be refused). */
  tryTake(address: string, nowMs: number): boolean {
    if (this.perSecond <= 0) return true;
    // Also when the clock stepped back: else no sweep would come until it caught up again.
    if (nowMs - this.lastSweepMs >= SWEEP_INTERVAL_MS || nowMs < this.lastSweepMs) this.sweep(nowMs);
    const bucket = this.buckets.get(address);
    if (bucket === undefined) {
      if (this.buckets.size >= this.maxAddresses) this.buckets.delete(this.buckets.keys().next().value!);
      this.buckets.set(address, { tokens: this.burst - 1, atMs: nowMs });
      return true;
    }
    bucket.tokens = this.tokensAt(bucket, nowMs);
    bucket.atMs = nowMs;
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Addresses remembered (those that spent tokens they have not yet earned back). */
  get size(): number {
    return this.buckets.size;
  }

  private tokensAt(bucket: Bucket, nowMs: number): number {
    return Math.min(this.burst, bucket.tokens + (Math.max(0, nowMs - bucket.atMs) * this.perSecond) / 1_000);
  }

  private sweep(nowMs: number): void {
    this.lastSweepMs = nowMs;
    for (const [address, bucket] of this.buckets) {
      // Stamped after a clock that has since stepped back: count its refill from now, not from then.
      if (bucket.atMs > nowMs) bucket.atMs = nowMs;
      if (this.tokensAt(bucket, nowMs) >= this.burst) this.buckets.delete(address);
    }
  }
}
