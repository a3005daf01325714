import { afterEach, describe, expect, it, vi } from 'vitest';
import { monotonicNow } from '../../src/core/monotonic-clock.js';
import { ExchangeWatchdog, LiveList, ranLate, type Watched } from '../../src/proxy/exchange-watchdog.js';
import type { RegionGates } from '../../src/proxy/region-gate.js';

function watched(name: string, onCheck: (self: Watched) => void = () => undefined): Watched & { name: string; checks: number } {
  const item = {
    name,
    checks: 0,
    watchSlot: -1,
    check() {
      item.checks++;
      onCheck(item);
    },
  };
  return item;
}

const names = (list: LiveList<Watched>) => {
  const seen: string[] = [];
  list.forEach((item) => seen.push((item as Watched & { name: string }).name));
  return seen.sort();
};

describe('LiveList', () => {
  it('adds and removes in any order, each item once', () => {
    const list = new LiveList<Watched>();
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((n) => watched(n));
    for (const item of [a!, b!, c!, d!]) list.add(item);
    list.add(b!); // already listed: no second entry
    expect(list.size).toBe(4);
    list.delete(b!);
    expect(names(list)).toEqual(['a', 'c', 'd']);
    list.delete(b!); // not listed any more: nothing happens
    list.delete(a!);
    expect(names(list)).toEqual(['c', 'd']);
    list.add(b!);
    expect(names(list)).toEqual(['b', 'c', 'd']);
    list.delete(d!);
    list.delete(c!);
    list.delete(b!);
    expect(list.size).toBe(0);
    expect(b!.watchSlot).toBe(-1);
  });

  it('visits every item, even when items leave the list during the visit', () => {
    const list = new LiveList<Watched>();
    const items = Array.from({ length: 10 }, (_, i) => watched(`e${i}`, (self) => (i % 2 === 0 ? list.delete(self) : undefined)));
    // e9 also removes e2 (not yet visited: the list is walked from the end).
    items[9] = watched('e9', () => list.delete(items[2]!));
    for (const item of items) list.add(item);
    list.forEach((item) => item.check(0));
    for (const item of items) {
      const { checks } = item as { checks: number };
      if (item === items[2]) expect(checks).toBe(0); // left before its turn
      else expect(checks).toBeGreaterThanOrEqual(1);
    }
    expect(names(list)).toEqual(['e1', 'e3', 'e5', 'e7', 'e9']);
  });
});

describe('ExchangeWatchdog after a stalled event loop', () => {
  it('judges a late tick only after the work that was already waiting when the loop resumed', async () => {
    const watchdog = new ExchangeWatchdog({ gates: { sweep: () => undefined } as unknown as RegionGates, usable: () => true, intervalMs: 40 });
    const events: string[] = [];
    let blocked = false;
    watchdog.live.add(watched('exchange', () => events.push(blocked ? 'check after the stall' : 'check')));
    watchdog.start();
    try {
      await new Promise((resolve) => setTimeout(resolve, 100));
      await new Promise<void>((resolve) =>
        setImmediate(() => {
          const end = Date.now() + 200;
          while (Date.now() < end) {
            // the loop is stalled past the tick
          }
          blocked = true;
          // Stands for the reads the stall held back: queued before the next turn's timers, as
          // bytes that arrived meanwhile wait for its poll phase. A sweep judging at the late tick ran before it.
          setImmediate(() => events.push('pending work'));
          setTimeout(resolve, 100);
        }),
      );
      expect(events.filter((e) => e !== 'check').slice(0, 2)).toEqual(['pending work', 'check after the stall']);
    } finally {
      watchdog.stop();
    }
  });

  it('calls a tick late past a quarter of its interval', () => {
    expect(ranLate(1_000, 1_060, 250)).toBe(false);
    expect(ranLate(1_000, 1_070, 250)).toBe(true);
  });
});

describe('ExchangeWatchdog and the system clock', () => {
  afterEach(() => vi.restoreAllMocks());

  it('sweeps on the monotonic clock, and judges regions on the wall clock: a step of the system clock moves no deadline', async () => {
    // An NTP step of an hour forward: on Date.now() every request in flight was past its deadline
    // at the next sweep (504, and each counted against its region).
    const wall = Date.now() + 3_600_000;
    vi.spyOn(Date, 'now').mockReturnValue(wall);
    const judgedAt: number[] = [];
    const gates = { sweep: (_now: number, usable: (region: string) => boolean) => usable('fra') } as unknown as RegionGates;
    const watchdog = new ExchangeWatchdog({ gates, usable: (_region, nowMs) => (judgedAt.push(nowMs), true), intervalMs: 20 });
    const seen: number[] = [];
    watchdog.live.add({ watchSlot: -1, check: (nowMs: number) => void seen.push(nowMs) } as Watched);
    watchdog.start();
    try {
      await vi.waitFor(() => expect(seen.length).toBeGreaterThan(0), { timeout: 2_000, interval: 10 });
    } finally {
      watchdog.stop();
    }
    expect(Math.abs(seen[0]! - monotonicNow())).toBeLessThan(1_000);
    expect(judgedAt[0]).toBe(wall);
  });
});
