import { describe, expect, it } from 'vitest';
import { ceilingRps } from '../../bench/scaling-ceiling.js';

describe('ceilingRps', () => {
  it('divides the cores\' time by the proxy\'s one-worker cost plus what the rest of the machine took per request', () => {
    // 60 µs in the proxy, 20 µs elsewhere: two cores give at most 25,000 req/s.
    expect(ceilingRps(2, { rps: 16_000, proxyUs: 60, machineUs: 75 }, { rps: 23_000, proxyUs: 66, machineUs: 86 })).toBeCloseTo(25_000, 6);
  });

  it('gives a cheaper proxy less room over its one-worker run: the load generator\'s share weighs more', () => {
    const ratio = (proxyUs: number) => ceilingRps(2, { rps: 1e6 / proxyUs, proxyUs, machineUs: proxyUs + 20 }, { rps: 0, proxyUs, machineUs: proxyUs + 20 }) / (1e6 / proxyUs);
    expect(ratio(40)).toBeCloseTo(1.333, 3);
    expect(ratio(120)).toBeCloseTo(1.714, 3);
  });

  it('never counts the rest of the machine below nothing', () => {
    expect(ceilingRps(2, { rps: 1, proxyUs: 50, machineUs: 50 }, { rps: 1, proxyUs: 60, machineUs: 55 })).toBe(40_000);
  });
});
