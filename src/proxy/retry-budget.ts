/**
 * Retry budget: retries may add at most `ratio` of the request rate over a sliding window
 * (with a small floor so a quiet router can still fail over), so a dying region cannot turn
 * into a retry storm against the others. One organisation's retries may take at most
 * `tenantShare` of it: a function that answers 503 to every request (its container's answer
 * moves an idempotent request on) otherwise spent the whole budget on its own retries, and every
 * other tenant's failover from a region really failing was refused. The floor is not shared (a
 * quiet router's one organisation fails over as before; one tenant can still take a quiet
 * router's floor, 10 retries in 10 s). Counting is in 1-second
 * buckets; O(1) per request (the per-organisation counts hold only those that retried lately).
 */
export interface RetryBudgetOptions {
  /** Retries allowed as a fraction of requests in the window (default 0.2). */
  readonly ratio?: number;
  /** Retries always allowed per window, whatever the traffic (default 10). */
  readonly minRetries?: number;
  /** Window length in seconds (default 10). */
  readonly windowSeconds?: number;
  /** The most of the budget one organisation's retries may take (default 0.5; 1: no limit), as `--tenant-share` bounds its connections. */
  readonly tenantShare?: number;
  readonly now?: () => number;
}

export class RetryBudget {
  private readonly ratio: number;
  private readonly minRetries: number;
  private readonly requests: Uint32Array;
  private readonly retries: Uint32Array;
  private readonly now: () => number;
  private readonly tenantShare: number;
  /** Retries in the window by organisation, per bucket, for those that retried within it. */
  private readonly byTenant = new Map<string, { total: number; readonly buckets: Uint32Array }>();
  private bucketSecond = 0;
  private requestTotal = 0;
  private retryTotal = 0;
  /** Times a retry was refused (for metrics). */
  exhausted = 0;

  constructor(options: RetryBudgetOptions = {}) {
    this.ratio = options.ratio ?? 0.2;
    this.minRetries = options.minRetries ?? 10;
    const window = options.windowSeconds ?? 10;
    this.requests = new Uint32Array(window);
    this.retries = new Uint32Array(window);
    this.now = options.now ?? Date.now;
    this.tenantShare = options.tenantShare ?? 0.5;
  }

  /** Counts one client request. */
  recordRequest(): void {
    this.advance();
    this.requests[this.bucketSecond % this.requests.length]!++;
    this.requestTotal++;
  }

  /**
   * Takes one retry from the budget if there is one left; false means "do not retry". A refusal is
   * counted in `exhausted` unless `countRefusal` is false: a request that asks again after being
   * refused (one waiting on a region that became unusable asks at every sweep) is one refusal.
   */
  tryAcquire(countRefusal = true, tenant?: string): boolean {
    this.advance();
    const allowed = Math.max(this.minRetries, this.requestTotal * this.ratio);
    const own = tenant === undefined || this.tenantShare >= 1 ? undefined : this.byTenant.get(tenant);
    // The floor is each tenant's whole: a quiet router serving one organisation keeps its failovers.
    if (this.retryTotal >= allowed || (own !== undefined && own.total >= Math.max(this.minRetries, allowed * this.tenantShare))) {
      if (countRefusal) this.exhausted++;
      return false;
    }
    const at = this.bucketSecond % this.retries.length;
    this.retries[at]!++;
    this.retryTotal++;
    if (tenant !== undefined && this.tenantShare < 1) {
      const counts = own ?? { total: 0, buckets: new Uint32Array(this.retries.length) };
      if (own === undefined) this.byTenant.set(tenant, counts);
      counts.buckets[at]!++;
      counts.total++;
    }
    return true;
  }

  private advance(): void {
    const second = Math.floor(this.now() / 1000);
    if (second === this.bucketSecond) return;
    const size = this.requests.length;
    // Clear every bucket that has fallen out of the window since the last call (all of them after a long pause).
    const steps = Math.min(size, second - this.bucketSecond);
    for (let s = 1; s <= steps; s++) {
      const i = (this.bucketSecond + s) % size;
      this.requestTotal -= this.requests[i]!;
      this.retryTotal -= this.retries[i]!;
      this.requests[i] = 0;
      this.retries[i] = 0;
    }
    for (const [tenant, counts] of this.byTenant) {
      for (let s = 1; s <= steps; s++) {
        const i = (this.bucketSecond + s) % size;
        counts.total -= counts.buckets[i]!;
        counts.buckets[i] = 0;
      }
      if (counts.total === 0) this.byTenant.delete(tenant);
    }
    this.bucketSecond = second;
  }
}
