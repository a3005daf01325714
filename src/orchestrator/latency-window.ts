/**
 * Recent request latencies and outcomes for a heartbeat: fixed-size ring, percentiles on demand.
 * Two times per request: from its arrival to its answer's end (the queue wait included: p50, p99),
 * and its service time, from the moment it was given a container (or a slot one starts in for it)
 * to its answer's end, which the routers multiply a queue by (deadline admission): a median that
 * counted the queue made long queues look longer than they were. A request refused without being
 * served (the region was full) counts as an outcome but has neither: instant refusals dragged a
 * full region's median towards 0 just when its queue was longest.
 */
export class LatencyWindow {
  /** NaN: an outcome without a latency (a refusal). */
  private readonly samples: Float64Array;
  /** The same requests' service times (NaN where `samples` is). */
  private readonly serviceSamples: Float64Array;
  private readonly failed: Uint8Array;
  private count = 0;
  private next = 0;

  constructor(size = 1_024) {
    this.samples = new Float64Array(size);
    this.serviceSamples = new Float64Array(size);
    this.failed = new Uint8Array(size);
  }

  /**
   * `ms` null: the request was refused before it was served (counted as an outcome only).
   * `serviceMs`: of `ms`, the time it held a container; by default all of it (it did not queue).
   */
  record(ms: number | null, failed: boolean, serviceMs: number | null = ms): void {
    this.samples[this.next] = ms ?? NaN;
    this.serviceSamples[this.next] = ms === null ? NaN : (serviceMs ?? NaN);
    this.failed[this.next] = failed ? 1 : 0;
    this.next = (this.next + 1) % this.samples.length;
    this.count = Math.min(this.count + 1, this.samples.length);
  }

  summary(): { p50: number; p99: number; errorRate: number } {
    if (this.count === 0) return { p50: 0, p99: 0, errorRate: 0 };
    const sorted = this.sorted(this.samples);
    let failures = 0;
    for (let i = 0; i < this.count; i++) failures += this.failed[i]!;
    return { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), errorRate: failures / this.count };
  }

  /** The median service time of the served requests (0 before any). */
  serviceP50(): number {
    return quantile(this.sorted(this.serviceSamples), 0.5);
  }

  private sorted(samples: Float64Array): number[] {
    return Array.from(samples.subarray(0, this.count))
      .filter((ms) => !Number.isNaN(ms))
      .sort((a, b) => a - b);
  }
}

/** Nearest rank, to 0.1 ms; 0 without samples. */
function quantile(sorted: readonly number[], q: number): number {
  return sorted.length === 0 ? 0 : Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! * 10) / 10;
}
