/**
 * Retry budget: retries may add at most `ratio` of the request rate over a sliding window
 * (with a small floor so a quiet router can still fail over), so a dying region cannot turn
 * into a retry storm against the others. Counting is in 1-second buckets; O(1) per request.
 */
export interface RetryBudgetOptions {
  /** Retries allowed as a fraction of requests in the window (default 0.2). */
  readonly ratio?: number;
  /** Retries always allowed per window, whatever the traffic (default 10). */
  readonly minRetries?: number;
  /** Window length in seconds (default 10). */
  readonly windowSeconds?: number;
  readonly now?: () => number;
}

export class RetryBudget {
  private readonly ratio: number;
  private readonly minRetries: number;
  private readonly requests: Uint32Array;
  private readonly retries: Uint32Array;
  private readonly now: () => number;
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
  tryAcquire(countRefusal = true): boolean {
    this.advance();
    if (this.retryTotal >= Math.max(this.minRetries, this.requestTotal * this.ratio)) {
      if (countRefusal) this.exhausted++;
      return false;
    }
    this.retries[this.bucketSecond % this.retries.length]!++;
    this.retryTotal++;
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
    this.bucketSecond = second;
  }
}
