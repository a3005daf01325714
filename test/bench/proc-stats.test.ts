import { describe, expect, it } from 'vitest';
import { allowedCpus, busyTicks, cgroupCpuSeconds } from '../../bench/proc-stats.js';

// user nice system idle iowait irq softirq steal guest guest_nice
const PROC_STAT = `cpu  1111 0 222 9999 10 3 4 50 0 0
cpu0 100 0 20 5000 5 1 1 10 0 0
cpu1 200 0 40 4000 5 1 1 10 0 0
cpu2 400 0 80 500 0 0 1 15 0 0
cpu3 411 0 82 499 0 1 1 15 0 0
intr 12345 0 0
ctxt 999
`;

describe('busyTicks', () => {
  it('counts only the CPUs the run may use (another tenant on cpu2 and cpu3 is not this run\'s work)', () => {
    expect(busyTicks(PROC_STAT, new Set([0, 1]))).toBe(100 + 20 + 1 + 1 + (200 + 40 + 1 + 1));
  });

  it('counts every CPU (the total line) when the allowed ones are unknown', () => {
    expect(busyTicks(PROC_STAT, null)).toBe(1111 + 222 + 3 + 4);
  });
});

describe('allowedCpus', () => {
  it.each([
    ['0-1', [0, 1]],
    ['0-1,3', [0, 1, 3]],
    ['2', [2]],
    ['0,2-4\n', [0, 2, 3, 4]],
  ])('%j', (list, cpus) => expect([...allowedCpus(list)!]).toEqual(cpus));

  it.each([undefined, '', 'ff', '0-'])('%j: unknown', (list) => expect(allowedCpus(list)).toBeNull());
});

describe('cgroupCpuSeconds', () => {
  it("reads a v2 cgroup's usage_usec, whatever comes around it", () => {
    expect(cgroupCpuSeconds({ v2CpuStat: 'usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnr_periods 10\n' })).toBe(2.5);
    expect(cgroupCpuSeconds({ v2CpuStat: 'nr_periods 3\nusage_usec 1000\n', v1Usage: '9000000000' })).toBe(0.001);
  });

  it("falls back to v1's cpuacct.usage, nanoseconds", () => {
    expect(cgroupCpuSeconds({ v2CpuStat: null, v1Usage: '1500000000\n' })).toBe(1.5);
    expect(cgroupCpuSeconds({ v2CpuStat: 'user_usec 5\n', v1Usage: '2000000000' })).toBe(2);
  });

  it('is null when neither can be read', () => {
    expect(cgroupCpuSeconds({})).toBeNull();
    expect(cgroupCpuSeconds({ v2CpuStat: null, v1Usage: 'n/a' })).toBeNull();
  });
});
