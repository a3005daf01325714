import { describe, expect, it } from 'vitest';
import { IdleReclaimer, leastRecentlyUsed, reclaimWanted, type ReclaimCandidate } from '../../src/ingress/idle-reclaim.js';

const candidate = (idleSinceMs: number, closed: number[] = []): ReclaimCandidate => ({ idleSinceMs, reclaim: () => closed.push(idleSinceMs) });

describe('reclaimWanted', () => {
  it('wants nothing without a cap or while a reserve of 1/64 of it is free', () => {
    expect(reclaimWanted(5_000, 0)).toBe(0);
    expect(reclaimWanted(10_000 - 158, 10_000)).toBe(0);
    expect(reclaimWanted(2, 4)).toBe(0);
  });

  it('near the cap, wants enough to get back to twice the reserve below it', () => {
    // Reserve ceil(10000/64) = 157: from 9,843 open, back to 9,686.
    expect(reclaimWanted(10_000 - 157, 10_000)).toBe(157);
    expect(reclaimWanted(10_000, 10_000)).toBe(314);
    // A small cap still keeps one place in reserve.
    expect(reclaimWanted(3, 4)).toBe(1);
    expect(reclaimWanted(4, 4)).toBe(2);
    expect(reclaimWanted(1, 1)).toBe(1);
  });
});

describe('leastRecentlyUsed', () => {
  it('takes the connections quiet longest, and only those quiet long enough', () => {
    const all = [candidate(500), candidate(100), candidate(950), candidate(300), candidate(0)];
    expect(leastRecentlyUsed(all, 3, 1_000, 200).map((c) => c.idleSinceMs)).toEqual([0, 100, 300]);
    // 950 was used 50 ms ago: kept, even when more are wanted than there are.
    expect(leastRecentlyUsed(all, 10, 1_000, 200).map((c) => c.idleSinceMs)).toEqual([0, 100, 300, 500]);
    expect(leastRecentlyUsed(all, 0, 1_000, 200)).toEqual([]);
  });
});

describe('IdleReclaimer', () => {
  it('walks the connections only near the cap, at most once a look interval, and closes what it chose', () => {
    let open = 2;
    let walks = 0;
    const closed: number[] = [];
    const reclaimer = new IdleReclaimer(
      {
        open: () => open,
        cap: () => 4,
        candidates: () => {
          walks++;
          return [candidate(0, closed), candidate(10, closed), candidate(5_000, closed)];
        },
      },
      { minIdleMs: 1_000, minIntervalMs: 100 },
    );
    expect(reclaimer.check(5_000)).toBe(0);
    expect(walks).toBe(0);
    open = 4; // two wanted
    expect(reclaimer.check(5_100)).toBe(2);
    expect(closed).toEqual([0, 10]);
    expect(reclaimer.check(5_150)).toBe(0); // too soon for another walk
    expect(walks).toBe(1);
    expect(reclaimer.check(6_100)).toBe(2); // the stand-in list still offers them
    expect(walks).toBe(2);
    expect(reclaimer.reclaimed).toBe(4);
  });
});
