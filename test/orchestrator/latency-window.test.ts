import { describe, expect, it } from 'vitest';
import { LatencyWindow } from '../../src/orchestrator/latency-window.js';

/** 1, 2, … n ms, failing where `failed(i)` says so. */
function windowOf(n: number, options: { size?: number; failed?: (ms: number) => boolean } = {}): LatencyWindow {
  const window = new LatencyWindow(options.size);
  for (let ms = 1; ms <= n; ms++) window.record(ms, options.failed?.(ms) ?? false);
  return window;
}

describe('LatencyWindow', () => {
  it('reports zeros before any request', () => {
    expect(new LatencyWindow().summary()).toEqual({ p50: 0, p99: 0, errorRate: 0 });
  });

  it.each([
    { samples: [42], p50: 42, p99: 42 },
    { samples: [30, 10, 20], p50: 20, p99: 30 },
    { samples: [1, 2, 3, 4], p50: 3, p99: 4 },
    { samples: [5, 5, 5, 5, 500], p50: 5, p99: 500 },
    { samples: [1.24, 1.26], p50: 1.3, p99: 1.3 },
    { samples: [0.04, 0.06, 10], p50: 0.1, p99: 10 },
  ])('percentiles of $samples: p50 $p50, p99 $p99 (nearest rank, 0.1 ms)', ({ samples, p50, p99 }) => {
    const window = new LatencyWindow();
    for (const ms of samples) window.record(ms, false);
    expect(window.summary()).toEqual({ p50, p99, errorRate: 0 });
  });

  it('takes p50 and p99 of 1..100 ms as 51 and 100 ms', () => {
    expect(windowOf(100).summary()).toEqual({ p50: 51, p99: 100, errorRate: 0 });
  });

  it('puts p99 on the slow tail, not on the maximum, once there are enough samples', () => {
    const window = windowOf(1_000); // 1..1000 ms
    expect(window.summary().p99).toBe(991);
  });

  it.each([
    { n: 10, failed: () => false, errorRate: 0 },
    { n: 10, failed: (ms: number) => ms <= 3, errorRate: 0.3 },
    { n: 4, failed: () => true, errorRate: 1 },
  ])('error rate over $n requests is $errorRate', ({ n, failed, errorRate }) => {
    expect(windowOf(n, { failed }).summary().errorRate).toBeCloseTo(errorRate, 10);
  });

  it('counts a refusal (no latency) in the error rate only, not in the percentiles', () => {
    const window = new LatencyWindow();
    window.record(400, false);
    window.record(500, false);
    for (let i = 0; i < 8; i++) window.record(null, true);
    expect(window.summary()).toEqual({ p50: 500, p99: 500, errorRate: 0.8 });
    const onlyRefusals = new LatencyWindow();
    onlyRefusals.record(null, true);
    expect(onlyRefusals.summary()).toEqual({ p50: 0, p99: 0, errorRate: 1 });
  });

  it('keeps the median service time apart: a request that waited in the queue counts its service, not its total', () => {
    const window = new LatencyWindow();
    expect(window.serviceP50()).toBe(0);
    window.record(900, false, 100); // queued 800 ms, served in 100
    window.record(950, false, 120);
    window.record(130, false); // not queued: its service is its total
    window.record(null, true); // refused: neither
    expect(window.summary()).toEqual({ p50: 900, p99: 950, errorRate: 0.25 });
    expect(window.serviceP50()).toBe(120);
    for (let i = 0; i < 4; i++) window.record(null, true);
    expect(window.serviceP50()).toBe(120);
  });

  it('forgets the oldest samples once the ring wraps around', () => {
    const window = new LatencyWindow(4);
    for (let i = 0; i < 4; i++) window.record(10_000, true);
    expect(window.summary()).toEqual({ p50: 10_000, p99: 10_000, errorRate: 1 });

    window.record(1, false);
    window.record(2, false);
    expect(window.summary()).toEqual({ p50: 10_000, p99: 10_000, errorRate: 0.5 });

    window.record(3, false);
    window.record(4, false);
    expect(window.summary()).toEqual({ p50: 3, p99: 4, errorRate: 0 });

    window.record(100, true); // overwrites the 1
    expect(window.summary()).toEqual({ p50: 4, p99: 100, errorRate: 0.25 });
    expect(window.serviceP50()).toBe(4);
  });

  it('with a full ring, counts exactly `size` samples however many were recorded', () => {
    const window = windowOf(10_000, { size: 100, failed: (ms) => ms % 2 === 0 });
    // The last 100: 9901..10000.
    expect(window.summary()).toEqual({ p50: 9_951, p99: 10_000, errorRate: 0.5 });
  });
});
