/**
 * At most one call per interval, for warnings a failure repeats (a registry connection error at
 * every retry, a flood of faults from one client). On the monotonic clock: on Date.now(), a step
 * of the system clock back by an hour silenced every throttled warning for that hour (found by
 * review).
 */
import { monotonicNow } from './monotonic-clock.js';

export function throttle<A extends unknown[]>(intervalMs: number, fn: (...args: A) => void): (...args: A) => void {
  let last = -Infinity;
  return (...args) => {
    const now = monotonicNow();
    if (now - last < intervalMs) return;
    last = now;
    fn(...args);
  };
}
