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
