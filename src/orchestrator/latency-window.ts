/** Recent request latencies and outcomes for a heartbeat: fixed-size ring, percentiles on demand. */
export class LatencyWindow {
  private readonly samples: Float64Array;
  private readonly failed: Uint8Array;
  private count = 0;
  private next = 0;

  constructor(size = 1_024) {
    this.samples = new Float64Array(size);
    this.failed = new Uint8Array(size);
  }

  record(ms: number, failed: boolean): void {
    this.samples[this.next] = ms;
    this.failed[this.next] = failed ? 1 : 0;
    this.next = (this.next + 1) % this.samples.length;
    this.count = Math.min(this.count + 1, this.samples.length);
  }

  summary(): { p50: number; p99: number; errorRate: number } {
    if (this.count === 0) return { p50: 0, p99: 0, errorRate: 0 };
    const sorted = Array.from(this.samples.subarray(0, this.count)).sort((a, b) => a - b);
    let failures = 0;
    for (let i = 0; i < this.count; i++) failures += this.failed[i]!;
    const at = (q: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! * 10) / 10;
    return { p50: at(0.5), p99: at(0.99), errorRate: failures / this.count };
  }
}
