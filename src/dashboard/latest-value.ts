/**
 * The last value a slow source gave, read without waiting for it: the live stream pushes region
 * changes from the router's own snapshot every tick, and must not sit behind a registry read
 * (the event log is a Redis round trip, up to its 2 s command timeout when Redis hangs).
 */
export interface LatestValue<T> {
  /** The last value `refresh` settled with (undefined until one has); starts a refresh when due. */
  (): T | undefined;
}

/**
 * `refresh` runs at most once per `everyMs`, and never twice at once (a read still pending when
 * the next is due is waited for, not joined by another). A refresh that rejects keeps the last
 * value: a failed read says nothing new. Timed on the monotonic clock: on the wall clock, a step
 * back (NTP, a VM resumed) froze the value for as long as the step.
 */
export function latestValue<T>(everyMs: number, refresh: () => Promise<T>, now: () => number = () => performance.now()): LatestValue<T> {
  let value: T | undefined;
  let startedAt = -Infinity;
  let pending = false;
  return () => {
    const at = now();
    if (!pending && at - startedAt >= everyMs) {
      startedAt = at;
      pending = true;
      refresh().then(
        (next) => {
          value = next;
        },
        () => undefined,
      ).finally(() => {
        pending = false;
      });
    }
    return value;
  };
}
