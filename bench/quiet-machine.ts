/** The benchmarks' first check: a machine busy with other work would make their ratios noise. */
import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { BenchError, wasInterrupted } from './services.js';

/**
 * Waits up to `waitSeconds` for the 1-minute load average to fall to `maxLoad` (the build that
 * `npm run bench…` runs first lifts it by itself), and refuses, saying why, when it does not.
 */
export async function waitForQuietMachine(maxLoad: number, waitSeconds: number): Promise<void> {
  let load = loadavg()[0] ?? 0;
  for (let waited = 0; load > maxLoad && waited < waitSeconds && !wasInterrupted(); waited += 5) {
    if (waited === 0) console.log(`load average ${load.toFixed(2)} is above ${maxLoad}: waiting up to ${waitSeconds} s for the machine to quieten…`);
    await sleep(5_000);
    load = loadavg()[0] ?? 0;
  }
  if (load > maxLoad) {
    throw new BenchError(`refusing to run: the 1-minute load average is ${load.toFixed(2)}, above ${maxLoad} (BENCH_MAX_LOAD), after waiting ${waitSeconds} s. Other work is running, and the ratios would measure it. Wait for a quiet machine (or raise BENCH_MAX_LOAD and say so beside the numbers).`);
  }
  console.log(`load average before the run: ${load.toFixed(2)} (at most ${maxLoad})`);
}
