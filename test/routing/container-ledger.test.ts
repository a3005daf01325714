import { describe, expect, it } from 'vitest';
import { ended, EVENTS_KEPT, isCurrent, newRegionCounts, rebase, sent, taken as takenAt, type RegionCounts } from '../../src/routing/container-ledger.js';

const NYC = 1;
/** The report each region's counts were last brought to (what the route decider reads off its snapshot). */
const reports = new WeakMap<RegionCounts, Map<number, number>>();
/** A report at `reportAt` from region `i` reaching this router: rebase when it is new, as the route decider does. */
const seen = (counts: RegionCounts, reportAt: number, busy = 0, i = NYC) => {
  if (!isCurrent(counts, i, reportAt)) rebase(counts, i, reportAt, busy);
  (reports.get(counts) ?? reports.set(counts, new Map()).get(counts)!).set(i, reportAt);
};
const taken = (counts: RegionCounts, i: number, nowMs: number, settledAfterMs: number) => {
  seen(counts, reports.get(counts)?.get(i) ?? 0, 0, i);
  return takenAt(counts, i, reports.get(counts)!.get(i)!, nowMs, settledAfterMs);
};

describe('container ledger', () => {
  it('counts sends since the report until they end: a burst takes one container each', () => {
    const fn = newRegionCounts(5);
    seen(fn, 1_000);
    const sentAt = [1_010, 1_011, 1_012].map((t) => sent(fn, NYC, t));
    expect(taken(fn, NYC, 1_013, 0)).toBe(3);
    ended(fn, NYC, sentAt[0]!, 1_020);
    expect(taken(fn, NYC, 1_021, 0)).toBe(2);
    // Other regions and other functions keep their own counts.
    expect(taken(fn, 0, 1_021, 0)).toBe(0);
    expect(taken(newRegionCounts(5), NYC, 1_021, 0)).toBe(0);
  });

  it.each([
    // [what, events (send at s / end of the send at s, at e) seen under the report at 1,000, busy in the report at 2,000, taken after it arrives]
    ['a request running at the report and ending after it frees a container the report counted busy', [['send', 1_990], ['end', 1_990, 2_004]], 1, -1],
    ['…but no more than the report counted busy', [['send', 1_990], ['send', 1_991], ['end', 1_990, 2_004], ['end', 1_991, 2_005]], 1, -1],
    ['a request that ended before the report was counted idle by it: nothing to add', [['send', 1_990], ['end', 1_990, 1_995]], 1, 0],
    ['a request sent after the report was taken, before it arrived, holds a container the report counted idle', [['send', 2_003]], 0, 1],
    ['…and once it has ended too, the report had it right', [['send', 2_003], ['end', 2_003, 2_006]], 0, 0],
    ['a request still running from before the report: the report counted it busy, nothing to take', [['send', 1_990]], 1, 0],
  ] as const)('%s', (_what, events, busy, expected) => {
    const fn = newRegionCounts(5);
    seen(fn, 1_000);
    const sentAt = new Map<number, number>();
    for (const [kind, at, endedAt] of events as readonly (readonly [string, number, number?])[]) {
      if (kind === 'send') sentAt.set(at, sent(fn, NYC, at));
      else ended(fn, NYC, sentAt.get(at)!, endedAt!);
    }
    seen(fn, 2_000, busy);
    expect(taken(fn, NYC, 2_008, 0)).toBe(expected);
  });

  it('an end seen after the new report counts against it directly, as the rebuild would have', () => {
    const fn = newRegionCounts(5);
    seen(fn, 1_000);
    const a = sent(fn, NYC, 1_990); // running when nyc reports at 2,000 (busy 1)
    const b = sent(fn, NYC, 1_995);
    seen(fn, 2_000, 1);
    const c = sent(fn, NYC, 2_010);
    expect(taken(fn, NYC, 2_011, 0)).toBe(1);
    ended(fn, NYC, a, 2_012); // frees the container the report counted busy
    ended(fn, NYC, b, 2_013); // the report's one busy container is freed already: nothing more
    expect(taken(fn, NYC, 2_014, 0)).toBe(0);
    ended(fn, NYC, c, 2_015);
    expect(taken(fn, NYC, 2_016, 0)).toBe(-1);
  });

  it('says NaN (rebase first) when asked against a report its counts do not refer to', () => {
    const fn = newRegionCounts(5);
    seen(fn, 1_000);
    expect(takenAt(fn, NYC, 1_000, 1_001, 0)).toBe(0);
    expect(takenAt(fn, NYC, 2_000, 2_001, 0)).toBeNaN();
  });

  it('a send seen after a report counts against it even when this clock reads earlier (skew), and its end gives it back', () => {
    const fn = newRegionCounts(5);
    seen(fn, 2_000);
    const sentAt = sent(fn, NYC, 1_997);
    expect(sentAt).toBe(2_000);
    expect(taken(fn, NYC, 1_998, 0)).toBe(1);
    ended(fn, NYC, sentAt, 1_999);
    expect(taken(fn, NYC, 1_999, 0)).toBe(0);
  });

  it('once the report is older than the median request time, counts only its own running requests as holding containers', () => {
    const fn = newRegionCounts(5);
    seen(fn, 1_000);
    sent(fn, NYC, 1_995); // running when nyc reports at 2,000 with 3 busy: this one and two of other routers'
    seen(fn, 2_000, 3);
    sent(fn, NYC, 2_001); // and one since
    // Within the median request time (20 ms) the others' requests may still run: only what this router did counts.
    expect(taken(fn, NYC, 2_010, 20)).toBe(1);
    // Past it, they are most likely over: of the 3 busy, only its 2 running requests still hold a container.
    expect(taken(fn, NYC, 2_030, 20)).toBe(2 - 3);
    // No settling without a median.
    expect(taken(fn, NYC, 9_000, 0)).toBe(1);
  });

  it(`keeps the last ${EVENTS_KEPT} events per region: more between a report and its arrival err towards idle`, () => {
    const fn = newRegionCounts(5);
    seen(fn, 1_000);
    for (let t = 0; t < EVENTS_KEPT + 3; t++) sent(fn, NYC, 2_001 + t); // all after the report at 2,000, none ended
    seen(fn, 2_000);
    expect(taken(fn, NYC, 2_100, 0)).toBe(EVENTS_KEPT);
    // Region 0's events are its own.
    seen(fn, 2_000, 0, 0);
    expect(taken(fn, 0, 2_100, 0)).toBe(0);
  });
});
