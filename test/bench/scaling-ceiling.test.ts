import { describe, expect, it } from 'vitest';
import { ceilingRps } from '../../bench/scaling-ceiling.js';

describe('ceilingRps', () => {
  it('divides the cores\' time by what a request cost the proxy and the rest of the machine with one worker', () => {
    // 60 µs in the proxy, 20 µs elsewhere: two cores give at most 25,000 req/s.
    expect(ceilingRps(2, 2, { rps: 16_000, proxyUs: 60, machineUs: 80 })).toBeCloseTo(25_000, 6);
  });

  it('never promises more than N workers\' worth of cores, however many cores there are', () => {
    // 50 µs a request: one worker's core gives 20,000 req/s, two workers 40,000, on 8 cores too.
    expect(ceilingRps(8, 2, { rps: 20_000, proxyUs: 50, machineUs: 70 })).toBe(40_000);
  });

  it('gives a cheaper proxy less room over its one-worker run: the load generator\'s share weighs more', () => {
    const ratio = (proxyUs: number) => ceilingRps(2, 2, { rps: 1e6 / proxyUs, proxyUs, machineUs: proxyUs + 20 }) / (1e6 / proxyUs);
    expect(ratio(40)).toBeCloseTo(1.333, 3);
    expect(ratio(120)).toBeCloseTo(1.714, 3);
  });

  it('never counts the rest of the machine below nothing', () => {
    expect(ceilingRps(2, 2, { rps: 1, proxyUs: 50, machineUs: 45 })).toBe(40_000);
  });
});
