/**
 * The primary's judgement of a hung worker (heartbeat-watch.ts), over a real MessageLink pair with
 * a short heartbeat period: who is judged, after how long, and that the primary's own stall is not
 * taken for the worker's silence.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { answerHeartbeats, watchHeartbeat, type Silence } from '../../src/cluster/heartbeat-watch.js';
import { linkedPair, type LinkedPair } from '../support/linked-pair.js';
import { until } from '../support/until.js';

const EVERY_MS = 50;
const HUNG_AFTER_MS = 4 * EVERY_MS;

let pair: LinkedPair | undefined;
const stops: Array<() => void> = [];
afterEach(() => {
  stops.splice(0).forEach((stop) => stop());
  pair?.close();
});

/** Watches the worker end of a new pair; `answering` decides whether it answers heartbeats at all. */
function watched(options: { answering: boolean; answerAfterMs?: number; serving?: () => boolean; started?: () => boolean; startDeadlineMs?: number }): { judged: Silence[] } {
  pair = linkedPair();
  const { answerAfterMs } = options;
  // A worker that never answers: its heartbeats wait until they expire.
  if (!options.answering) pair.worker.handle('worker.heartbeat', () => new Promise(() => undefined));
  // One that answers each, late (its event loop lags that long behind).
  else if (answerAfterMs !== undefined) pair.worker.handle('worker.heartbeat', () => new Promise((resolve) => setTimeout(resolve, answerAfterMs)));
  else answerHeartbeats(pair.worker);
  const judged: Silence[] = [];
  stops.push(
    watchHeartbeat(pair.primary, {
      hungAfterMs: HUNG_AFTER_MS,
      everyMs: EVERY_MS,
      startDeadlineMs: options.startDeadlineMs ?? 60_000,
      serving: options.serving ?? (() => true),
      started: options.started ?? (() => true),
      onHung: (silence) => judged.push(silence),
    }),
  );
  return { judged };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Holds this thread, the primary's, as a stalled primary is held: no timer fires, no message is read. */
function stall(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

describe('watchHeartbeat', () => {
  it('judges a started worker that never answers, counted from its start', async () => {
    const { judged } = watched({ answering: false });
    await until('judged', () => judged.length > 0, 20 * HUNG_AFTER_MS);
    expect(judged).toEqual([expect.objectContaining({ countedFrom: 'start' })]);
    // Both are rounded to the millisecond: a silence of 200.3 ms over a threshold of 200 reads 200.
    const { silentMs, heardMsAgo } = judged[0]!;
    expect(silentMs).toBeGreaterThanOrEqual(HUNG_AFTER_MS);
    expect(heardMsAgo).toBeGreaterThanOrEqual(silentMs);
  });

  it('judges a worker stuck after it began to serve and before it announced itself, counted from then', async () => {
    // Counted from its announce, it was never judged: it took connections, and every admin write stayed "pending".
    const { judged } = watched({ answering: false, started: () => false });
    await until('judged', () => judged.length > 0, 20 * HUNG_AFTER_MS);
    expect(judged).toEqual([expect.objectContaining({ countedFrom: 'listening' })]);
    expect(judged[0]!.silentMs).toBeGreaterThanOrEqual(HUNG_AFTER_MS);
  });

  it('leaves alone a worker that answers, and one that does not serve yet', async () => {
    const answering = watched({ answering: true });
    await sleep(6 * HUNG_AFTER_MS);
    expect(answering.judged).toEqual([]);
    pair?.close();
    const notServing = watched({ answering: false, serving: () => false });
    await sleep(3 * HUNG_AFTER_MS);
    expect(notServing.judged).toEqual([]);
  });

  it('leaves alone a worker that answers every heartbeat later than the heartbeat period, well within the threshold', async () => {
    // Before, each heartbeat expired at the period and a late answer was thrown away: a worker
    // whose loop lagged 1.5 periods (a starved container, long GC pauses) was killed as hung.
    const { judged } = watched({ answering: true, answerAfterMs: 1.5 * EVERY_MS });
    await sleep(4 * HUNG_AFTER_MS);
    expect(judged).toEqual([]);
  });

  it('judges a worker that has not begun to serve by its start deadline (stuck in its start), and not before', async () => {
    // Not serving, it was never judged at all: one short for good, every admin write "pending".
    for (const answering of [false, true]) {
      const { judged } = watched({ answering, serving: () => false, startDeadlineMs: 2 * HUNG_AFTER_MS });
      await sleep(HUNG_AFTER_MS);
      expect(judged).toEqual([]);
      await until('judged', () => judged.length > 0, 20 * HUNG_AFTER_MS);
      expect(judged).toEqual([expect.objectContaining({ countedFrom: 'fork' })]);
      expect(judged[0]!.silentMs).toBeGreaterThanOrEqual(2 * HUNG_AFTER_MS);
      pair?.close();
      stops.splice(0).forEach((stop) => stop());
    }
  });

  it('does not take the time its primary was stalled for the start of a worker that begins to serve in time', async () => {
    let listening = false;
    const { judged } = watched({ answering: true, serving: () => listening, startDeadlineMs: 2 * HUNG_AFTER_MS });
    await sleep(2 * EVERY_MS);
    stall(3 * HUNG_AFTER_MS); // past the deadline by the wall, one period by the primary's looks
    // As a held primary does, its timers fire before it reads the worker's 'listening': a look or two still starting.
    await sleep(2 * EVERY_MS);
    listening = true;
    await sleep(4 * EVERY_MS);
    expect(judged).toEqual([]);
  });

  it('does not take the time its primary was stalled for the silence of a worker that answers', async () => {
    const { judged } = watched({ answering: true });
    // Heard from once: the silence is counted from that answer from now on.
    await sleep(4 * EVERY_MS);
    // A primary held well past the threshold (a core taken by others, a paused VM, the wall clock
    // stepped forward): on its return its timers fire before it reads the answers that came
    // meanwhile. The worker answered every heartbeat it was sent.
    stall(3 * HUNG_AFTER_MS);
    await sleep(4 * EVERY_MS);
    expect(judged).toEqual([]);
  });
});
