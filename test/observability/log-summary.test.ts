import { afterEach, describe, expect, it, vi } from 'vitest';
import { summarisedEvery } from '../../src/observability/log-summary.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('summarisedEvery', () => {
  it('writes the first of a burst at once, then one line an interval counting the calls it stands for', () => {
    vi.useFakeTimers();
    const lines: Array<[string, number]> = [];
    const log = summarisedEvery<string>(10_000, (arg, count) => lines.push([arg, count]), () => Date.now());
    log('a');
    for (const arg of ['b', 'c', 'd']) {
      vi.advanceTimersByTime(3_000);
      log(arg);
    }
    expect(lines).toEqual([['a', 1]]);
    // 10 s after the first line: the last one held back is written then, counting those it stands for.
    vi.advanceTimersByTime(1_000);
    expect(lines).toEqual([['a', 1], ['d', 3]]);
    // Once only, and a call long after writes at once.
    vi.advanceTimersByTime(60_000);
    log('e');
    expect(lines).toEqual([['a', 1], ['d', 3], ['e', 1]]);
  });

  it('never loses the last of two calls close together (an operator\'s second failure half a second after the first)', () => {
    vi.useFakeTimers();
    const lines: Array<[string, number]> = [];
    const log = summarisedEvery<string>(1_000, (arg, count) => lines.push([arg, count]), () => Date.now());
    log('first');
    vi.advanceTimersByTime(500);
    log('second');
    expect(lines).toEqual([['first', 1]]);
    vi.advanceTimersByTime(500);
    expect(lines).toEqual([['first', 1], ['second', 1]]);
  });
});
