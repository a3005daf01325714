/**
 * How many cores this process may really use: the smaller of the CPUs it may run on and a
 * container's CPU quota. Node 20's `availableParallelism()` sees the CPUs (affinity) but not the
 * quota, so a router in a container limited to 2 CPUs on a 64-core host would start 64 workers,
 * all throttled. Kubernetes and Docker `--cpus` set the quota through cgroups (v2: `cpu.max`;
 * v1: `cpu.cfs_quota_us` / `cpu.cfs_period_us`).
 */
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';

export interface CgroupCpuFiles {
  /** cgroup v2 `cpu.max`: "max 100000" or "<quota> <period>". */
  readonly v2CpuMax?: string | null;
  /** cgroup v1 `cpu.cfs_quota_us` (-1 = no limit) and `cpu.cfs_period_us`. */
  readonly v1Quota?: string | null;
  readonly v1Period?: string | null;
}

/** Whole CPUs the quota allows (rounded up: 1.5 CPUs keep 2 workers busy), or null for no quota. */
export function cpuQuota(files: CgroupCpuFiles): number | null {
  const cpus = quotaCpus(files);
  return cpus === null ? null : Math.max(1, Math.ceil(cpus));
}

/** The CPU time the quota allows, in CPUs and unrounded (1.5): what a benchmark may count as the machine's capacity. Null for no quota. */
export function quotaCpus(files: CgroupCpuFiles): number | null {
  const ratio = (quota: number, period: number) => (quota > 0 && period > 0 ? quota / period : null);
  if (files.v2CpuMax != null) {
    const [quota, period] = files.v2CpuMax.trim().split(/\s+/);
    if (quota === 'max') return null;
    return ratio(Number(quota), Number(period ?? 100_000));
  }
  if (files.v1Quota != null && files.v1Period != null) return ratio(Number(files.v1Quota.trim()), Number(files.v1Period.trim()));
  return null;
}

const read = (path: string) => readFile(path, 'utf8').catch(() => null);

/** The quota's files as this process's cgroup mount shows them (v2 first, then v1's two layouts). */
export async function readCgroupCpuFiles(root = '/sys/fs/cgroup'): Promise<CgroupCpuFiles> {
  return {
    v2CpuMax: await read(`${root}/cpu.max`),
    v1Quota: (await read(`${root}/cpu/cpu.cfs_quota_us`)) ?? (await read(`${root}/cpu,cpuacct/cpu.cfs_quota_us`)),
    v1Period: (await read(`${root}/cpu/cpu.cfs_period_us`)) ?? (await read(`${root}/cpu,cpuacct/cpu.cfs_period_us`)),
  };
}

/** Start-up only: the default number of router workers. */
export async function usableCores(root = '/sys/fs/cgroup'): Promise<number> {
  const quota = cpuQuota(await readCgroupCpuFiles(root));
  return quota === null ? availableParallelism() : Math.min(availableParallelism(), quota);
}
