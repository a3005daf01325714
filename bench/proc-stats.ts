/**
 * What a benchmarked process has used, read from /proc: CPU time and resident memory, summed over
 * the process and its descendants (nginx's master and worker; a single Node process is a tree of
 * one).
 */
import { readFileSync } from 'node:fs';

/** A process and its descendants, by pid. */
function processTree(pid: number): number[] {
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) {
    try {
      for (const child of readFileSync(`/proc/${pids[i]}/task/${pids[i]}/children`, 'utf8').trim().split(/\s+/)) if (child !== '') pids.push(Number(child));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** Reads one /proc file of each process in the tree and sums what `pick` takes from it; NaN when the process itself is gone. */
function sumOverTree(pid: number, file: string, pick: (text: string) => number): number {
  let sum = 0;
  for (const id of processTree(pid)) {
    try {
      sum += pick(readFileSync(`/proc/${id}/${file}`, 'utf8'));
    } catch {
      if (id === pid) return Number.NaN; // a descendant may go meanwhile; the process itself may not
    }
  }
  return sum;
}

/** Resident memory, bytes (NaN when the process is gone). */
export function residentBytes(pid: number): number {
  return 1024 * sumOverTree(pid, 'status', (text) => Number(/^VmRSS:\s+(\d+) kB/m.exec(text)?.[1] ?? 0));
}

/** CPU time used so far (user + system), seconds, in clock ticks of 1/100 s (NaN when the process is gone). */
export function cpuSeconds(pid: number): number {
  // Fields after the command name, which is in parentheses and may hold spaces: utime and stime are the 12th and 13th.
  return sumOverTree(pid, 'stat', (text) => {
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  });
}

/** The CPUs a Cpus_allowed_list names (`0-1,3`: 0, 1 and 3); null when it cannot be read. */
export function allowedCpus(list: string | undefined): ReadonlySet<number> | null {
  if (list === undefined || !/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(list.trim())) return null;
  const cpus = new Set<number>();
  for (const part of list.trim().split(',')) {
    const [from, to = from] = part.split('-').map(Number) as [number, number?];
    for (let cpu = from; cpu <= to!; cpu++) cpus.add(cpu);
  }
  return cpus;
}

/**
 * Busy ticks (user, nice, system, irq, softirq: steal is time the host gave elsewhere) of the CPUs
 * in `cpus`, from /proc/stat's text; of every CPU when `cpus` is null. The machine's total counted
 * the work of cores this process may not run on (another tenant's, under taskset or a container's
 * cpuset), and called it this run's.
 */
export function busyTicks(procStat: string, cpus: ReadonlySet<number> | null): number {
  let sum = 0;
  for (const line of procStat.split('\n')) {
    const match = /^cpu(\d*)\s+(.*)$/.exec(line);
    if (match === null) continue;
    const isTotal = match[1] === '';
    if (cpus === null ? !isTotal : isTotal || !cpus.has(Number(match[1]))) continue;
    const [user, nice, system, , , irq, softirq] = match[2]!.trim().split(/\s+/).map(Number) as number[];
    sum += user! + nice! + system! + irq! + softirq!;
  }
  return sum;
}

/**
 * CPU seconds used so far by everything in a cgroup: v2 `cpu.stat`'s usage_usec, else v1
 * `cpuacct.usage` (ns); null when neither can be read. Under a CPU quota this is the run's own
 * machine time: the busy ticks of the cores (busyTicks) also count other tenants sharing them,
 * which a quota, unlike a cpuset, does not keep off.
 */
export function cgroupCpuSeconds(files: { readonly v2CpuStat?: string | null; readonly v1Usage?: string | null }): number | null {
  const usec = files.v2CpuStat == null ? undefined : /^usage_usec\s+(\d+)$/m.exec(files.v2CpuStat)?.[1];
  if (usec !== undefined) return Number(usec) / 1e6;
  const ns = files.v1Usage?.trim();
  return ns !== undefined && /^\d+$/.test(ns) ? Number(ns) / 1e9 : null;
}
