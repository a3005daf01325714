import { describe, expect, it } from 'vitest';
import { ConnectRate } from '../../src/ingress/connect-rate.js';

const takeAll = (rate: ConnectRate, address: string, times: number, nowMs: number) => Array.from({ length: times }, () => rate.tryTake(address, nowMs)).filter(Boolean).length;

describe('ConnectRate', () => {
  it('lets an address open a burst at once, then perSecond a second', () => {
    const rate = new ConnectRate(10); // burst 20
    expect(takeAll(rate, 'a', 50, 1_000)).toBe(20);
    expect(rate.tryTake('a', 1_050)).toBe(false); // half a token earned
    expect(rate.tryTake('a', 1_100)).toBe(true); // one earned in 100 ms
    expect(rate.tryTake('a', 1_100)).toBe(false);
    // A second later, ten more; never more than the burst however long it waited.
    expect(takeAll(rate, 'a', 50, 2_100)).toBe(10);
    expect(takeAll(rate, 'a', 50, 60_000)).toBe(20);
  });

  it('judges each address on its own', () => {
    const rate = new ConnectRate(1, 2);
    expect(takeAll(rate, 'a', 5, 0)).toBe(2);
    expect(takeAll(rate, 'b', 5, 0)).toBe(2);
    expect(rate.tryTake('a', 0)).toBe(false);
  });

  it('does not earn tokens when the clock steps back', () => {
    const rate = new ConnectRate(10, 1);
    expect(rate.tryTake('a', 5_000)).toBe(true);
    expect(rate.tryTake('a', 1_000)).toBe(false);
    // Nor owes any: 100 ms after the step back, the next token is there.
    expect(rate.tryTake('a', 1_100)).toBe(true);
  });

  it('still forgets full buckets after the clock stepped back', () => {
    const rate = new ConnectRate(10, 20);
    rate.tryTake('a', 100_000);
    rate.tryTake('b', 1_000); // the clock stepped back 99 s: 'a' refills from here
    rate.tryTake('c', 6_100); // 5.1 s on: 'a' and 'b' are full again and go
    expect(rate.size).toBe(1);
  });

  it('remembers nothing with no limit', () => {
    const rate = new ConnectRate(0);
    expect(takeAll(rate, 'a', 1_000, 0)).toBe(1_000);
    expect(rate.size).toBe(0);
  });

  it('forgets addresses whose bucket is full again, and holds at most maxAddresses', () => {
    const rate = new ConnectRate(10, 20, 3);
    for (const address of ['a', 'b', 'c', 'd']) rate.tryTake(address, 10_000);
    expect(rate.size).toBe(3); // 'a', the oldest, went
    expect(takeAll(rate, 'a', 30, 10_000)).toBe(20); // afresh: a new address's whole burst
    // 5 s on, every bucket is full again: the sweep (at most every 5 s) forgets them.
    rate.tryTake('e', 15_000);
    expect(rate.size).toBe(1);
  });
});
