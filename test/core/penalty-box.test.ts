import { describe, expect, it } from 'vitest';
import { PenaltyBox } from '../../src/core/penalty-box.js';

describe('PenaltyBox', () => {
  it('holds an address for the penalty time, then lets it go', () => {
    const box = new PenaltyBox(1_000);
    box.add('a', 10_000);
    expect(box.holds('a', 10_999)).toBe(true);
    expect(box.holds('b', 10_500)).toBe(false);
    expect(box.holds('a', 11_000)).toBe(false);
    expect(box.size).toBe(0); // an expired entry is dropped when seen
  });

  it('never holds anyone with a zero penalty', () => {
    const box = new PenaltyBox(0);
    box.add('a', 0);
    expect(box.holds('a', 0)).toBe(false);
  });

  it('stays bounded: past its size the oldest address goes first', () => {
    const box = new PenaltyBox(60_000, 3);
    for (const address of ['a', 'b', 'c', 'd']) box.add(address, 0);
    expect(box.size).toBe(3);
    expect(['a', 'b', 'c', 'd'].map((x) => box.holds(x, 1))).toEqual([false, true, true, true]);
    box.add('b', 2); // a repeat offender moves to the back of the line
    box.add('e', 3);
    expect(['b', 'c', 'd', 'e'].map((x) => box.holds(x, 4))).toEqual([true, false, true, true]);
  });

  it('takes a penalty with its end time from elsewhere, keeping the later end, and lists the running ones', () => {
    const box = new PenaltyBox(1_000);
    expect(box.add('a', 10_000)).toBe(11_000);
    box.addUntil('a', 10_500); // an earlier end does not shorten it
    box.addUntil('b', 12_000);
    box.addUntil('c', 9_000);
    expect([...box.live(10_000)]).toEqual([['a', 11_000], ['b', 12_000]]);
    expect(box.holds('b', 11_999)).toBe(true);
    expect(new PenaltyBox(0).add('a', 0)).toBeNull();
    const relayed = new PenaltyBox(0); // the primary's: the penalty time comes with each penalty
    relayed.addUntil('d', 5_000);
    expect(relayed.holds('d', 4_999)).toBe(true);
  });
});
