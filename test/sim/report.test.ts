import { describe, expect, it } from 'vitest';
import type { Sample } from '../../src/sim/load-generator.js';
import { formatReport, percentile, summarize } from '../../src/sim/report.js';

const sample = (metro: string, latencyMs: number, extra: Partial<Sample> = {}): Sample => ({
  at: 0,
  metro,
  status: 200,
  latencyMs,
  region: 'fra',
  route: 'nearest',
  cold: false,
  error: null,
  ...extra,
});

describe('simulation report', () => {
  it('computes percentiles by nearest rank: the smallest value with at least q of the samples at or below it', () => {
    const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(sorted, 0.5)).toBe(50);
    expect(percentile(sorted, 0.99)).toBe(99); // not the single worst request
    expect(percentile(sorted, 1)).toBe(100);
    expect(percentile(sorted, 0)).toBe(1);
    expect(percentile([10, 20], 0.5)).toBe(10);
    expect(percentile([10, 20, 30], 0.5)).toBe(20);
    expect(percentile([7], 0.99)).toBe(7);
    expect(percentile([], 0.5)).toBe(0);
  });

  it('summarizes per metro: requests, errors, latency of answered requests, region shares', () => {
    const report = summarize([
      sample('london', 10),
      sample('london', 30, { region: 'nyc', route: 'failover:fra-down', cold: true }),
      sample('london', 0, { status: 0, region: null, route: null, error: 'ECONNRESET' }),
      sample('tokyo', 90, { region: 'syd' }),
    ]);
    expect(report).toMatchObject({ requests: 4, errors: 1, errorKinds: { ECONNRESET: 1 }, coldStarts: 1, routes: { nearest: 2, failover: 1 } });
    expect(report.metros.find((m) => m.metro === 'london')).toEqual({ metro: 'london', requests: 3, errors: 1, p50Ms: 10, p99Ms: 30, regions: { fra: 0.5, nyc: 0.5 } });
    const text = formatReport('steady', report, { note: 'x' });
    expect(text).toContain('scenario steady: 4 requests, 1 errors {"ECONNRESET":1}, 1 cold starts');
    expect(text).toMatch(/london\s+3\s+1\s+10\s+30\s+fra 50%, nyc 50%/);
  });
});
