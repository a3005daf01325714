import { describe, expect, it } from 'vitest';
import { ResetTallies } from '../../src/ingress/reset-tally.js';

describe('ResetTallies', () => {
  it("gives an address's connections one tally within its window, and a new one after it", () => {
    const tallies = new ResetTallies(10_000);
    const first = tallies.of('127.8.0.1', 1_000);
    first.streams += 60;
    first.resets += 60;
    const second = tallies.of('127.8.0.1', 5_000);
    expect(second).toBe(first); // counted together: a second connection adds to the first's
    expect(tallies.of('127.8.0.2', 5_000)).not.toBe(first);
    const later = tallies.of('127.8.0.1', 11_000);
    expect(later).not.toBe(first);
    expect(later).toMatchObject({ streams: 0, resets: 0, sinceMs: 11_000 });
  });

  it('forgets tallies whose window is over, and holds at most maxAddresses', () => {
    const tallies = new ResetTallies(1_000, 100);
    for (let i = 0; i < 10_000; i++) tallies.of(`10.0.${i >> 8}.${i & 255}`, 0);
    expect(tallies.size).toBe(100);
    tallies.of('10.9.9.9', 6_000); // a sweep, the windows long over
    expect(tallies.size).toBe(1);
  });

  it('starts a new window when the clock steps back', () => {
    const tallies = new ResetTallies(10_000);
    const before = tallies.of('::1', 50_000);
    expect(tallies.of('::1', 40_000)).not.toBe(before);
  });
});
