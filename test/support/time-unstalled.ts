/**
 * Times a change that a test bounds (a registry write seen by a watcher, a pushed event) and tells
 * the change's delay apart from the test process's own: on a loaded machine one turn of the event
 * loop can wait hundreds of milliseconds for a core, and that wait is the machine's, not the
 * change's. It never loosens the bound: the caller still compares the timing with it.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';

export interface UnstalledOptions {
  /** A timing during which a turn of the loop came later than this (ms) is taken again. */
  readonly stallMs?: number;
  /** How many timings at most, the first included. */
  readonly attempts?: number;
}

/**
 * Runs `change` (resolving once its effect is seen) and returns how long it took in ms. When the
 * loop was held up for more than `stallMs` meanwhile, `reset` undoes the change and it is timed
 * again, up to `attempts` timings; the last is returned however it went, so a change that holds
 * the loop itself on every attempt is still judged by its timing.
 */
export async function timeUnstalled(change: () => Promise<void>, reset: () => Promise<void>, options: UnstalledOptions = {}): Promise<number> {
  const { stallMs = 100, attempts = 4 } = options;
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  try {
    for (let attempt = 1; ; attempt++) {
      delay.reset();
      const started = performance.now();
      await change();
      const ms = performance.now() - started;
      // The histogram holds how late its 10 ms timer fired, in ns.
      if (delay.max / 1e6 <= stallMs || attempt >= attempts) return ms;
      await reset();
    }
  } finally {
    delay.disable();
  }
}
