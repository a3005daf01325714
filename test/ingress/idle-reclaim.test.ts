import { describe, expect, it } from 'vitest';
import { IdleReclaimer, leastRecentlyUsed, LIGHT_ADDRESS_CONNECTIONS, reclaimWanted, standingOf, type ReclaimCandidate, type ReclaimedListener } from '../../src/ingress/idle-reclaim.js';

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
  it('orders the connections quiet long enough by how long, and leaves out the others', () => {
    const all = [candidate(500), candidate(100), candidate(950), candidate(300), candidate(0)];
    // 950 was used 50 ms ago: kept.
    expect(leastRecentlyUsed(all, 1_000, 200).map((c) => c.connection)).toEqual([0, 100, 300, 500]);
    expect(leastRecentlyUsed(all, 100, 200)).toEqual([]);
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
  const state = { open, walks: 0, closed: [] as number[], usedSince: [] as number[], closingLeavesCount: false, sessions: [] as number[] };
  const listener: ReclaimedListener<number> = {
    open: () => state.open,
    cap: () => cap,
    candidates: () => {
      state.walks++;
      clock.work(walkMs);
      return quietSince.filter((at) => !state.closed.includes(at)).map(candidate);
    },
    stillIdle: (c) => !state.closed.includes(c.connection) && !state.usedSince.includes(c.connection),
    leavesAtOnce: (at) => !state.closingLeavesCount && !state.sessions.includes(at),
    reclaim: (at) => {
      state.closed.push(at);
      // An HTTP/2 session closed with a GOAWAY stays counted until its client closes.
      if (!state.closingLeavesCount && !state.sessions.includes(at)) state.open--;
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

  it('between looks, a connection that finds the listener full takes the place of the last walk\'s least recently used spare still idle', () => {
    const clock = fakeClock();
    const { state, listener } = listenerOf(8, 8, [0, 10, 20, 30, 40, 50, 4_500], clock, 5);
    const reclaimer = new IdleReclaimer(listener, options, clock);
    clock.advanceTo(5_000);
    expect(reclaimer.check()).toBe(2); // 0 and 10; spares 20, 30, 40, 50 (4,500 is too recent)
    expect(state.walks).toBe(1);
    state.usedSince.push(20); // its client sent a request since the walk: not idle any more
    state.open = 8; // full, and the new connection fits: nothing closed for it
    clock.advanceTo(5_010);
    expect(reclaimer.check()).toBe(0);
    expect(state.closed).toEqual([0, 10]);
    state.open = 9; // one past the cap: the look is put off, one spare closed for it without a walk
    expect(reclaimer.check()).toBe(0);
    expect(reclaimer.makeRoom()).toBe(true);
    expect(state.closed).toEqual([0, 10, 30]);
    expect(state.open).toBe(8);
    for (const next of [40, 50]) {
      state.open = 9;
      expect(reclaimer.makeRoom()).toBe(true);
      expect(state.closed.at(-1)).toBe(next);
    }
    state.open = 9; // no spare left: refused, until the look put off
    expect(reclaimer.makeRoom()).toBe(false);
    expect(state.walks).toBe(1);
    expect(reclaimer.reclaimed).toBe(5);
  });

  it('keeps as spares only connections whose closing leaves the count at once, not HTTP/2 sessions asked to go', () => {
    const clock = fakeClock();
    const { state, listener } = listenerOf(8, 8, [0, 10, 20, 30, 40, 50], clock, 5);
    state.sessions.push(20, 30);
    const reclaimer = new IdleReclaimer(listener, options, clock);
    clock.advanceTo(5_000);
    expect(reclaimer.check()).toBe(2); // 0 and 10
    for (const next of [40, 50]) {
      state.open = 9;
      expect(reclaimer.makeRoom()).toBe(true);
      expect(state.closed.at(-1)).toBe(next);
      expect(state.open).toBe(8);
    }
    state.open = 9; // the sessions would give no place now: left to the next look
    expect(reclaimer.makeRoom()).toBe(false);
    expect(state.closed).toEqual([0, 10, 40, 50]);
  });

  it('keeps a few reserves of spares at most, the least recently used', () => {
    const clock = fakeClock();
    const { state, listener } = listenerOf(8, 8, Array.from({ length: 20 }, (_, i) => i), clock, 5);
    const reclaimer = new IdleReclaimer(listener, options, clock);
    clock.advanceTo(5_000);
    expect(reclaimer.check()).toBe(2);
    let made = 0;
    for (state.open = 9; reclaimer.makeRoom(); state.open = 9) made++;
    expect(made).toBe(4); // four reserves of a cap of 8
    expect(state.closed).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('keeps its spares just below the cap, and forgets them once the listener is well away from it', () => {
    const clock = fakeClock();
    const { state, listener } = listenerOf(8, 8, [0, 10, 20, 30, 40], clock, 5);
    const reclaimer = new IdleReclaimer(listener, options, clock);
    clock.advanceTo(5_000);
    expect(reclaimer.check()).toBe(2);
    state.open = 6; // where the look left it, a new connection comes: below the reserve, no look
    expect(reclaimer.check()).toBe(0);
    state.open = 9;
    expect(reclaimer.makeRoom()).toBe(true);
    expect(state.closed).toEqual([0, 10, 20]);
    state.open = 3; // four reserves below the cap (of 8, a reserve of 1)
    expect(reclaimer.check()).toBe(0);
    state.open = 9; // full again before the next look may come: the old spares are not used
    clock.advanceTo(5_010);
    expect(reclaimer.check()).toBe(0);
    expect(reclaimer.makeRoom()).toBe(false);
    expect(state.closed).toEqual([0, 10, 20]);
  });
});

describe('standingOf', () => {
  it('takes an address holding no more than half an equal share of the cap, or a handful, for light', () => {
    // A cap of 1,024 among 8 addresses: half a share is 64.
    expect(standingOf(1, 1_024, 8)).toBe('light');
    expect(standingOf(64, 1_024, 8)).toBe('light');
    expect(standingOf(65, 1_024, 8)).toBe('heavy');
    // Four addresses holding a cap of 256 evenly are all heavy.
    expect(standingOf(64, 256, 4)).toBe('heavy');
    // Among many addresses the share is small, but a browser's or an office's few connections are light.
    expect(standingOf(LIGHT_ADDRESS_CONNECTIONS, 10_000, 5_000)).toBe('light');
    expect(standingOf(LIGHT_ADDRESS_CONNECTIONS + 1, 10_000, 5_000)).toBe('heavy');
    expect(standingOf(1, 64, 0)).toBe('light');
  });
});
