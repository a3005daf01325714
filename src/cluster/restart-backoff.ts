/**
 * How long the primary waits before replacing a worker that died: doubling from 200 ms to 5 s
 * while a slot's workers keep dying, back to the start once one has lived a minute. Pure.
 *
 * Without the reset, six crashes spread over weeks left every later replacement waiting 5 s, a
 * fifth of the router's capacity gone that long each time for no reason.
 */
export const STABLE_AFTER_MS = 60_000;
const FIRST_DELAY_MS = 200;
const MAX_DELAY_MS = 5_000;

/** The slot's deaths in a row, counting this one: a worker that lived STABLE_AFTER_MS starts the count again. */
export function deathsInRow(previousInRow: number, livedMs: number): number {
  return livedMs >= STABLE_AFTER_MS ? 1 : previousInRow + 1;
}

/**
 * How long a worker served, for deathsInRow: from its listening to `stoppedAt` (its drain, or its
 * death), 0 when it never listened. Not from its fork: a worker stuck in its start is killed at the
 * start deadline, 60 s, as long as STABLE_AFTER_MS, and counted from its fork each such death
 * started the count again; every slot stuck so was re-forked for ever at the first delay, and the
 * crash loop that should stop the router was never seen.
 */
export function servedMs(listenedAt: number | undefined, stoppedAt: number): number {
  return listenedAt === undefined ? 0 : Math.max(0, stoppedAt - listenedAt);
}

/** The wait before the replacement for the `inRow`-th death in a row (1, 2, …). */
export function restartDelayMs(inRow: number): number {
  return Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** Math.min(Math.max(inRow - 1, 0), 5));
}

/** Deaths in a row of every slot, with no worker having served yet, that make a crash loop. */
export const CRASH_LOOP_DEATHS = 5;

/**
 * Whether the router should give up rather than fork again: no worker has begun to serve since the
 * primary started, and every slot has had CRASH_LOOP_DEATHS deaths in a row (an OOM kill of each
 * worker as it starts, a crash in its start). Retried for ever, the primary stayed up serving
 * nothing, its supervisor (systemd, Kubernetes) never told. Once any worker has served, a failing
 * slot is one worker's trouble, and is retried with backoff while the others serve.
 */
export function crashLooping(deathsBySlot: ReadonlyMap<number, number>, workers: number, everServed: boolean): boolean {
  if (everServed) return false;
  for (let slot = 0; slot < workers; slot++) if ((deathsBySlot.get(slot) ?? 0) < CRASH_LOOP_DEATHS) return false;
  return true;
}
