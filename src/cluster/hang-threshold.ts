/**
 * When the primary judges a worker hung (heartbeat-watch.ts): it asks each serving worker for a
 * heartbeat every HEARTBEAT_EVERY_MS, and kills one that has answered none for the threshold, or
 * that has not begun to serve by its start deadline.
 *
 * The threshold is 20 s, far beyond any pause of a working router; the start deadline 60 s. Only
 * the tests that prove the judgements set them lower, through EDGE_ROUTER_TEST_HUNG_AFTER_MS and
 * EDGE_ROUTER_TEST_START_DEADLINE_MS (the same code path, without waiting the full time per test);
 * they are no operator settings, so they have no flag and no line in --help.
 */
import { ConfigError } from '../core/errors.js';
export const HEARTBEAT_EVERY_MS = 2_000;
export const HUNG_AFTER_MS = 20_000;
export const HUNG_AFTER_ENV = 'EDGE_ROUTER_TEST_HUNG_AFTER_MS';

/**
 * How long a worker may take from its fork to listening. A start reads its files and asks the
 * registry, each bounded in seconds (Redis commands time out in 2 s), and took 20 s on a shared
 * 2-core machine at a load of 12 (test/support/process.ts); one stuck before it listens (a loop,
 * an await that never settles) was never judged: it never served, so its silence was never
 * counted, its slot stayed one worker short, and every admin write answered "pending" waiting for
 * it to announce itself.
 */
export const START_DEADLINE_MS = 60_000;
export const START_DEADLINE_ENV = 'EDGE_ROUTER_TEST_START_DEADLINE_MS';

/**
 * Below two heartbeat periods, a working worker whose answer is one period late would be killed;
 * a shorter value is refused rather than quietly raised (a test would wait longer than it thinks).
 */
const SHORTEST_HUNG_AFTER_MS = 2 * HEARTBEAT_EVERY_MS;

/** Below this, a start on a busy machine could be taken for a stuck one. */
const SHORTEST_START_DEADLINE_MS = 10_000;

/**
 * A test-only length in `env`, `longest` when unset; throws a ConfigError (one line, exit 2; a
 * plain Error was printed as an unexpected one, with its stack, exit 1), naming the variable, on
 * any other value. The variable only shortens (what a test needs): a longer one, leaked into a router's
 * environment, would leave a stuck worker holding its slot that much longer, and a long enough
 * number of digits reads as Infinity, which turns the judgement off altogether.
 */
function shortenedBy(env: Readonly<Record<string, string | undefined>>, variable: string, shortest: number, longest: number): number {
  const text = env[variable];
  if (text === undefined || text === '') return longest;
  const ms = Number(text);
  if (!/^\d+$/.test(text) || ms < shortest || ms > longest) {
    throw new ConfigError(`${variable} must be a whole number of milliseconds, at least ${shortest} and at most ${longest} (got ${JSON.stringify(text.slice(0, 40))})`);
  }
  return ms;
}

/** The hang threshold in `env` (HUNG_AFTER_MS when unset). */
export function hungAfterMs(env: Readonly<Record<string, string | undefined>>): number {
  return shortenedBy(env, HUNG_AFTER_ENV, SHORTEST_HUNG_AFTER_MS, HUNG_AFTER_MS);
}

/** The start deadline in `env` (START_DEADLINE_MS when unset). */
export function startDeadlineMs(env: Readonly<Record<string, string | undefined>>): number {
  return shortenedBy(env, START_DEADLINE_ENV, SHORTEST_START_DEADLINE_MS, START_DEADLINE_MS);
}
