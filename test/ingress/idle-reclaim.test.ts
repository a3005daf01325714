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

/** A clock the test moves, and the jobs given to it for later. */
function fakeClock() {
  let now = 0;
  const jobs: Array<{ at: number; job: () => void }> = [];
  return {
    now: () => now,
    later: (job: () => void, ms: number) => void jobs.push({ at: now + ms, job }),
    pending: () => jobs.length,
    advanceTo(ms: number) {
      now = ms;
      for (const due of jobs.filter((j) => j.at <= ms)) {
        jobs.splice(jobs.indexOf(due), 1);
        due.job();
      }
    },
  };
}

describe('IdleReclaimer', () => {
  const options = { minIdleMs: 1_000, maxCoreShare: 0.05 };

  it('walks the connections only near the cap, within its share of a core, and closes what it chose', () => {
    let open = 2;
    let walks = 0;
    const closed: number[] = [];
    const clock = fakeClock();
    const reclaimer = new IdleReclaimer(
      {
        open: () => open,
        cap: () => 4,
        candidates: () => {
          walks++;
          clock.advanceTo(clock.now() + 5); // a walk of 5 ms: the next look 100 ms after it at the earliest
          return [candidate(0, closed), candidate(10, closed), candidate(5_000, closed)];
        },
      },
      options,
      clock,
    );
    clock.advanceTo(5_000);
    expect(reclaimer.check()).toBe(0);
    expect(walks).toBe(0);
    open = 4; // two wanted
    clock.advanceTo(5_100);
    expect(reclaimer.check()).toBe(2);
    expect(closed).toEqual([0, 10]);
    clock.advanceTo(5_200);
    expect(reclaimer.check()).toBe(0); // too soon for another walk
    expect(walks).toBe(1);
    clock.advanceTo(5_205);
    expect(reclaimer.check()).toBe(2); // the stand-in list still offers them
    expect(walks).toBe(2);
    expect(reclaimer.reclaimed).toBe(4);
    expect(clock.pending()).toBe(0); // each look found all it wanted
  });

  it('looks again a quiet period later when it found too few quiet enough, until the listener is back under its reserve', () => {
    let open = 4;
    const used = [900, 950]; // both used just now when the burst filled the listener
    const clock = fakeClock();
    const reclaimer = new IdleReclaimer(
      {
        open: () => open,
        cap: () => 4,
        candidates: () =>
          used.map((at) => ({
            idleSinceMs: at,
            reclaim: () => {
              used.splice(used.indexOf(at), 1);
              open--;
            },
          })),
      },
      options,
      clock,
    );
    clock.advanceTo(1_000);
    expect(reclaimer.check()).toBe(0);
    expect(clock.pending()).toBe(1);
    reclaimer.check(); // a second look does not add a second timer
    expect(clock.pending()).toBe(1);
    clock.advanceTo(2_000); // both quiet for a second now: closed with no new client having been dropped
    expect(used).toEqual([]);
    expect(reclaimer.reclaimed).toBe(2);
    expect(clock.pending()).toBe(0);
  });
});
