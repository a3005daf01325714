import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { HealthRegistry, Heartbeat } from '../../src/registry/health-registry.js';
import { Reporter, retryDelayMs, type ReporterMetrics } from '../../src/registry/reporter.js';
import { RecordDecoder } from '../../src/registry/records.js';

const T0 = 1_800_000_000_000;

const METRICS: ReporterMetrics = {
  inFlight: 3,
  warmContainers: 2,
  latencyMs: { p50: 12, p99: 80 },
  errorRate: 0.01,
  warmFunctions: ['acme/hello'],
};

interface Write {
  readonly heartbeat: Heartbeat;
  readonly ttlMs: number;
  /** Fake-clock ms since the test started. */
  readonly atMs: number;
}

/** Records writes; `writeImpl` decides how each write ends (default: succeeds at once). */
class FakeRegistry {
  readonly kind = 'memory' as const;
  readonly writes: Write[] = [];
  active = 0;
  maxActive = 0;
  writeImpl: (heartbeat: Heartbeat) => Promise<void> = () => Promise.resolve();

  async writeHeartbeat(heartbeat: Heartbeat, ttlMs: number): Promise<void> {
    this.writes.push({ heartbeat, ttlMs, atMs: Date.now() - T0 });
    this.active += 1;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      await this.writeImpl(heartbeat);
    } finally {
      this.active -= 1;
    }
  }
}

/**
 * The fake as a HealthRegistry: every method other than writeHeartbeat throws 'not used', so the
 * test proves the reporter touches nothing else (and keeps compiling as the interface grows).
 */
function asRegistry(fake: FakeRegistry): HealthRegistry {
  return new Proxy(fake, {
    get(target, prop, receiver) {
      if (prop in target) {
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      }
      // Not a thenable, and no invented symbols: only named methods are faked.
      if (typeof prop === 'symbol' || prop === 'then') return undefined;
      return () => {
        throw new Error(`not used: ${prop}`);
      };
    },
  }) as unknown as HealthRegistry;
}

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (err: Error) => void } {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Whether a promise has settled, after letting pending callbacks run. */
async function isSettled(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await vi.advanceTimersByTimeAsync(0);
  return settled;
}

let registry: FakeRegistry;
let reporters: Reporter[];
let unhandled: ReturnType<typeof vi.fn<(reason: unknown) => void>>;

function reporter(overrides: Partial<ConstructorParameters<typeof Reporter>[0]> = {}): Reporter {
  const r = new Reporter({ registry: asRegistry(registry), region: 'atl', collect: () => METRICS, ...overrides });
  reporters.push(r);
  return r;
}

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
  registry = new FakeRegistry();
  reporters = [];
  unhandled = vi.fn<(reason: unknown) => void>();
  process.on('unhandledRejection', unhandled);
});

afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(reporters.map((r) => r.stop()));
  // Give Node a macrotask turn to report any rejection nobody handled.
  await new Promise((resolve) => setImmediate(resolve));
  process.off('unhandledRejection', unhandled);
  expect(unhandled).not.toHaveBeenCalled();
});

describe('Reporter', () => {
  it('sends the first heartbeat immediately, then one every intervalMs', async () => {
    reporter({ intervalMs: 1_000 }).start();
    expect(registry.writes.map((w) => w.atMs)).toEqual([0]);
    await vi.advanceTimersByTimeAsync(3_500);
    expect(registry.writes.map((w) => w.atMs)).toEqual([0, 1_000, 2_000, 3_000]);
  });

  it('writes a complete reporter heartbeat with the configured ttl', async () => {
    reporter({ region: 'fra', ttlMs: 4_500, now: () => 42 }).start();
    await vi.advanceTimersByTimeAsync(0);
    expect(registry.writes[0]).toEqual({
      heartbeat: {
        region: 'fra',
        status: 'up',
        reportedAt: 42,
        source: 'reporter',
        inFlight: 3,
        warmContainers: 2,
        latencyMs: { p50: 12, p99: 80 },
        errorRate: 0.01,
        warmFunctions: ['acme/hello'],
      },
      ttlMs: 4_500,
      atMs: 0,
    });
  });

  it('uses the defaults of 1000 ms cadence and 3000 ms ttl, and the wall clock for reportedAt', async () => {
    reporter().start();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(registry.writes.map((w) => [w.atMs, w.ttlMs, w.heartbeat.reportedAt])).toEqual([
      [0, 3_000, T0],
      [1_000, 3_000, T0 + 1_000],
    ]);
  });

  it('passes a degraded status and capacity through, and drops fields the registry would reject', async () => {
    const collect = () => ({ ...METRICS, status: 'degraded' as const, capacity: { soft: 4, hard: 6 }, debug: 'x' });
    reporter({ collect }).start();
    await vi.advanceTimersByTimeAsync(0);
    const heartbeat = registry.writes[0]?.heartbeat;
    expect(heartbeat?.status).toBe('degraded');
    expect(heartbeat?.capacity).toEqual({ soft: 4, hard: 6 });
    expect(heartbeat).not.toHaveProperty('debug');
  });

  it.each([
    [120.5, { serviceMs: 120.5 }],
    [0, { serviceMs: 0 }],
    [undefined, {}],
    [-1, {}],
    [Number.NaN, {}],
    [Number.POSITIVE_INFINITY, {}],
    [3_600_001, {}],
  ])('passes a median service time of %s through only when it is one (%j)', async (serviceMs, expected) => {
    reporter({ collect: () => ({ ...METRICS, ...(serviceMs === undefined ? {} : { serviceMs }) }) }).start();
    await vi.advanceTimersByTimeAsync(0);
    const heartbeat = registry.writes[0]!.heartbeat;
    if ('serviceMs' in expected) expect(heartbeat.serviceMs).toBe(expected.serviceMs);
    else expect(heartbeat).not.toHaveProperty('serviceMs');
  });

  it('writes a heartbeat the routers accept however many functions the region holds warm', async () => {
    // Before: the list went out whole. 10,000 warm functions with names as long as the directory
    // allows (or 100,001 short ones) made a heartbeat every router refused (over 1 MiB, or over the
    // schema's count): a busy, healthy region read as down everywhere.
    const name = (i: number) => `${'o'.repeat(58)}${String(i).padStart(5, '0')}/${'f'.repeat(57)}${String(i).padStart(5, '0')}`;
    const refused: string[] = [];
    const decoder = new RecordDecoder(new Set(['atl']), (_where, reason) => refused.push(reason));
    for (const warmFunctions of [Array.from({ length: 10_000 }, (_, i) => name(i)), Array.from({ length: 100_001 }, (_, i) => `a/f${i}`)]) {
      registry = new FakeRegistry();
      reporter({ collect: () => ({ ...METRICS, warmFunctions }) }).start();
      await vi.advanceTimersByTimeAsync(0);
      const written = registry.writes[0]!.heartbeat;
      // As RedisRegistry stores it, and as every router reads it back.
      expect(decoder.heartbeat(JSON.stringify(written), 'hb:atl'), refused.join('; ')).toEqual(written);
      expect(written.warmFunctions.length).toBeGreaterThan(1_000);
      expect(warmFunctions.slice(0, written.warmFunctions.length)).toEqual(written.warmFunctions);
    }
  });

  it('calling start twice does not double the cadence', async () => {
    const r = reporter({ intervalMs: 1_000 });
    r.start();
    r.start();
    await vi.advanceTimersByTimeAsync(2_000);
    expect(registry.writes).toHaveLength(3);
  });

  it('drain writes a draining heartbeat at once and keeps reporting draining until stop', async () => {
    const r = reporter({ intervalMs: 1_000, collect: () => ({ ...METRICS, status: 'degraded' }) });
    r.start();
    await vi.advanceTimersByTimeAsync(400);
    await r.drain();
    expect(registry.writes.map((w) => [w.atMs, w.heartbeat.status])).toEqual([
      [0, 'degraded'],
      [400, 'draining'],
    ]);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(registry.writes.slice(2).map((w) => w.heartbeat.status)).toEqual(['draining', 'draining']);
    await r.stop();
    const count = registry.writes.length;
    await vi.advanceTimersByTimeAsync(5_000);
    expect(registry.writes).toHaveLength(count);
  });

  it('drain waits for a write in progress instead of overlapping it', async () => {
    const slow = deferred();
    registry.writeImpl = () => slow.promise;
    const r = reporter();
    r.start();
    const draining = r.drain();
    expect(await isSettled(draining)).toBe(false);
    expect(registry.writes).toHaveLength(1);
    registry.writeImpl = () => Promise.resolve();
    slow.resolve();
    await draining;
    expect(registry.writes.map((w) => w.heartbeat.status)).toEqual(['up', 'draining']);
    expect(registry.maxActive).toBe(1);
  });

  it('retries a failed write with growing backoff, then returns to the normal cadence', async () => {
    const errors: [string, number][] = [];
    let failuresLeft = 4;
    registry.writeImpl = () => (failuresLeft-- > 0 ? Promise.reject(new Error('redis down')) : Promise.resolve());
    reporter({ intervalMs: 1_000, onError: (err, attempt) => errors.push([err.message, attempt]) }).start();
    await vi.advanceTimersByTimeAsync(3_200);
    // Failures at 0, 100, 300, 700 (backoff 100, 200, 400, 800); success at 1500; the tick at
    // 1000 is skipped because the retry owns the schedule; then the interval again.
    expect(registry.writes.map((w) => w.atMs)).toEqual([0, 100, 300, 700, 1_500, 2_000, 3_000]);
    expect(errors).toEqual([
      ['redis down', 1],
      ['redis down', 2],
      ['redis down', 3],
      ['redis down', 4],
    ]);
  });

  it('says when a write goes through after failed ones (the registry is back, perhaps empty), once per outage', async () => {
    let reconnects = 0;
    let failing = false;
    registry.writeImpl = () => (failing ? Promise.reject(new Error('redis down')) : Promise.resolve());
    reporter({ intervalMs: 1_000, onReconnect: () => reconnects++ }).start();
    await vi.advanceTimersByTimeAsync(2_500);
    expect(reconnects).toBe(0);
    failing = true;
    await vi.advanceTimersByTimeAsync(1_000);
    failing = false;
    await vi.advanceTimersByTimeAsync(3_000);
    expect(reconnects).toBe(1);
  });

  it('caps the backoff at intervalMs', async () => {
    registry.writeImpl = () => Promise.reject(new Error('redis down'));
    reporter({ intervalMs: 300 }).start();
    await vi.advanceTimersByTimeAsync(1_600);
    const gaps = registry.writes.slice(1).map((w, i) => w.atMs - (registry.writes[i]?.atMs ?? 0));
    expect(gaps).toEqual([100, 200, 300, 300, 300, 300]);
  });

  it.each([
    [1, 1_000, 100],
    [2, 1_000, 200],
    [3, 1_000, 400],
    [4, 1_000, 800],
    [5, 1_000, 1_000],
    [50, 1_000, 1_000],
    [3, 250, 250],
  ])('retryDelayMs(attempt %i, interval %i) = %i', (attempt, intervalMs, expected) => {
    expect(retryDelayMs(attempt, intervalMs)).toBe(expected);
  });

  it('never overlaps writes: a beat due while one is in flight is skipped', async () => {
    const slow = deferred();
    registry.writeImpl = () => slow.promise;
    reporter({ intervalMs: 1_000 }).start();
    await vi.advanceTimersByTimeAsync(5_500);
    expect(registry.writes).toHaveLength(1);
    registry.writeImpl = () => Promise.resolve();
    slow.resolve();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(registry.writes.map((w) => w.atMs)).toEqual([0, 6_000]);
    expect(registry.maxActive).toBe(1);
  });

  it('treats collect() throwing like a failed write', async () => {
    const errors: [string, number][] = [];
    let throwsLeft = 2;
    const collect = () => {
      if (throwsLeft-- > 0) throw new Error('metrics unavailable');
      return METRICS;
    };
    reporter({ intervalMs: 1_000, collect, onError: (err, attempt) => errors.push([err.message, attempt]) }).start();
    await vi.advanceTimersByTimeAsync(350);
    expect(errors).toEqual([
      ['metrics unavailable', 1],
      ['metrics unavailable', 2],
    ]);
    // The two failed beats never reached the registry; the retry at 300 ms did.
    expect(registry.writes.map((w) => w.atMs)).toEqual([300]);
  });

  it('survives non-Error rejections and an onError that throws, without unhandled rejections', async () => {
    const errors: Error[] = [];
    registry.writeImpl = () => Promise.reject('plain string');
    const onError = (err: Error) => {
      errors.push(err);
      throw new Error('logger broke');
    };
    reporter({ intervalMs: 200, onError }).start();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(errors.length).toBeGreaterThan(3);
    expect(errors[0]).toBeInstanceOf(Error);
    expect(errors[0]?.message).toBe('plain string');
    // afterEach asserts that process 'unhandledRejection' never fired.
  });

  it('stop waits for the write in progress and writes nothing afterwards', async () => {
    const slow = deferred();
    registry.writeImpl = () => slow.promise;
    const errors: number[] = [];
    const r = reporter({ intervalMs: 1_000, onError: (_err, attempt) => errors.push(attempt) });
    r.start();
    const stopping = r.stop();
    expect(await isSettled(stopping)).toBe(false);
    // The write fails after stop: reported, but not retried.
    slow.reject(new Error('late failure'));
    await stopping;
    await vi.advanceTimersByTimeAsync(5_000);
    expect(errors).toEqual([1]);
    expect(registry.writes).toHaveLength(1);
  });

  it('a drain after stop writes nothing', async () => {
    const r = reporter();
    r.start();
    await r.stop();
    await r.drain();
    expect(registry.writes.map((w) => w.heartbeat.status)).toEqual(['up']);
  });

  it('rejects a non-positive interval at construction', () => {
    expect(() => reporter({ intervalMs: 0 })).toThrow(RangeError);
  });
});
