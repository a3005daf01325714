import { describe, expect, it } from 'vitest';
import { summarisedEvery } from '../../src/observability/log-summary.js';

describe('summarisedEvery', () => {
  it('writes the first of a burst at once, then one line an interval counting the calls it stands for', () => {
    let clock = 1_000;
    const lines: Array<[string, number]> = [];
    const log = summarisedEvery<string>(10_000, (arg, count) => lines.push([arg, count]), () => clock);
    log('a');
    for (const arg of ['b', 'c', 'd']) {
      clock += 3_000;
      log(arg);
    }
    expect(lines).toEqual([['a', 1]]);
    clock += 1_000; // 10 s after the first line
    log('e');
    expect(lines).toEqual([['a', 1], ['e', 4]]);
    clock += 60_000;
    log('f');
    expect(lines).toEqual([['a', 1], ['e', 4], ['f', 1]]);
  });
});
