import { describe, expect, it } from 'vitest';
import { START_DEADLINE_MS } from '../../src/cluster/hang-threshold.js';
import { CRASH_LOOP_DEATHS, crashLooping, deathsInRow, restartDelayMs, servedMs, STABLE_AFTER_MS } from '../../src/cluster/restart-backoff.js';

describe('restart backoff', () => {
  it.each([
    [1, 200],
    [2, 400],
    [3, 800],
    [5, 3_200],
    [6, 5_000],
    [50, 5_000],
  ])('waits before replacing the worker of death %i in a row: %i ms', (inRow, ms) => {
    expect(restartDelayMs(inRow)).toBe(ms);
  });

  it('counts deaths in a row while workers die young', () => {
    expect(deathsInRow(0, 10)).toBe(1);
    expect(deathsInRow(5, STABLE_AFTER_MS - 1)).toBe(6);
  });

  it('starts the count again once a worker has lived a minute, so an old crash no longer slows the next replacement', () => {
    expect(deathsInRow(9, STABLE_AFTER_MS)).toBe(1);
    expect(restartDelayMs(deathsInRow(9, 86_400_000))).toBe(200);
  });

  it('counts a worker\'s life from its listening: one stuck in its start, killed past the start deadline, is a death in a row however long it lived', () => {
    const forkedAt = 1_000_000;
    // Killed by the heartbeat watch a tick after the deadline (as long as STABLE_AFTER_MS, or longer).
    const killedAt = forkedAt + START_DEADLINE_MS + 2_000;
    expect(START_DEADLINE_MS + 2_000).toBeGreaterThanOrEqual(STABLE_AFTER_MS);
    expect(servedMs(undefined, killedAt)).toBe(0);
    const deaths = new Map<number, number>();
    for (let death = 0; death < CRASH_LOOP_DEATHS; death++) {
      for (const slot of [0, 1]) deaths.set(slot, deathsInRow(deaths.get(slot) ?? 0, servedMs(undefined, killedAt)));
    }
    // Before, counted from the fork, each such death started the count again: never a crash loop.
    expect(crashLooping(deaths, 2, false)).toBe(true);
    // One that served a minute starts it again; one that served less, or drained before it listened, does not.
    expect(deathsInRow(4, servedMs(forkedAt, forkedAt + STABLE_AFTER_MS))).toBe(1);
    expect(deathsInRow(4, servedMs(forkedAt, forkedAt + STABLE_AFTER_MS - 1))).toBe(5);
    expect(servedMs(forkedAt + 10, forkedAt)).toBe(0);
  });

  it('calls it a crash loop only when no worker has served and every slot has died CRASH_LOOP_DEATHS times in a row', () => {
    const all = new Map([[0, CRASH_LOOP_DEATHS], [1, CRASH_LOOP_DEATHS + 3]]);
    expect(crashLooping(all, 2, false)).toBe(true);
    // One worker that served once: a failing slot is retried while the others serve.
    expect(crashLooping(all, 2, true)).toBe(false);
    // A slot not there yet, or not as often, may still come up.
    expect(crashLooping(new Map([[0, CRASH_LOOP_DEATHS]]), 2, false)).toBe(false);
    expect(crashLooping(new Map([[0, CRASH_LOOP_DEATHS], [1, CRASH_LOOP_DEATHS - 1]]), 2, false)).toBe(false);
  });
});
