/**
 * When the primary judges a worker hung (heartbeat-watch.ts): it asks each serving worker for a
 * heartbeat every HEARTBEAT_EVERY_MS, and kills one that has answered none for the threshold.
 *
 * The threshold is 20 s, far beyond any pause of a working router. Only the tests that prove the
 * judgement set it lower, through EDGE_ROUTER_TEST_HUNG_AFTER_MS (the same code path, without
 * waiting 20 s per test); it is no operator setting, so it has no flag and no line in --help.
 */
export const HEARTBEAT_EVERY_MS = 2_000;
export const HUNG_AFTER_MS = 20_000;

/**
 * How long a worker may take from its fork to listening, as a multiple of the hang threshold (60 s
 * by default). A start reads its files and asks the registry, each bounded in seconds (Redis
 * commands time out in 2 s); one stuck before it listens (a loop, an await that never settles) was
 * never judged: it never served, so its silence was never counted, its slot stayed one worker
 * short, and every admin write answered "pending" waiting for it to announce itself.
 */
export const START_DEADLINE_FACTOR = 3;
export const HUNG_AFTER_ENV = 'EDGE_ROUTER_TEST_HUNG_AFTER_MS';

/**
 * Below two heartbeat periods, a working worker whose answer is one period late would be killed;
 * a shorter value is refused rather than quietly raised (a test would wait longer than it thinks).
 */
const SHORTEST_MS = 2 * HEARTBEAT_EVERY_MS;

/**
 * The variable only shortens the threshold (what a test needs): a longer one, leaked into a
 * router's environment, would leave a stuck worker holding its connections that much longer, and a
 * long enough number of digits reads as Infinity, which turns the judgement off altogether.
 */
const LONGEST_MS = HUNG_AFTER_MS;

/** The hang threshold in `env` (HUNG_AFTER_MS when unset); throws, naming the variable, on any other value. */
export function hungAfterMs(env: Readonly<Record<string, string | undefined>>): number {
  const text = env[HUNG_AFTER_ENV];
  if (text === undefined || text === '') return HUNG_AFTER_MS;
  const ms = Number(text);
  if (!/^\d+$/.test(text) || ms < SHORTEST_MS || ms > LONGEST_MS) {
    throw new Error(`${HUNG_AFTER_ENV} must be a whole number of milliseconds, at least ${SHORTEST_MS} and at most ${LONGEST_MS} (got ${JSON.stringify(text.slice(0, 40))})`);
  }
  return ms;
}
