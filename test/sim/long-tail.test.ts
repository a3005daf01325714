import { describe, expect, it } from 'vitest';
import { functionOf, runLongTail, zipfCdf } from '../../src/sim/long-tail.js';
import { REDIS_MISSING } from '../support/system-program.js';

describe('long-tail request sequence', () => {
  it('is seeded: the same metro and request number pick the same function, popular ones far more often', () => {
    const cdf = zipfCdf(100);
    const picks = Array.from({ length: 5_000 }, (_, n) => functionOf(cdf, 2, n));
    expect(Array.from({ length: 5_000 }, (_, n) => functionOf(cdf, 2, n))).toEqual(picks);
    const top = picks.filter((f) => f === 1).length / picks.length;
    // Zipf s = 1 over 100 ranks: rank 1 gets 1 / H(100) ≈ 19 %, rank 100 about 0.2 %.
    expect(top).toBeGreaterThan(0.15);
    expect(top).toBeLessThan(0.24);
    expect(Math.min(...picks)).toBe(1);
    expect(new Set(picks).size).toBeGreaterThan(80);
  });
});

/**
 * The comparison itself, short and small (a benchmark's numbers come from `npm run sim --
 * --scenario long-tail`): both routing modes run the same sequence without errors, latency routing
 * finds warm containers elsewhere, and the report ends with the ratios.
 */
describe.skipIf(REDIS_MISSING)('long-tail scenario (short)', () => {
  it('runs the same requests under nearest and latency routing (and with hedging) and compares them', async () => {
    const lines: string[] = [];
    const result = await runLongTail({ durationS: 6, rps: 30, functions: 60, hedge: true, root: process.cwd(), log: (l) => lines.push(l) });
    console.log(result.report);
    expect(result.failures, result.report).toEqual([]);
    expect(result.report).toMatch(/scenario long-tail \(nearest\): \d+ requests, 0 errors.*\n[\s\S]*routes: nearest \d+\n/);
    expect(result.report).toMatch(/scenario long-tail \(latency\): \d+ requests, 0 errors[\s\S]*routes: [^\n]*warm \d+/);
    expect(result.report).toMatch(/scenario long-tail \(latency\+hedging\): \d+ requests, 0 errors/);
    const last = result.report.trimEnd().split('\n').slice(-2);
    expect(last[0]).toMatch(/^long-tail latency\+hedging\/nearest: cold starts \d+\.\d\d, p50 \d+\.\d\d, p95 \d+\.\d\d$/);
    expect(last[1]).toMatch(/^long-tail latency\/nearest: cold starts \d+\.\d\d, p50 \d+\.\d\d, p95 \d+\.\d\d$/);
  }, 120_000);
});
