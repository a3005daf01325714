import { describe, expect, it } from 'vitest';
import { PenaltyBox } from '../../src/core/penalty-box.js';

describe('PenaltyBox', () => {
  it('holds an address for the penalty time, then lets it go', () => {
    const box = new PenaltyBox(1_000);
    box.add('a', 10_000);
    expect(box.holds('a', 10_999)).toBe(true);
    expect(box.holds('b', 10_500)).toBe(false);
    expect(box.holds('a', 11_000)).toBe(false);
    expect(box.size).toBe(1); // remembered for four penalties more, for a repeat offence
    expect(box.holds('a', 15_000)).toBe(false);
    expect(box.size).toBe(0); // then dropped when seen
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

  it('takes a penalty with its end time and length from elsewhere, keeping the later end, and lists those running or remembered', () => {
    const box = new PenaltyBox(1_000);
    expect(box.add('a', 10_000)).toEqual({ sinceMs: 10_000, untilMs: 11_000 });
    box.addUntil('a', 10_500, 1_000, 10_000); // an earlier end does not shorten it
    box.addUntil('b', 12_000, 2_000, 10_000);
    box.addUntil('c', 9_000, 1_000, 10_000); // over, but remembered until 13,000
    box.addUntil('d', 5_000, 1_000, 10_000); // over and forgotten (at 9,000)
    expect([...box.records(10_000)]).toEqual([['a', 11_000, 1_000], ['b', 12_000, 2_000], ['c', 9_000, 1_000]]);
    expect(box.size).toBe(3); // the forgotten one dropped as the list passed it
    expect(box.holds('b', 11_999)).toBe(true);
    expect(box.holds('c', 10_000)).toBe(false);
    expect(new PenaltyBox(0).add('a', 0)).toBeNull();
    const relayed = new PenaltyBox(0); // the primary's: the penalty time comes with each penalty
    relayed.addUntil('e', 5_000, 1_000, 4_000);
    expect(relayed.holds('e', 4_999)).toBe(true);
  });

  it('doubles the penalty of an address that floods again soon after it was let go, up to 16 times the base', () => {
    const box = new PenaltyBox(1_000);
    const lengths: number[] = [];
    let now = 0;
    for (let offence = 0; offence < 7; offence++) {
      const penalty = box.add('a', now)!;
      lengths.push(penalty.untilMs - penalty.sinceMs);
      now = penalty.untilMs; // back the moment it is let in
    }
    expect(lengths).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 16_000, 16_000]);
    expect(box.add('b', 0)?.untilMs).toBe(1_000); // each address on its own record
  });

  it('does not count a flood seen while the address is still held as another offence', () => {
    const box = new PenaltyBox(1_000);
    expect(box.add('a', 0)?.untilMs).toBe(1_000);
    expect(box.add('a', 500)?.untilMs).toBe(1_000); // its other connection, open before the penalty
    expect(box.holds('a', 999)).toBe(true);
    expect(box.add('a', 1_200)?.untilMs).toBe(3_200); // the next offence: doubled once, not twice
  });

  it('starts again from the base penalty once the address stayed away four times its last one', () => {
    const box = new PenaltyBox(1_000);
    box.add('a', 0);
    expect(box.add('a', 1_000 + 3_999)?.untilMs).toBe(4_999 + 2_000); // still remembered
    expect(box.add('a', 6_999 + 4 * 2_000)?.untilMs).toBe(14_999 + 1_000); // gone long enough
  });

  it('counts a penalty from elsewhere toward a repeat offence by the length it was given', () => {
    const box = new PenaltyBox(1_000);
    box.addUntil('a', 4_000, 4_000, 1_500); // another worker's third offence for this address, heard late
    expect(box.holds('a', 3_999)).toBe(true);
    expect(box.add('a', 4_500)?.untilMs).toBe(4_500 + 8_000);
  });

  it('makes room with an address no longer refused before one that is', () => {
    const box = new PenaltyBox(1_000, 3);
    box.addUntil('held', 200_000, 160_000, 50_000); // a long penalty, given first
    box.add('b', 50_000);
    box.add('c', 50_000);
    box.add('d', 60_000); // b and c are over (remembered): one of them goes, not the held one
    expect(box.holds('held', 60_000)).toBe(true);
    expect(box.size).toBe(3);
  });

  it('forgets old entries as new penalties come, without being asked about them (the primary\'s relay never is)', () => {
    const relayed = new PenaltyBox(0);
    for (let i = 0; i < 100; i++) relayed.addUntil(`old-${i}`, 1_000, 1_000, 0); // remembered until 5,000
    for (let i = 0; i < 20; i++) relayed.addUntil(`new-${i}`, 11_000, 1_000, 10_000);
    expect(relayed.size).toBe(100 + 20 - 4 * 20); // four forgotten ones dropped with each new penalty
  });
});
