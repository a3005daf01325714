import { describe, expect, it, vi } from 'vitest';
import { monotonicNow } from '../../src/core/monotonic-clock.js';
import { CapacityError, ColdStartAbandoned, ContainerPool, type ContainerPoolOptions, type Lease } from '../../src/orchestrator/container-pool.js';

const COLD_START_MS = 100;

/** A clock the test moves by hand: `sleep` resolves only when `advance` passes its time. Nothing really waits. */
class FakeClock {
  ms = 0;
  private readonly sleepers: Array<{ at: number; wake: () => void }> = [];
  readonly now = (): number => this.ms;
  readonly sleep = (ms: number): Promise<void> => new Promise((wake) => this.sleepers.push({ at: this.ms + ms, wake }));

  /** Moves time on, wakes every sleeper that is due and lets the pool's promise chains settle. */
  async advance(ms: number): Promise<void> {
    this.ms += ms;
    for (let i = this.sleepers.length - 1; i >= 0; i--) {
      const sleeper = this.sleepers[i]!;
      if (sleeper.at <= this.ms) {
        this.sleepers.splice(i, 1);
        sleeper.wake();
      }
    }
    await settle();
  }
}

/** Lets pending promise callbacks run (one macrotask turn; no timers involved). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

function poolWith(options: Partial<ContainerPoolOptions> = {}): { pool: ContainerPool; clock: FakeClock } {
  const clock = new FakeClock();
  const pool = new ContainerPool({
    maxContainers: 2,
    queueLimit: 2,
    coldStartMs: () => COLD_START_MS,
    keepAliveMs: 1_000,
    now: clock.now,
    sleep: clock.sleep,
    ...options,
  });
  return { pool, clock };
}

/** Watches a promise without awaiting it, so the test can ask whether it has settled yet. */
function track<T>(promise: Promise<T>): { settled: () => boolean; value: () => T | undefined; error: () => unknown } {
  let done = false;
  let value: T | undefined;
  let error: unknown;
  promise.then(
    (v) => {
      done = true;
      value = v;
    },
    (e: unknown) => {
      done = true;
      error = e;
    },
  );
  return { settled: () => done, value: () => value, error: () => error };
}

/** Acquires and finishes the cold start. */
async function leaseOf(pool: ContainerPool, clock: FakeClock, fnKey: string, deadlineAt = Number.MAX_SAFE_INTEGER): Promise<Lease> {
  const pending = track(pool.acquire(fnKey, deadlineAt));
  await settle();
  if (!pending.settled()) await clock.advance(COLD_START_MS);
  if (pending.error() !== undefined) throw pending.error();
  const lease = pending.value();
  if (lease === undefined) throw new Error(`no lease for ${fnKey}`);
  return lease;
}

describe('ContainerPool', () => {
  it('cold-starts the first request of a function and reuses the warm container for the next', async () => {
    const { pool, clock } = poolWith();
    const first = track(pool.acquire('acme/hello', Number.MAX_SAFE_INTEGER));
    await clock.advance(COLD_START_MS - 1);
    expect(first.settled()).toBe(false);
    await clock.advance(1);
    const cold = first.value()!;
    expect(cold).toMatchObject({ cold: true, waitedMs: COLD_START_MS, queuedMs: 0 });
    expect(cold.container).toMatchObject({ fnKey: 'acme/hello', state: 'busy', requests: 1 });

    await clock.advance(30);
    pool.release(cold.container);
    expect(cold.container).toMatchObject({ state: 'idle', lastUsedAt: COLD_START_MS + 30 });

    const warm = await pool.acquire('acme/hello', Number.MAX_SAFE_INTEGER);
    expect(warm.cold).toBe(false);
    expect(warm.waitedMs).toBe(0);
    expect(warm.queuedMs).toBe(0);
    expect(warm.container).toBe(cold.container);
    expect(warm.container.requests).toBe(2);
    expect({ coldStarts: pool.coldStarts, warmStarts: pool.warmStarts, rejected: pool.rejected }).toEqual({ coldStarts: 1, warmStarts: 1, rejected: 0 });
  });

  it('gives a second concurrent request for the same function a second container (one request per container)', async () => {
    const { pool, clock } = poolWith();
    const a = track(pool.acquire('acme/hello', Number.MAX_SAFE_INTEGER));
    const b = track(pool.acquire('acme/hello', Number.MAX_SAFE_INTEGER));
    await clock.advance(COLD_START_MS);
    expect(a.value()!.cold).toBe(true);
    expect(b.value()!.cold).toBe(true);
    expect(a.value()!.container.id).not.toBe(b.value()!.container.id);
    expect(pool.coldStarts).toBe(2);
    expect(pool.stats()).toMatchObject({ inFlight: 2, containers: 2, warmContainers: 2, queued: 0 });
  });

  it('does not hand a busy container to another request, even of the same function', async () => {
    const { pool, clock } = poolWith({ maxContainers: 1 });
    const busy = await leaseOf(pool, clock, 'acme/hello');
    const next = track(pool.acquire('acme/hello', Number.MAX_SAFE_INTEGER));
    await clock.advance(10 * COLD_START_MS);
    expect(next.settled()).toBe(false);
    expect(busy.container.requests).toBe(1);
  });

  it('queues a request once every container is taken', async () => {
    const { pool, clock } = poolWith({ maxContainers: 2, queueLimit: 5 });
    await leaseOf(pool, clock, 'acme/a');
    await leaseOf(pool, clock, 'acme/b');
    const waiting = track(pool.acquire('acme/c', Number.MAX_SAFE_INTEGER));
    await clock.advance(10 * COLD_START_MS);
    expect(waiting.settled()).toBe(false);
    expect(pool.stats()).toMatchObject({ inFlight: 2, containers: 2, queued: 1 });
    expect(pool.rejected).toBe(0);
  });

  it.each([
    { queueLimit: 0, queuedFirst: 0 },
    { queueLimit: 1, queuedFirst: 1 },
    { queueLimit: 3, queuedFirst: 3 },
  ])('with queueLimit $queueLimit and the queue full, rejects at once with CapacityError (retry after 1 s)', async ({ queueLimit, queuedFirst }) => {
    const { pool, clock } = poolWith({ maxContainers: 1, queueLimit });
    await leaseOf(pool, clock, 'acme/a');
    for (let i = 0; i < queuedFirst; i++) void pool.acquire('acme/a', Number.MAX_SAFE_INTEGER).catch(() => undefined);
    expect(pool.stats().queued).toBe(queuedFirst);

    const refused = track(pool.acquire('acme/a', Number.MAX_SAFE_INTEGER));
    await settle(); // no time passes: the refusal does not wait
    expect(refused.error()).toBeInstanceOf(CapacityError);
    expect(refused.error()).toMatchObject({ retryAfterS: 1, message: 'the region is at capacity' });
    expect(pool.rejected).toBe(1);
    expect(pool.stats().queued).toBe(queuedFirst);
    pool.rejectAll('test over');
  });

  it.each([
    { waiter: 'acme/a', cold: false, served: 'reuses the released container, warm' },
    { waiter: 'acme/b', cold: true, served: 'recycles the released idle container and cold-starts one of its own' },
  ])('a queued request for $waiter, when acme/a releases a container, $served', async ({ waiter, cold }) => {
    const { pool, clock } = poolWith({ maxContainers: 1 });
    const held = await leaseOf(pool, clock, 'acme/a');
    const waiting = track(pool.acquire(waiter, Number.MAX_SAFE_INTEGER));
    await clock.advance(50);
    expect(waiting.settled()).toBe(false);

    pool.release(held.container);
    await settle();
    if (cold) {
      expect(waiting.settled()).toBe(false); // starting
      expect(pool.stats()).toMatchObject({ inFlight: 1, warmContainers: 0, warmFunctions: [] });
      await clock.advance(COLD_START_MS);
    }
    const lease = waiting.value()!;
    expect(lease.cold).toBe(cold);
    expect(lease.container.fnKey).toBe(waiter);
    expect(lease.container === held.container).toBe(!cold);
    // Waited in the queue from the moment it asked (plus its cold start, if any).
    expect(lease.waitedMs).toBe(50 + (cold ? COLD_START_MS : 0));
    // Of which the queue alone: its cold start held the slot it was given (service, not queueing).
    expect(lease.queuedMs).toBe(50);
    expect(pool.stats()).toMatchObject({ inFlight: 1, containers: 1, queued: 0, warmFunctions: [waiter] });
  });

  it('kill() frees a busy container\'s slot for the next waiter, which cold-starts a container of its own; a release after it gives nothing back', async () => {
    const { pool, clock } = poolWith({ maxContainers: 1 });
    const held = await leaseOf(pool, clock, 'acme/a');
    const waiting = track(pool.acquire('acme/a', Number.MAX_SAFE_INTEGER));
    await clock.advance(50);
    pool.kill(held.container);
    await clock.advance(COLD_START_MS);
    const lease = waiting.value()!;
    expect(lease.cold).toBe(true);
    expect(lease.container === held.container).toBe(false);
    pool.release(held.container); // the killed function's end, late: its container is gone
    const after = track(pool.acquire('acme/a', Number.MAX_SAFE_INTEGER));
    await clock.advance(10 * COLD_START_MS);
    expect(after.settled()).toBe(false); // the one slot is the new container's, still busy
    expect(pool.stats()).toMatchObject({ inFlight: 1, containers: 1, queued: 1 });
    pool.rejectAll('test over');
  });

  it('serves waiters in arrival order', async () => {
    const { pool, clock } = poolWith({ maxContainers: 1, queueLimit: 3 });
    const held = await leaseOf(pool, clock, 'acme/a');
    const first = track(pool.acquire('acme/a', Number.MAX_SAFE_INTEGER));
    const second = track(pool.acquire('acme/a', Number.MAX_SAFE_INTEGER));
    pool.release(held.container);
    await settle();
    expect(first.value()?.container).toBe(held.container);
    expect(second.settled()).toBe(false);
    pool.release(held.container);
    await settle();
    expect(second.value()?.container).toBe(held.container);
  });

  it('at capacity, frees a slot by recycling the least recently used idle container of another function', async () => {
    const { pool, clock } = poolWith({ maxContainers: 2 });
    const a = await leaseOf(pool, clock, 'acme/a');
    const b = await leaseOf(pool, clock, 'acme/b');
    await clock.advance(10);
    pool.release(a.container); // used at t = 210
    await clock.advance(10);
    pool.release(b.container); // used at t = 220

    const c = await leaseOf(pool, clock, 'acme/c');
    expect(c.cold).toBe(true);
    expect(pool.stats()).toMatchObject({ containers: 2, warmFunctions: expect.arrayContaining(['acme/b', 'acme/c']) as unknown });
    expect(pool.stats().warmFunctions).not.toContain('acme/a');
    // acme/b is still warm; acme/a starts cold again.
    pool.release(c.container);
    expect((await leaseOf(pool, clock, 'acme/b')).container).toBe(b.container);
    expect((await leaseOf(pool, clock, 'acme/a')).cold).toBe(true);
  });

  it('takes a waiter whose client left out of the queue at once, and takes no container for a client already gone', async () => {
    const { pool, clock } = poolWith({ maxContainers: 1, queueLimit: 1 });
    const held = await leaseOf(pool, clock, 'acme/a');
    const leaving = new AbortController();
    const left = track(pool.acquire('acme/a', Number.MAX_SAFE_INTEGER, leaving.signal));
    const stays = new AbortController();
    expect(pool.stats().queued).toBe(1);
    leaving.abort(new Error('client went away'));
    await settle();
    expect(left.error()).toMatchObject({ message: 'client went away' });
    expect(pool.stats().queued).toBe(0);
    // Its slot is free for the next request, which gets the container when it is given back.
    const next = track(pool.acquire('acme/a', Number.MAX_SAFE_INTEGER, stays.signal));
    pool.release(held.container);
    await settle();
    expect(next.value()?.container).toBe(held.container);
    // A client gone before it asked gets nothing, not even a cold start into a free slot.
    const { pool: empty } = poolWith();
    await expect(empty.acquire('acme/a', Number.MAX_SAFE_INTEGER, AbortSignal.abort())).rejects.toThrow();
    expect(empty.stats().containers).toBe(0);
  });

  it('answers a request whose signal aborts during its cold start then, and gives the container, once started, to the next request warm', async () => {
    const { pool, clock } = poolWith({ maxContainers: 1, queueLimit: 1 });
    const limit = new AbortController();
    const first = track(pool.acquire('acme/a', Number.MAX_SAFE_INTEGER, limit.signal));
    await clock.advance(COLD_START_MS / 2);
    limit.abort(new Error('tier limit'));
    await settle();
    // Answered at the abort, not when the start ends; the start goes on, holding its slot.
    expect(first.error()).toBeInstanceOf(ColdStartAbandoned);
    expect((first.error() as ColdStartAbandoned).cause).toMatchObject({ message: 'tier limit' });
    expect(pool.stats()).toMatchObject({ containers: 1, inFlight: 1, warmContainers: 0 });
    // A request arriving meanwhile waits for that slot and is given the container once it is up.
    const next = track(pool.acquire('acme/a', Number.MAX_SAFE_INTEGER, new AbortController().signal));
    await settle();
    expect(pool.stats().queued).toBe(1);
    await clock.advance(COLD_START_MS / 2);
    expect(next.value()).toMatchObject({ cold: false });
    expect([pool.coldStarts, pool.warmStarts]).toEqual([1, 1]);
  });

  it('answers a waiter handed a cold start whose signal aborts during it then too', async () => {
    const { pool, clock } = poolWith({ maxContainers: 1, queueLimit: 1 });
    const held = await leaseOf(pool, clock, 'acme/a');
    const limit = new AbortController();
    const waiting = track(pool.acquire('acme/b', Number.MAX_SAFE_INTEGER, limit.signal));
    pool.kill(held.container); // the slot frees: the waiter cold-starts a container of acme/b
    await settle();
    expect(pool.stats()).toMatchObject({ queued: 0, containers: 1, warmContainers: 0 });
    limit.abort(new Error('client went away'));
    await settle();
    expect(waiting.error()).toBeInstanceOf(ColdStartAbandoned);
    await clock.advance(COLD_START_MS);
    expect(pool.stats()).toMatchObject({ containers: 1, inFlight: 0, warmContainers: 1, warmFunctions: ['acme/b'] });
  });

  it('fails a queued request in sweep() once its deadline has passed, and not before', async () => {
    const { pool, clock } = poolWith({ maxContainers: 1, queueLimit: 2 });
    await leaseOf(pool, clock, 'acme/a'); // t = 100
    const early = track(pool.acquire('acme/a', 150));
    const late = track(pool.acquire('acme/a', 400));

    await clock.advance(49); // t = 149
    pool.sweep();
    await settle();
    expect(early.settled()).toBe(false);

    await clock.advance(1); // t = 150: the deadline itself counts as passed
    pool.sweep();
    await settle();
    expect(early.error()).toBeInstanceOf(CapacityError);
    expect(early.error()).toMatchObject({ message: 'no container became free before the deadline', retryAfterS: 1 });
    expect(late.settled()).toBe(false);
    expect(pool.stats().queued).toBe(1);
    expect(pool.rejected).toBe(1);
    pool.rejectAll('test over');
  });

  it.each([
    { idleMs: 999, kept: true },
    { idleMs: 1_000, kept: false },
    { idleMs: 5_000, kept: false },
  ])('sweep() after $idleMs ms idle (keep-alive 1000 ms) keeps the container: $kept', async ({ idleMs, kept }) => {
    const { pool, clock } = poolWith({ keepAliveMs: 1_000 });
    const lease = await leaseOf(pool, clock, 'acme/a');
    pool.release(lease.container);
    await clock.advance(idleMs);
    pool.sweep();
    expect(pool.stats()).toMatchObject({ containers: kept ? 1 : 0, warmContainers: kept ? 1 : 0, warmFunctions: kept ? ['acme/a'] : [] });
    const next = await leaseOf(pool, clock, 'acme/a');
    expect(next.cold).toBe(!kept);
  });

  it('scales to zero when idle, but never recycles a busy container however long it runs', async () => {
    const { pool, clock } = poolWith({ keepAliveMs: 1_000 });
    const idle = await leaseOf(pool, clock, 'acme/idle');
    const busy = await leaseOf(pool, clock, 'acme/busy');
    pool.release(idle.container);
    await clock.advance(60_000);
    pool.sweep();
    expect(pool.stats()).toMatchObject({ containers: 1, inFlight: 1, warmFunctions: ['acme/busy'] });

    pool.release(busy.container);
    await clock.advance(1_000);
    pool.sweep();
    expect(pool.stats()).toEqual({ inFlight: 0, containers: 0, warmContainers: 0, queued: 0, warmFunctions: [] });
  });

  it('stats() counts starting containers as in flight but not warm, idle ones as warm but not in flight', async () => {
    const { pool, clock } = poolWith({ maxContainers: 2, queueLimit: 2 });
    const starting = track(pool.acquire('acme/a', Number.MAX_SAFE_INTEGER));
    await settle();
    expect(pool.stats()).toEqual({ inFlight: 1, containers: 1, warmContainers: 0, queued: 0, warmFunctions: [] });

    await clock.advance(COLD_START_MS);
    expect(pool.stats()).toEqual({ inFlight: 1, containers: 1, warmContainers: 1, queued: 0, warmFunctions: ['acme/a'] });

    const b = await leaseOf(pool, clock, 'acme/b');
    const queued = track(pool.acquire('acme/c', Number.MAX_SAFE_INTEGER));
    expect(pool.stats()).toEqual({ inFlight: 2, containers: 2, warmContainers: 2, queued: 1, warmFunctions: ['acme/a', 'acme/b'] });

    pool.release(starting.value()!.container); // acme/c takes its slot and starts
    await settle();
    expect(pool.stats()).toEqual({ inFlight: 2, containers: 2, warmContainers: 1, queued: 0, warmFunctions: ['acme/b'] });
    await clock.advance(COLD_START_MS);
    pool.release(queued.value()!.container);
    pool.release(b.container);
    expect(pool.stats()).toEqual({ inFlight: 0, containers: 2, warmContainers: 2, queued: 0, warmFunctions: ['acme/b', 'acme/c'] });
  });

  it('counts cold starts, warm starts and rejections', async () => {
    const { pool, clock } = poolWith({ maxContainers: 1, queueLimit: 0 });
    const lease = await leaseOf(pool, clock, 'acme/a');
    await expect(pool.acquire('acme/a', Number.MAX_SAFE_INTEGER)).rejects.toBeInstanceOf(CapacityError);
    await expect(pool.acquire('acme/b', Number.MAX_SAFE_INTEGER)).rejects.toBeInstanceOf(CapacityError);
    pool.release(lease.container);
    for (let i = 0; i < 3; i++) pool.release((await leaseOf(pool, clock, 'acme/a')).container);
    pool.release((await leaseOf(pool, clock, 'acme/b')).container);
    expect({ coldStarts: pool.coldStarts, warmStarts: pool.warmStarts, rejected: pool.rejected }).toEqual({ coldStarts: 2, warmStarts: 3, rejected: 2 });
  });

  it('rejectAll fails every waiter with CapacityError (retry after 5 s) and leaves leased containers alone', async () => {
    const { pool, clock } = poolWith({ maxContainers: 1, queueLimit: 3 });
    const held = await leaseOf(pool, clock, 'acme/a');
    const waiters = [track(pool.acquire('acme/a', Number.MAX_SAFE_INTEGER)), track(pool.acquire('acme/b', Number.MAX_SAFE_INTEGER))];
    pool.rejectAll('the region is shutting down');
    await settle();
    for (const w of waiters) {
      expect(w.error()).toBeInstanceOf(CapacityError);
      expect(w.error()).toMatchObject({ message: 'the region is shutting down', retryAfterS: 5 });
    }
    expect(pool.stats()).toMatchObject({ queued: 0, inFlight: 1 });
    expect(held.container.state).toBe('busy');
    pool.release(held.container);
    expect(pool.stats().inFlight).toBe(0);
  });

  it('reports each function\'s idle and busy containers, most recently used first and at most `limit`, with its median cold start', async () => {
    let next = 0;
    const starts = [60, 40, 90];
    const { pool, clock } = poolWith({ maxContainers: 4, coldStartMs: () => starts[next++ % starts.length]! });
    const a1 = await leaseOf(pool, clock, 'acme/a'); // cold 60
    const a2 = await leaseOf(pool, clock, 'acme/a'); // cold 40: a1 is busy
    pool.release(a1.container);
    await clock.advance(10);
    const b = await leaseOf(pool, clock, 'acme/b'); // cold 90, used after a
    pool.release(b.container);
    expect(pool.functionLoads(10)).toEqual({
      functions: [
        { fn: 'acme/b', idle: 1, busy: 0, coldStartMs: 90 },
        { fn: 'acme/a', idle: 1, busy: 1, coldStartMs: 60 },
      ],
      total: 2,
    });
    expect(pool.functionLoads(1)).toEqual({ functions: [{ fn: 'acme/b', idle: 1, busy: 0, coldStartMs: 90 }], total: 2 });
    pool.release(a2.container);
  });

  it('pre-warms one container at a time into a free slot, even beside an idle one, and never by evicting', async () => {
    const { pool, clock } = poolWith({ maxContainers: 3 });
    expect(pool.prewarm('acme/api')).toBe(true);
    expect(pool.prewarm('acme/api')).toBe(false); // one is starting already
    await clock.advance(COLD_START_MS);
    expect(pool.functionLoads(5).functions).toEqual([{ fn: 'acme/api', idle: 1, busy: 0, coldStartMs: COLD_START_MS }]);
    // The router's request on its way here will take the idle one: a second is started.
    expect(pool.prewarm('acme/api')).toBe(true);
    const lease = await leaseOf(pool, clock, 'acme/api');
    expect(lease.cold).toBe(false); // the pre-warmed container serves the next request warm
    await clock.advance(COLD_START_MS);
    expect(pool.functionLoads(5).functions).toEqual([{ fn: 'acme/api', idle: 1, busy: 1, coldStartMs: COLD_START_MS }]);
    const other = await leaseOf(pool, clock, 'acme/web'); // takes the last slot
    expect(pool.prewarm('acme/more')).toBe(false); // full: nothing is evicted for a guess
    pool.release(lease.container);
    pool.release(other.container);
  });

  it('keeps idle containers by the monotonic clock: a step of the wall clock recycles none', async () => {
    const realNow = Date.now;
    let step = 0;
    const wall = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + step);
    try {
      // No clock given: the pool's own. Its cold start really sleeps 5 ms.
      const pool = new ContainerPool({ maxContainers: 2, queueLimit: 2, coldStartMs: () => 5, keepAliveMs: 60_000 });
      const lease = await pool.acquire('acme/api', monotonicNow() + 10_000);
      pool.release(lease.container);
      step = 86_400_000;
      pool.sweep();
      // Before, on Date.now, the day's step recycled it (a wave of cold starts in every region whose clock stepped).
      expect(pool.stats()).toMatchObject({ containers: 1, warmContainers: 1 });
    } finally {
      wall.mockRestore();
    }
  });
});
