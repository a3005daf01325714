import { describe, expect, it } from 'vitest';
import { deathsInRow, restartDelayMs, STABLE_AFTER_MS } from '../../src/cluster/restart-backoff.js';

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
});
