import { describe, expect, it } from 'vitest';
import { RetryBudget } from '../../src/proxy/retry-budget.js';

function budget(options: { ratio?: number; minRetries?: number; windowSeconds?: number } = {}) {
  let now = 1_000_000;
  const b = new RetryBudget({ ...options, now: () => now });
  return { b, advance: (ms: number) => (now += ms) };
}

describe('RetryBudget', () => {
  it('always allows the floor, even with no traffic', () => {
    const { b } = budget({ minRetries: 3 });
    expect([b.tryAcquire(), b.tryAcquire(), b.tryAcquire(), b.tryAcquire()]).toEqual([true, true, true, false]);
    expect(b.exhausted).toBe(1);
  });

  it('counts a refusal only when asked to (a request asking again is not refused again)', () => {
    const { b } = budget({ minRetries: 1 });
    expect([b.tryAcquire(), b.tryAcquire(false), b.tryAcquire(false)]).toEqual([true, false, false]);
    expect(b.exhausted).toBe(0);
    expect(b.tryAcquire()).toBe(false);
    expect(b.exhausted).toBe(1);
  });

  it('allows retries up to the ratio of requests in the window', () => {
    const { b } = budget({ ratio: 0.2, minRetries: 0 });
    for (let i = 0; i < 100; i++) b.recordRequest();
    let granted = 0;
    for (let i = 0; i < 50; i++) if (b.tryAcquire()) granted++;
    expect(granted).toBe(20);
  });

  it('forgets requests and retries that have left the window', () => {
    const { b, advance } = budget({ ratio: 0.2, minRetries: 1, windowSeconds: 10 });
    for (let i = 0; i < 100; i++) b.recordRequest();
    while (b.tryAcquire());
    expect(b.tryAcquire()).toBe(false);
    advance(5_000);
    expect(b.tryAcquire()).toBe(false); // still inside the window
    advance(6_000);
    expect(b.tryAcquire()).toBe(true); // the old traffic and retries are gone; the floor applies
    expect(b.tryAcquire()).toBe(false);
  });

  it('survives a long idle gap', () => {
    const { b, advance } = budget({ minRetries: 2 });
    for (let i = 0; i < 1_000; i++) b.recordRequest();
    advance(3_600_000);
    expect([b.tryAcquire(), b.tryAcquire(), b.tryAcquire()]).toEqual([true, true, false]);
  });
});

describe('RetryBudget between organisations', () => {
  it("keeps one organisation's retries to its share of the budget, leaving the rest to others", () => {
    let now = 1_000_000;
    const b = new RetryBudget({ ratio: 0.2, minRetries: 4, tenantShare: 0.5, now: () => now });
    for (let i = 0; i < 100; i++) b.recordRequest();
    let flood = 0;
    for (let i = 0; i < 30; i++) if (b.tryAcquire(true, 'mallory')) flood++;
    expect(flood).toBe(10);
    // Another organisation's failover still finds the other half.
    let other = 0;
    for (let i = 0; i < 30; i++) if (b.tryAcquire(true, 'acme')) other++;
    expect(other).toBe(10);
    expect(b.exhausted).toBe(40);
    now += 11_000; // everything leaves the window
    expect(b.tryAcquire(true, 'mallory')).toBe(true);
  });

  it('gives each organisation the floor: a quiet router serving one keeps the failovers it had', () => {
    const b = new RetryBudget({ minRetries: 4, tenantShare: 0.5 });
    expect(Array.from({ length: 5 }, () => b.tryAcquire(true, 'solo'))).toEqual([true, true, true, true, false]);
  });

  it('is one budget for everyone with a share of 1, or without a tenant named', () => {
    const whole = new RetryBudget({ ratio: 0.2, minRetries: 0, tenantShare: 1 });
    for (let i = 0; i < 100; i++) whole.recordRequest();
    let granted = 0;
    for (let i = 0; i < 30; i++) if (whole.tryAcquire(true, 'solo')) granted++;
    expect(granted).toBe(20);
    const unnamed = new RetryBudget({ minRetries: 4, tenantShare: 0.5 });
    expect(Array.from({ length: 5 }, () => unnamed.tryAcquire())).toEqual([true, true, true, true, false]);
  });
});
