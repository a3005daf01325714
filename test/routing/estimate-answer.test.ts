import { describe, expect, it } from 'vitest';
import type { FunctionLoad, RegionId } from '../../src/core/types.js';
import { estimateAnswer, orderByExpectedAnswer, type AnswerEstimateInput } from '../../src/routing/estimate-answer.js';

/** London's distances to the five regions, km (rounded). */
const KM: Record<RegionId, number> = { fra: 640, nyc: 5_570, atl: 6_760, lax: 8_760, syd: 16_990 };

function input(loads: Partial<Record<RegionId, FunctionLoad>>, extra: Partial<AnswerEstimateInput> = {}): AnswerEstimateInput {
  return {
    candidates: ['fra', 'nyc', 'atl', 'lax', 'syd'],
    reorderable: 5,
    distanceKm: (r) => KM[r]!,
    load: (r) => loads[r],
    takenSinceReport: () => 0,
    msPer100Km: 1,
    defaultColdStartMs: 300,
    ...extra,
  };
}

const warm = (idle: number, coldStartMs: number | null = 250): FunctionLoad => ({ idle, busy: 0, coldStartMs });
const busy = (n: number, coldStartMs: number | null = 250): FunctionLoad => ({ idle: 0, busy: n, coldStartMs });

describe('expected time to answer', () => {
  it.each<[string, Partial<Record<RegionId, FunctionLoad>>, Partial<AnswerEstimateInput>, RegionId[], boolean]>([
    ['nothing known anywhere: distance order, cold', {}, {}, ['fra', 'nyc', 'atl', 'lax', 'syd'], false],
    ['warm nearest: stays nearest', { fra: warm(1), nyc: warm(3) }, {}, ['fra', 'nyc', 'atl', 'lax', 'syd'], true],
    ['cold nearest, idle warm 56 ms away: the warm one (56 ms < 640/100 + 300 ms)', { nyc: warm(1) }, {}, ['nyc', 'fra', 'atl', 'lax', 'syd'], true],
    ['cold nearest, warm but far at 10 ms per 100 km: cold nearest still wins (1,700 ms > 306 ms)', { syd: warm(2) }, { msPer100Km: 10 }, ['fra', 'nyc', 'atl', 'lax', 'syd'], false],
    ['busy is not warm: fra is busy, atl idle', { fra: busy(4), atl: warm(1) }, {}, ['atl', 'fra', 'nyc', 'lax', 'syd'], true],
    ['a region\'s own fast cold start counts: fra cold in 20 ms beats nyc warm at 56 ms', { fra: busy(0, 20), nyc: warm(1) }, {}, ['fra', 'nyc', 'atl', 'lax', 'syd'], false],
    ['only the reorderable prefix moves: lax and syd (over their soft limit) stay last', { syd: warm(5) }, { reorderable: 3 }, ['fra', 'nyc', 'atl', 'lax', 'syd'], false],
    // Before: nyc's lower median (100 ms against fra's 900) put it first, labelled cold-nearest.
    // Every cold region now counts fra's 900 ms, so only the warm syd (1,699 ms) passes lax (1,776).
    ['some region warm but far: the cold ones keep distance order whatever their medians', { fra: busy(1, 900), nyc: busy(1, 100), atl: busy(0, 50), syd: warm(2) }, { msPer100Km: 10 }, ['fra', 'nyc', 'atl', 'syd', 'lax'], false],
    ['the shared cold start is the first cold region\'s: a warm region beats fra at 500 ms, whatever nyc reports', { fra: busy(1, 500), nyc: busy(1, 20), atl: warm(1) }, {}, ['atl', 'fra', 'nyc', 'lax', 'syd'], true],
  ])('%s', (_what, loads, extra, order, isWarm) => {
    const result = orderByExpectedAnswer(input(loads, extra));
    expect(result.candidates).toEqual(order);
    expect(result.warm).toBe(isWarm);
  });

  it('keeps readiness\'s order among cold regions when a region weighted down is nearer, once any region is warm', () => {
    // A client in Chicago: atl is nearer than nyc, but weighted 0.5, readiness puts nyc first. By raw
    // distance, atl took the cold pick once a far region was warm (and the pre-warm went to nyc).
    const chicagoKm: Record<RegionId, number> = { nyc: 1_150, atl: 950, lax: 2_800, fra: 7_000, syd: 14_900 };
    const result = orderByExpectedAnswer(
      input({ nyc: busy(0, 100), syd: warm(1) }, { candidates: ['nyc', 'atl', 'lax', 'fra', 'syd'], distanceKm: (r) => chicagoKm[r]! }),
    );
    expect(result.candidates).toEqual(['nyc', 'atl', 'lax', 'syd', 'fra']);
    expect(result.warm).toBe(false);
    // Explained as counted: atl no sooner than nyc before it.
    expect(result.estimates.slice(0, 2).map((e) => [e.region, Math.round(e.expectedMs)])).toEqual([['nyc', 112], ['atl', 112]]);
  });

  it('counts this router\'s own sends since the report: a burst spreads over idle containers, then goes cold-nearest', () => {
    const sent: Record<RegionId, number> = { fra: 0, nyc: 0 };
    const picks: RegionId[] = [];
    for (let i = 0; i < 4; i++) {
      const result = orderByExpectedAnswer(input({ nyc: warm(2, 300) }, { takenSinceReport: (r) => sent[r] ?? 0 }));
      const pick = result.candidates[0]!;
      picks.push(pick);
      sent[pick] = (sent[pick] ?? 0) + 1;
    }
    // Two idle containers in nyc take the first two; then nyc is as cold as fra, which is nearer.
    expect(picks).toEqual(['nyc', 'nyc', 'fra', 'fra']);
  });

  it('explains a cold region\'s estimate with the cold start the order counted (the first cold region\'s) once any region is warm', () => {
    const result = orderByExpectedAnswer(input({ fra: busy(1, 500), nyc: busy(1, 100), syd: warm(2) }, { msPer100Km: 10 }));
    expect(result.estimates.map((e) => [e.region, e.coldStartMs, Math.round(e.expectedMs)])).toEqual([
      ['fra', 500, 564],
      ['nyc', 500, 1057],
      ['atl', 500, 1176],
      ['lax', 500, 1376],
      ['syd', 500, 1699],
    ]);
    // With nothing warm, each its own (the order is readiness's either way).
    expect(orderByExpectedAnswer(input({ fra: busy(1, 500), nyc: busy(1, 100) })).estimates.map((e) => e.coldStartMs)).toEqual([500, 100, 300, 300, 300]);
  });

  it('explains each estimate by its parts', () => {
    expect(estimateAnswer(input({ nyc: warm(1) }), 'nyc')).toEqual({ region: 'nyc', rttMs: 55.7, idleWarm: 1, coldStartMs: 250, expectedMs: 55.7 });
    expect(estimateAnswer(input({}), 'fra')).toEqual({ region: 'fra', rttMs: 6.4, idleWarm: 0, coldStartMs: 300, expectedMs: 306.4 });
  });
});
