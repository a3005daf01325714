import { describe, expect, it } from 'vitest';
import { IdleReclaimer, leastRecentlyUsed, reclaimWanted, type ReclaimCandidate, type ReclaimedListener } from '../../src/ingress/idle-reclaim.js';

/** A candidate named by when it went quiet. */
const candidate = (idleSinceMs: number): ReclaimCandidate<number> => ({ idleSinceMs, connection: idleSinceMs });

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
    expect(leastRecentlyUsed(all, 3, 1_000, 200).map((c) => c.connection)).toEqual([0, 100, 300]);
    // 950 was used 50 ms ago: kept, even when more are wanted than there are.
    expect(leastRecentlyUsed(all, 10, 1_000, 200).map((c) => c.connection)).toEqual([0, 100, 300, 500]);
    expect(leastRecentlyUsed(all, 0, 1_000, 200)).toEqual([]);
  });
});

/** A clock the test moves, and the jobs given to it for later. */
function fakeClock() {
  let now = 0;
  let cpu = 0;
  const jobs: Array<{ at: number; job: () => void }> = [];
  return {
    now: () => now,
    cpuMs: () => cpu,
    /** Work that took the CPU for `ms` (and the wall clock as long). */
    work(ms: number) {
      cpu += ms;
      this.advanceTo(now + ms);
    },
    later: (job: () => void, ms: number) => void jobs.push({ at: now + ms, job }),
    pending: () => jobs.map((j) => j.at),
    advanceTo(ms: number) {
      now = ms;
      for (const due of jobs.filter((j) => j.at <= ms)) {
        jobs.splice(jobs.indexOf(due), 1);
        due.job();
      }
    },
  };
}

/** A listener of `cap` whose idle connections went quiet at `quietSince`; a walk takes `walkMs` of CPU. */
function listenerOf(cap: number, open: number, quietSince: number[], clock: ReturnType<typeof fakeClock>, walkMs = 0) {
  const state = { open, walks: 0, closed: [] as number[] };
  const listener: ReclaimedListener<number> = {
    open: () => state.open,
    cap: () => cap,
    candidates: () => {
      state.walks++;
      clock.work(walkMs);
      return quietSince.filter((at) => !state.closed.includes(at)).map(candidate);
    },
    reclaim: (at) => {
      state.closed.push(at);
      state.open--;
    },
  };
  return { state, listener };
}

describe('IdleReclaimer', () => {
  const options = { minIdleMs: 1_000, maxCoreShare: 0.05 };

  it('walks the connections only near the cap, within its share of a core, and closes what it chose', () => {
    const clock = fakeClock();
    const { state, listener } = listenerOf(8, 5, [0, 10, 20, 30, 5_000], clock, 5);
    const reclaimer = new IdleReclaimer(listener, options, clock);
    clock.advanceTo(5_000);
    expect(reclaimer.check()).toBe(0); // 5 of 8: below the reserve
    expect(state.walks).toBe(0);
    state.open = 8; // 8 - (8 - 2) = 2 wanted
    expect(reclaimer.check()).toBe(2);
    expect(state.closed).toEqual([0, 10]);
    // A walk of 5 ms: no other for 100 ms after it.
    state.open = 8;
    clock.advanceTo(5_050);
    expect(reclaimer.check()).toBe(0);
    expect(state.walks).toBe(1);
    expect(clock.pending()).toEqual([5_105]); // the look put off is made then, with no accept to ask for it
    clock.advanceTo(5_105);
    expect(state.walks).toBe(2);
    expect(state.closed).toEqual([0, 10, 20, 30]);
    expect(reclaimer.reclaimed).toBe(4);
    expect(clock.pending()).toEqual([]); // it found all it wanted
  });

  it('paces by the CPU a walk took, not the wall clock, which a busy host stretches', () => {
    const clock = fakeClock();
    const { state, listener } = listenerOf(8, 8, [0, 10, 20, 30, 40, 50], clock);
    // Each walk costs 1 ms of CPU but 30 ms go by: other processes had the core meanwhile.
    listener.candidates = ((walk) => () => {
      clock.work(1);
      clock.advanceTo(clock.now() + 29);
      return walk();
    })(listener.candidates);
    const reclaimer = new IdleReclaimer(listener, options, clock);
    clock.advanceTo(5_000);
    expect(reclaimer.check()).toBe(2);
    state.open = 8;
    clock.advanceTo(clock.now() + 20); // 20 ms of CPU paid for 1: the next look may come
    expect(reclaimer.check()).toBe(2);
    expect(state.walks).toBe(2);
  });

  it('looks again a quiet period later when it found too few quiet enough, until the listener is back under its reserve', () => {
    const clock = fakeClock();
    // Both used just now, when the burst filled the listener.
    const { state, listener } = listenerOf(4, 4, [900, 950], clock);
    const reclaimer = new IdleReclaimer(listener, options, clock);
    clock.advanceTo(1_000);
    expect(reclaimer.check()).toBe(0);
    expect(clock.pending()).toEqual([2_000]);
    reclaimer.check(); // a second look does not add a second timer
    expect(clock.pending()).toEqual([2_000]);
    clock.advanceTo(2_000); // both quiet for a second now: closed with no new client having been dropped
    expect(state.closed).toEqual([900, 950]);
    expect(reclaimer.reclaimed).toBe(2);
    expect(clock.pending()).toEqual([]);
  });

  it('keeps looking, a quiet period apart, while the listener stays near its cap with nothing idle', () => {
    const clock = fakeClock();
    const { state, listener } = listenerOf(4, 4, [], clock);
    const reclaimer = new IdleReclaimer(listener, options, clock);
    reclaimer.check();
    clock.advanceTo(1_000);
    clock.advanceTo(2_000);
    expect(state.walks).toBe(3);
    state.open = 1; // its connections ended: the next look stops there
    clock.advanceTo(3_000);
    expect(state.walks).toBe(3);
    expect(clock.pending()).toEqual([]);
  });
});
