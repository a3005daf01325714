import { describe, expect, it } from 'vitest';
import type { Sample } from '../../src/sim/load-generator.js';
import { compareMetros, ratioLine, roundOrder, roundPlan, runSteadyCompare, sameModeSpread } from '../../src/sim/steady-compare.js';
import { REDIS_MISSING } from '../support/system-program.js';

const sample = (metro: string, latencyMs: number, region: string, error: string | null = null): Sample => ({
  at: 0,
  metro,
  status: error === null ? 200 : 502,
  latencyMs,
  region,
  route: 'nearest',
  cold: false,
  error,
});

describe('steady-compare rounds and comparison', () => {
  it('alternates the modes A B B A, so each runs first and last equally often', () => {
    expect(roundOrder(2)).toEqual(['nearest', 'latency', 'latency', 'nearest']);
    const order = roundOrder(6);
    expect(order).toHaveLength(12);
    expect(order.filter((m) => m === 'latency')).toHaveLength(6);
    expect(order.slice(0, 4)).toEqual(order.slice(4, 8));
  });

  it("plans an even number of rounds a mode, at least two, so that each of a mode's routers is measured", () => {
    // One round a mode (a 3-7 s run) loaded router a alone, and the spread read 0 %, never measured.
    expect(roundPlan(3, 5)).toEqual({ roundsPerMode: 2, roundS: 1.5 });
    expect(roundPlan(7, 5)).toEqual({ roundsPerMode: 2, roundS: 3.5 });
    expect(roundPlan(4, 2)).toEqual({ roundsPerMode: 2, roundS: 2 });
    expect(roundPlan(60, 5)).toEqual({ roundsPerMode: 12, roundS: 5 });
    expect(roundPlan(20, 5)).toEqual({ roundsPerMode: 4, roundS: 5 });
    // An odd count is made even, the rounds shortened to keep the run's length.
    expect(roundPlan(15, 5)).toEqual({ roundsPerMode: 4, roundS: 3.75 });
  });

  it('compares each metro by the median of its answered requests and names the share at its nearest region', () => {
    const nearest = [sample('atlanta', 10, 'atl'), sample('atlanta', 11, 'atl'), sample('atlanta', 12, 'atl'), sample('london', 20, 'fra')];
    const latency = [
      sample('atlanta', 11, 'atl'),
      sample('atlanta', 12, 'atl'),
      sample('atlanta', 13, 'nyc'),
      // A failed request is not an answer: it counts in neither the median nor the share.
      sample('atlanta', 1, 'atl', 'http_502'),
      sample('london', 19, 'fra'),
    ];
    const metros = compareMetros({ nearest, latency });
    const atlanta = metros.find((m) => m.metro === 'atlanta')!;
    expect(atlanta).toMatchObject({ p50NearestMs: 11, p50LatencyMs: 12, atNearest: { nearest: 1, latency: 2 / 3 } });
    expect(atlanta.ratio).toBeCloseTo(12 / 11, 6);
    expect(metros.find((m) => m.metro === 'london')!.ratio).toBeCloseTo(19 / 20, 6);
    // A metro with no answers in either mode compares as level, not as a division by zero.
    expect(metros.find((m) => m.metro === 'tokyo')!.ratio).toBe(1);
    // Either way round: Atlanta 12 / 11 is the widest (London 20 / 19 the other way).
    expect(sameModeSpread(metros)).toBeCloseTo(12 / 11, 6);
    expect(ratioLine(metros)).toBe('steady latency/nearest p50: atlanta 1.09, seattle 1.00, sao-paulo 1.00, london 0.95, tokyo 1.00, sydney 1.00; worst 1.09');
  });
});

/**
 * The comparison against the real topology, short (its verdict comes from `npm run sim --
 * --scenario steady-compare`): two routers, one per mode, take alternating rounds on the same
 * warm orchestrators without an error, and the report ends with the per-metro ratios.
 */
describe.skipIf(REDIS_MISSING)('steady-compare scenario (short)', () => {
  it('runs both modes in alternating rounds on one topology, two routers each, and compares every metro', async () => {
    const lines: string[] = [];
    const result = await runSteadyCompare({ durationS: 4, roundS: 2, rps: 30, root: process.cwd(), log: (l) => lines.push(l) });
    console.log(result.report);
    const correctness = result.failures.filter((f) => !result.regressions.includes(f));
    expect(correctness, result.report).toEqual([]);
    expect(lines.join('\n')).toMatch(/started router-latency-a[\s\S]*started router-latency-b[\s\S]*started router-nearest-b/);
    expect(result.report).toMatch(/scenario steady-compare \(nearest\): \d+ requests, 0 errors[\s\S]*routes: nearest \d+/);
    expect(result.report).toMatch(/scenario steady-compare \(latency\): \d+ requests, 0 errors/);
    expect(result.metros.map((m) => m.metro)).toEqual(['atlanta', 'seattle', 'sao-paulo', 'london', 'tokyo', 'sydney']);
    for (const m of result.metros) expect(m.p50NearestMs * m.p50LatencyMs).toBeGreaterThan(0);
    expect(result.report).toMatch(/same mode, two routers \(this run's noise\): p50s up to \d+ % apart under nearest, \d+ % under latency/);
    expect(result.sameModeSpread.nearest).toBeGreaterThanOrEqual(1);
    expect(result.report.trimEnd().split('\n').at(-1)).toMatch(/^steady latency\/nearest p50: atlanta \d+\.\d\d, seattle \d+\.\d\d, sao-paulo \d+\.\d\d, london \d+\.\d\d, tokyo \d+\.\d\d, sydney \d+\.\d\d; worst \d+\.\d\d$/);
  }, 90_000);
});
