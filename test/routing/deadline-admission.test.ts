import { describe, expect, it } from 'vitest';
import type { RegionId } from '../../src/core/types.js';
import { checkDeadline, expectedQueueWaitMs, MAX_RETRY_AFTER_S, regionServiceMs, type DeadlineCandidate } from '../../src/routing/deadline-admission.js';

describe('expected queue wait', () => {
  it.each<[string, number, number, number, number]>([
    ['a free container: no wait', 9, 10, 200, 0],
    ['every container busy, none queued: about one service time spread over the containers', 10, 10, 200, 20],
    ['30 queued behind 10 containers of 2 s requests: about 6.2 s', 40, 10, 2_000, 6_200],
    ['no median yet: no wait is assumed (never refuse on a guess)', 400, 10, 0, 0],
    ['no containers reported: no wait is assumed', 400, 0, 2_000, 0],
  ])('%s', (_what, inFlight, containers, serviceMs, expected) => {
    expect(expectedQueueWaitMs(inFlight, containers, serviceMs)).toBeCloseTo(expected, 6);
  });
});

describe('regionServiceMs: how long a request holds a container there', () => {
  it.each<[string, Parameters<typeof regionServiceMs>[0], number]>([
    ['the median service time when the region reports one (its median request time includes queueing)', { latencyMs: { p50: 9_000, p99: 20_000 }, serviceMs: 400 }, 400],
    ['the median request time from a region that reports no service time (an orchestrator of an earlier version)', { latencyMs: { p50: 9_000, p99: 20_000 } }, 9_000],
    ['a reported 0 stands (nothing served yet: unknown), not the median request time', { latencyMs: { p50: 9_000, p99: 20_000 }, serviceMs: 0 }, 0],
    ['nothing known of the region: 0 (unknown)', undefined, 0],
  ])('%s', (_what, health, expected) => {
    expect(regionServiceMs(health)).toBe(expected);
  });

  it('turns the same queue into a shorter wait when the service time excludes the queue', () => {
    // 40 in flight on 10 containers; requests are served in 400 ms but waited 9 s in all.
    const withField = { latencyMs: { p50: 9_000, p99: 20_000 }, serviceMs: 400 };
    const without = { latencyMs: { p50: 9_000, p99: 20_000 } };
    expect(expectedQueueWaitMs(40, 10, regionServiceMs(withField))).toBeCloseTo(1_240, 6);
    expect(expectedQueueWaitMs(40, 10, regionServiceMs(without))).toBeCloseTo(27_900, 6);
  });
});

describe('checkDeadline', () => {
  const region = (c: Partial<DeadlineCandidate>): DeadlineCandidate => ({ rttMs: 10, coldStartMs: 0, inFlight: 0, containers: 10, serviceMs: 1_000, ...c });
  const check = (table: Record<RegionId, DeadlineCandidate>, limitMs = 30_000) =>
    checkDeadline(Object.keys(table), limitMs, (r, into) => Object.assign(into, table[r]!));

  it('admits when any region fits, even if the first does not, naming the first that does', () => {
    expect(check({ fra: region({ inFlight: 10_000 }), nyc: region({ inFlight: 50 }) })).toEqual({ fits: true, index: 1 });
    expect(check({ fra: region({ inFlight: 50 }), nyc: region({ inFlight: 50 }) })).toEqual({ fits: true, index: 0 });
  });

  it('refuses when the best region is expected past the limit, naming it and when to come back', () => {
    // fra: 10 + (391/10) × 1,000 = 39,110 ms (queued: its cold start does not count); nyc: 60 + (351/10) × 1,000 = 35,160 ms.
    const verdict = check({ fra: region({ coldStartMs: 300, inFlight: 400 }), nyc: region({ rttMs: 60, inFlight: 360 }) });
    expect(verdict).toEqual({ fits: false, bestRegion: 'nyc', bestMs: 35_160, retryAfterS: 6 });
  });

  it('counts the round trip beside the queue, and a cold start only where nothing queues', () => {
    // The queue alone (29.5 s) fits; with a 600 ms round trip it does not.
    expect(check({ syd: region({ rttMs: 0, inFlight: 304, serviceMs: 1_000 }) })).toEqual({ fits: true, index: 0 });
    expect(check({ syd: region({ rttMs: 600, inFlight: 304 }) })).toMatchObject({ fits: false, retryAfterS: 1 });
    // Queued, a request waits for a busy container to free, not for a new one: no cold start on top.
    expect(check({ syd: region({ rttMs: 0, coldStartMs: 600, inFlight: 304 }) })).toEqual({ fits: true, index: 0 });
    // With room, the cold start is the wait (a 40 s cold start does not fit 30 s).
    expect(check({ syd: region({ rttMs: 0, coldStartMs: 40_000, inFlight: 0 }) })).toMatchObject({ fits: false, retryAfterS: 10 });
  });

  it('gives the extended tier its 60 s', () => {
    const full = { fra: region({ inFlight: 400 }) };
    expect(check(full, 30_000)).toMatchObject({ fits: false });
    expect(check(full, 60_000)).toEqual({ fits: true, index: 0 });
  });

  it('caps Retry-After, and admits when nothing is known or there is no candidate', () => {
    expect(check({ fra: region({ inFlight: 1_000_000 }) })).toMatchObject({ fits: false, retryAfterS: MAX_RETRY_AFTER_S });
    expect(check({ fra: region({ inFlight: 1_000_000, serviceMs: 0 }) })).toEqual({ fits: true, index: 0 });
    expect(check({})).toEqual({ fits: true, index: 0 });
  });
});
