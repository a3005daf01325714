/**
 * Recent request latencies and outcomes for a heartbeat: fixed-size ring, percentiles on demand.
 * A request refused without being served (the region was full) counts as an outcome but has no
 * latency: the routers read the median as how long a request holds a container, and instant
 * refusals dragged a full region's median towards 0 just when its queue was longest.
 */
export class LatencyWindow {
  /** NaN: an outcome without a latency (a refusal). */
  private readonly samples: Float64Array;
  private readonly failed: Uint8Array;
  private count = 0;
  private next = 0;

  constructor(size = 1_024) {
    this.samples = new Float64Array(size);
    this.failed = new Uint8Array(size);
  }

  /** `ms` null: the request was refused before it was served (counted as an outcome only). */
  record(ms: number | null, failed: boolean): void {
    this.samples[this.next] = ms ?? NaN;
    this.failed[this.next] = failed ? 1 : 0;
    this.next = (this.next + 1) % this.samples.length;
    this.count = Math.min(this.count + 1, this.samples.length);
  }

  summary(): { p50: number; p99: number; errorRate: number } {
    if (this.count === 0) return { p50: 0, p99: 0, errorRate: 0 };
    const sorted = Array.from(this.samples.subarray(0, this.count))
      .filter((ms) => !Number.isNaN(ms))
      .sort((a, b) => a - b);
    let failures = 0;
    for (let i = 0; i < this.count; i++) failures += this.failed[i]!;
    const at = (q: number) => (sorted.length === 0 ? 0 : Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! * 10) / 10);
    return { p50: at(0.5), p99: at(0.99), errorRate: failures / this.count };
  }
}
