import { describe, expect, it } from 'vitest';
import { AddressQuota } from '../../src/ingress/address-quota.js';
import { limitKeyOf } from '../../src/core/ip.js';

describe('AddressQuota', () => {
  it('lets each address hold up to its limit, independently, and forgets addresses holding nothing', () => {
    const q = new AddressQuota(2);
    expect([q.tryTake('a'), q.tryTake('a'), q.tryTake('a'), q.tryTake('b')]).toEqual([true, true, false, true]);
    expect(q.held('a')).toBe(2);
    q.release('a');
    expect(q.tryTake('a')).toBe(true);
    q.release('a');
    q.release('a');
    q.release('b');
    expect(q.addresses).toBe(0);
    q.release('never-took'); // harmless
    expect(q.addresses).toBe(0);
  });

  it('counts addresses that share a key together (an IPv6 client by its /64), and gives back under the same key', () => {
    const q = new AddressQuota(2, limitKeyOf);
    expect([q.tryTake('2001:db8:1:2::1'), q.tryTake('2001:db8:1:2::ffff'), q.tryTake('2001:db8:1:2:abcd::9')]).toEqual([true, true, false]);
    expect(q.tryTake('2001:db8:1:3::1')).toBe(true); // the next /64 is someone else
    expect([q.tryTake('192.0.2.1'), q.tryTake('192.0.2.1'), q.tryTake('192.0.2.1'), q.tryTake('192.0.2.2')]).toEqual([true, true, false, true]);
    expect(q.held('2001:db8:1:2::77')).toBe(2);
    q.release('2001:db8:1:2::ffff'); // any address of the /64 gives back its share
    expect(q.tryTake('2001:db8:1:2::5')).toBe(true);
    for (const a of ['2001:db8:1:2::1', '2001:db8:1:2::2', '2001:db8:1:3::1', '192.0.2.1', '192.0.2.1', '192.0.2.2']) q.release(a);
    expect(q.addresses).toBe(0);
  });

  it('counts nothing with limit 0 (no limit)', () => {
    const q = new AddressQuota(0);
    for (let i = 0; i < 1_000; i++) expect(q.tryTake('a')).toBe(true);
    expect(q.addresses).toBe(0);
  });
});
