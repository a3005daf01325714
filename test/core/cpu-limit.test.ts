import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cpuQuota, quotaCpus, usableCores } from '../../src/core/cpu-limit.js';

describe('cpuQuota', () => {
  it('reads a cgroup v2 cpu.max, rounding a fraction of a CPU up', () => {
    expect(cpuQuota({ v2CpuMax: '200000 100000\n' })).toBe(2);
    expect(cpuQuota({ v2CpuMax: '150000 100000' })).toBe(2);
    expect(cpuQuota({ v2CpuMax: '50000 100000' })).toBe(1);
    expect(cpuQuota({ v2CpuMax: 'max 100000\n' })).toBeNull();
  });

  it('reads cgroup v1 quota and period; -1 is no limit', () => {
    expect(cpuQuota({ v1Quota: '400000\n', v1Period: '100000\n' })).toBe(4);
    expect(cpuQuota({ v1Quota: '-1', v1Period: '100000' })).toBeNull();
  });

  it('is null without cgroup files (not Linux, or no controller)', () => {
    expect(cpuQuota({})).toBeNull();
    expect(cpuQuota({ v2CpuMax: null, v1Quota: null, v1Period: null })).toBeNull();
  });
});

describe('quotaCpus', () => {
  it('gives the quota unrounded (a benchmark\'s capacity), null for none', () => {
    expect(quotaCpus({ v2CpuMax: '150000 100000' })).toBe(1.5);
    expect(quotaCpus({ v2CpuMax: '50000 100000' })).toBe(0.5);
    expect(quotaCpus({ v1Quota: '250000', v1Period: '100000' })).toBe(2.5);
    expect(quotaCpus({ v2CpuMax: 'max 100000' })).toBeNull();
  });
});

describe('usableCores', () => {
  it('takes the smaller of the CPUs and the quota', async () => {
    const root = await mkdtemp(join(tmpdir(), 'edge-cgroup-'));
    await writeFile(join(root, 'cpu.max'), '100000 100000\n');
    expect(await usableCores(root)).toBe(1);
    const v1 = await mkdtemp(join(tmpdir(), 'edge-cgroup-'));
    await mkdir(join(v1, 'cpu'));
    await writeFile(join(v1, 'cpu', 'cpu.cfs_quota_us'), '-1\n');
    await writeFile(join(v1, 'cpu', 'cpu.cfs_period_us'), '100000\n');
    expect(await usableCores(v1)).toBe(availableParallelism());
  });
});
