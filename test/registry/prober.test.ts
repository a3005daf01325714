import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, getGlobalDispatcher, MockAgent, setGlobalDispatcher, type Dispatcher } from 'undici';
import { getEventListeners } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { until } from '../support/until.js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RegionConfig } from '../../src/core/types.js';
import { jitteredDelayMs, Prober, probeErrorName, probeHeartbeatTtlMs, probeSignal, type ProbeState, type ProberOptions } from '../../src/registry/prober.js';
import { MemoryRegistry } from '../../src/registry/memory-registry.js';
import { RedisRegistry } from '../../src/registry/redis-registry.js';
import { Reporter } from '../../src/registry/reporter.js';
import type { HealthRegistry } from '../../src/registry/health-registry.js';
import type { RegionStatus } from '../../src/core/types.js';
import { REDIS_MISSING } from '../support/system-program.js';
import { randomUUID } from 'node:crypto';
import { RegistryWatcher } from '../../src/registry/registry-watcher.js';
import type { Heartbeat } from '../../src/registry/health-registry.js';

/** A real HTTP server on 127.0.0.1; `handler` may be swapped mid-test, `hits` counts requests. */
interface TestServer {
  readonly url: string;
  readonly hits: { at: number; method: string | undefined; url: string | undefined }[];
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  close(): Promise<void>;
}

const ok = (_req: IncomingMessage, res: ServerResponse): void => {
  res.end('ok');
};
const unavailable = (_req: IncomingMessage, res: ServerResponse): void => {
  res.statusCode = 503;
  res.end('unavailable');
};
const never = (): void => {};

let servers: Server[];
let agent: Agent;
let probers: Prober[];
let unhandled: ReturnType<typeof vi.fn<(reason: unknown) => void>>;

async function startServer(handler: TestServer['handler'] = ok): Promise<TestServer> {
  const server = createServer();
  servers.push(server);
  const test: TestServer = {
    url: '',
    hits: [],
    handler,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  server.on('request', (req, res) => {
    test.hits.push({ at: performance.now(), method: req.method, url: req.url });
    test.handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(test, { url: `http://127.0.0.1:${port}` });
}

/** A port nothing listens on: bound once, then released. */
async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

function region(id: string, url: string): RegionConfig {
  return { id, name: id, lat: 0, lon: 0, orchestrators: [url], capacity: { soft: 8, hard: 10 }, weight: 1 };
}

/** A heartbeat together with the prober's state for that region at the moment it was emitted. */
interface Emitted {
  readonly heartbeat: Heartbeat;
  readonly state: ProbeState;
  readonly hits: number;
}

function prober(
  server: { url: string; hits?: unknown[] },
  options: Partial<ProberOptions> = {},
): { prober: Prober; emitted: Emitted[] } {
  const emitted: Emitted[] = [];
  const p: Prober = new Prober({
    regions: [region('atl', server.url)],
    intervalMs: 20,
    timeoutMs: 500,
    dispatcher: agent,
    onHeartbeat: (heartbeat) => {
      const state = p.states().get(heartbeat.region);
      if (state) emitted.push({ heartbeat, state, hits: server.hits?.length ?? 0 });
    },
    ...options,
  });
  probers.push(p);
  return { prober: p, emitted };
}


const stateOf = (p: Prober, id = 'atl'): ProbeState | undefined => p.states().get(id);

beforeEach(() => {
  servers = [];
  probers = [];
  agent = new Agent();
  unhandled = vi.fn<(reason: unknown) => void>();
  process.on('unhandledRejection', unhandled);
});

afterEach(async () => {
  await Promise.all(probers.map((p) => p.stop()));
  for (const server of servers) server.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  await agent.destroy();
  await new Promise((resolve) => setImmediate(resolve));
  process.off('unhandledRejection', unhandled);
  expect(unhandled).not.toHaveBeenCalled();
});

describe('Prober', () => {
  it('starts every region as unknown', () => {
    const { prober: p } = prober({ url: 'http://127.0.0.1:1' });
    expect(stateOf(p)).toEqual({ state: 'unknown', successes: 0, failures: 0, lastRttMs: null, lastError: null });
  });

  it('marks a healthy region up on its first success and emits a probe heartbeat', async () => {
    const server = await startServer();
    const { prober: p, emitted } = prober(server);
    const before = Date.now();
    p.start();
    await until(() => emitted.length >= 1);
    const after = Date.now();
    const first = emitted[0]!;
    expect(first.state.state).toBe('up');
    expect(first.state.successes).toBe(1);
    expect(server.hits[0]).toMatchObject({ method: 'GET', url: '/healthz' });
    const rtt = first.state.lastRttMs!;
    expect(rtt).toBeGreaterThan(0);
    // Measured, not made up: within the time the probe took as seen from here (+1: Date.now is in
    // whole ms). A fixed 500 ms failed on a loaded machine, where a loopback round trip took longer.
    expect(rtt).toBeLessThanOrEqual(after - before + 1);
    expect(first.heartbeat).toEqual({
      region: 'atl',
      status: 'up',
      source: 'probe',
      reportedAt: expect.any(Number),
      inFlight: 0,
      warmContainers: 0,
      latencyMs: { p50: rtt, p99: rtt },
      errorRate: 0,
      warmFunctions: [],
    });
    expect(first.heartbeat.reportedAt).toBeGreaterThanOrEqual(before);
    expect(first.heartbeat.reportedAt).toBeLessThanOrEqual(after);
  });

  it('emits an up heartbeat on every probe while up, on the configured path', async () => {
    const server = await startServer();
    const { prober: p, emitted } = prober(server, { path: '/ready' });
    p.start();
    await until(() => emitted.length >= 4);
    expect(emitted.every((e) => e.heartbeat.status === 'up')).toBe(true);
    expect(new Set(server.hits.map((h) => h.url))).toEqual(new Set(['/ready']));
  });

  it('goes down only after 3 failures in a row, not after 1 or 2', async () => {
    const server = await startServer(unavailable);
    const { prober: p, emitted } = prober(server);
    p.start();
    await until(() => emitted.length >= 2);
    // Nothing was emitted for failures 1 and 2; the first heartbeat is the flip, on the third.
    expect(emitted[0]).toMatchObject({ heartbeat: { status: 'down', errorRate: 1 }, hits: 3 });
    expect(emitted[0]?.state).toMatchObject({ state: 'down', failures: 3, successes: 0, lastError: 'http-503' });
    // And again on each further failure, so the region stays down.
    expect(emitted[1]).toMatchObject({ heartbeat: { status: 'down' }, hits: 4 });
  });

  it('a region that was up stays up through 2 failures and flips down on the 3rd', async () => {
    const server = await startServer();
    const { prober: p, emitted } = prober(server);
    p.start();
    await until(() => emitted.length >= 2);
    server.handler = unavailable;
    const hitsAtSwitch = server.hits.length;
    await until(() => emitted.some((e) => e.heartbeat.status === 'down'));
    const firstDown = emitted.findIndex((e) => e.heartbeat.status === 'down');
    expect(emitted[firstDown]!.state.failures).toBe(3);
    // Failures 1 and 2 each re-assert up (the region is up until the threshold says otherwise),
    // so its heartbeat never expires before the third failure takes it down.
    const [second, first] = [emitted[firstDown - 1]!, emitted[firstDown - 2]!];
    expect([first.heartbeat.status, first.state.failures, second.heartbeat.status, second.state.failures]).toEqual(['up', 1, 'up', 2]);
    expect(first.hits).toBeGreaterThan(hitsAtSwitch);
    expect(emitted[firstDown]!.hits - first.hits).toBe(2);
  });

  it('keeps a watcher seeing an up region up through failures below the threshold, however long they last', async () => {
    // Before: failed probes sent nothing, so the last up heartbeat expired (here after 3 s) while
    // the failures were still under the threshold (7 failures, 0.5 s apart, threshold 8).
    const server = await startServer();
    let probes = 0;
    server.handler = (req, res) => (++probes >= 2 && probes <= 8 ? unavailable(req, res) : ok(req, res));
    const registry = new MemoryRegistry();
    const regions = [region('atl', server.url)];
    const intervalMs = 500;
    const timeoutMs = 200;
    const watcher = new RegistryWatcher({ registry, regions, heartbeatTtlMs: 1_500, probeHeartbeatTtlMs: probeHeartbeatTtlMs(intervalMs, timeoutMs), pollMs: 50 });
    await watcher.start();
    const p = new Prober({ regions, intervalMs, timeoutMs, jitter: 0, unhealthyThreshold: 8, dispatcher: agent, onHeartbeat: (hb) => watcher.applyHeartbeat(hb) });
    probers.push(p);
    p.start();
    const seen = new Set<string>();
    const deadline = performance.now() + 10_000;
    while (probes < 10 && performance.now() < deadline) {
      // From the first up on: the origin counts the first probe as it arrives, a few ms before
      // the prober has its answer and the watcher its heartbeat (seen once in CI: a 'down' then).
      const status = watcher.snapshot.regions.get('atl')!.status;
      if (probes >= 1 && (seen.size > 0 || status === 'up')) seen.add(status);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    await watcher.stop();
    expect(probes).toBeGreaterThanOrEqual(10);
    expect([...seen]).toEqual(['up']);
  });

  it('a closed port (connection refused) goes down with lastError refused', async () => {
    const { prober: p, emitted } = prober({ url: await closedPortUrl() });
    p.start();
    await until(() => emitted.length >= 1);
    expect(emitted[0]?.heartbeat.status).toBe('down');
    expect(stateOf(p)).toMatchObject({ state: 'down', lastError: 'refused', lastRttMs: null });
  });

  it('a server that never answers fails by timeout within about timeoutMs', async () => {
    const server = await startServer(never);
    const { prober: p, emitted } = prober(server, { timeoutMs: 150, unhealthyThreshold: 1 });
    const startedAt = performance.now();
    p.start();
    await until(() => emitted.length >= 1);
    const elapsedMs = performance.now() - startedAt;
    expect(elapsedMs).toBeGreaterThanOrEqual(140);
    // About timeoutMs, with room for a loaded machine: far under undici's own timeouts (minutes).
    expect(elapsedMs).toBeLessThan(3_000);
    expect(emitted[0]?.heartbeat.status).toBe('down');
    // Either undici's headers timer or the overall signal may fire first; both are timeouts.
    expect(stateOf(p)?.lastError).toMatch(/^(timeout|headers-timeout)$/);
  });

  it('a body that stalls after the headers counts as a failure', async () => {
    const server = await startServer((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
    });
    const { prober: p, emitted } = prober(server, { timeoutMs: 150, unhealthyThreshold: 1 });
    p.start();
    await until(() => emitted.length >= 1);
    expect(emitted[0]?.heartbeat.status).toBe('down');
    expect(stateOf(p)?.lastError).toMatch(/^(timeout|body-timeout)$/);
  });

  it('a connection closed without a response is a failure named by its code', async () => {
    const server = await startServer((req) => req.socket.destroy());
    const { prober: p, emitted } = prober(server, { unhealthyThreshold: 1 });
    p.start();
    await until(() => emitted.length >= 1);
    expect(stateOf(p)).toMatchObject({ state: 'down', lastError: 'socket-closed' });
  });

  it('recovers to up only after healthyThreshold successes in a row', async () => {
    const server = await startServer(unavailable);
    const { prober: p, emitted } = prober(server);
    p.start();
    await until(() => emitted.some((e) => e.heartbeat.status === 'down'));
    server.handler = ok;
    await until(() => emitted.some((e) => e.heartbeat.status === 'up'));
    const firstUp = emitted.findIndex((e) => e.heartbeat.status === 'up');
    const lastDown = emitted[firstUp - 1]!;
    expect(lastDown.heartbeat.status).toBe('down');
    expect(emitted[firstUp]!.state).toMatchObject({ state: 'up', successes: 2, failures: 0, lastError: null });
    // Down does not flip on a single good probe: that one still says down (renewing it).
    expect(lastDown.state).toMatchObject({ state: 'down', successes: 1 });
    expect(emitted[firstUp]!.hits - lastDown.hits).toBe(1);
  });

  it('honours a larger healthyThreshold, and a failure in the streak restarts it', async () => {
    const server = await startServer(unavailable);
    const { prober: p, emitted } = prober(server, { healthyThreshold: 3, unhealthyThreshold: 1 });
    p.start();
    await until(() => emitted.length >= 1);
    // ok, ok, fail, then ok from here on: the flip needs three fresh successes after the failure.
    let served = 0;
    server.handler = (req, res) => (++served === 3 ? unavailable(req, res) : ok(req, res));
    await until(() => emitted.some((e) => e.heartbeat.status === 'up'));
    const firstUp = emitted.indexOf(emitted.find((e) => e.heartbeat.status === 'up')!);
    expect(emitted[firstUp]!.state.successes).toBe(3);
    expect(served).toBeGreaterThanOrEqual(6);
    // Every probe before it, successes in the streak too, renewed the down heartbeat: left silent
    // through a streak longer than its TTL, it expired and routers took the region's own report.
    const before = emitted.slice(0, firstUp);
    expect(before.every((e) => e.heartbeat.status === 'down')).toBe(true);
    expect(before.filter((e) => e.state.successes > 0).map((e) => e.state.successes)).toEqual(expect.arrayContaining([1, 2]));
  });

  it('probes regions independently', async () => {
    const healthy = await startServer();
    const broken = await startServer(unavailable);
    const emitted: Heartbeat[] = [];
    const p = new Prober({
      regions: [region('atl', healthy.url), region('nyc', broken.url)],
      intervalMs: 20,
      unhealthyThreshold: 2,
      dispatcher: agent,
      onHeartbeat: (hb) => void emitted.push(hb),
    });
    probers.push(p);
    p.start();
    await until(() => emitted.some((h) => h.region === 'nyc'));
    expect(stateOf(p, 'atl')?.state).toBe('up');
    expect(stateOf(p, 'nyc')?.state).toBe('down');
    expect(emitted.filter((h) => h.region === 'atl').every((h) => h.status === 'up')).toBe(true);
    expect(emitted.filter((h) => h.region === 'nyc').every((h) => h.status === 'down')).toBe(true);
  });

  it('swallows onHeartbeat errors and rejections and keeps probing', async () => {
    const server = await startServer();
    let calls = 0;
    const { prober: p } = prober(server, {
      onHeartbeat: () => {
        calls += 1;
        if (calls % 2 === 0) throw new Error('sync failure');
        return Promise.reject(new Error('async failure'));
      },
    });
    p.start();
    await until(() => calls >= 5);
    expect(stateOf(p)?.state).toBe('up');
    // afterEach asserts no unhandled rejection.
  });

  it('stop aborts a hanging probe quickly and does not count it', async () => {
    const server = await startServer(never);
    const { prober: p, emitted } = prober(server, { timeoutMs: 10_000 });
    p.start();
    await until(() => server.hits.length >= 1);
    const startedAt = performance.now();
    await p.stop();
    // Quickly: far under the probe's 10 s budget, which is what an unaborted probe would wait.
    expect(performance.now() - startedAt).toBeLessThan(2_000);
    expect(stateOf(p)).toMatchObject({ state: 'unknown', failures: 0, lastError: null });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(server.hits).toHaveLength(1);
    expect(emitted).toHaveLength(0);
  });

  it('emits nothing and probes no more after stop', async () => {
    const server = await startServer();
    const { prober: p, emitted } = prober(server);
    p.start();
    await until(() => emitted.length >= 2);
    await p.stop();
    const hits = server.hits.length;
    const count = emitted.length;
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(server.hits).toHaveLength(hits);
    expect(emitted).toHaveLength(count);
  });

  it('spaces probes by the jittered interval (injected random)', async () => {
    const low = await startServer();
    const high = await startServer();
    const random = vi.fn(() => 0);
    const { prober: fast } = prober(low, { intervalMs: 100, jitter: 0.5, random });
    const { prober: slow } = prober(high, { intervalMs: 100, jitter: 0.5, random: () => 0.999_999 });
    fast.start();
    slow.start();
    await until(() => high.hits.length >= 4);
    await Promise.all([fast.stop(), slow.stop()]);
    const gaps = (hits: { at: number }[]) => hits.slice(1).map((h, i) => h.at - (hits[i]?.at ?? 0));
    // random 0 → 50 ms between a probe's end and the next; random ≈1 → 150 ms. Every gap respects
    // the lower bound; a loaded machine can only stretch gaps, so the upper bound holds for the
    // shortest one (the timer itself), not for every gap.
    const lowGaps = gaps(low.hits);
    const highGaps = gaps(high.hits);
    for (const gap of lowGaps) expect(gap).toBeGreaterThanOrEqual(48);
    for (const gap of highGaps) expect(gap).toBeGreaterThanOrEqual(148);
    expect(Math.min(...lowGaps)).toBeLessThan(140);
    expect(Math.min(...highGaps)).toBeLessThan(300);
    expect(random).toHaveBeenCalled();
  });

  it('without a dispatcher, probes on its own kept-alive connection, not the process-wide one, and closes it at stop', async () => {
    const server = await startServer();
    const sockets = new Set<unknown>();
    servers.at(-1)!.on('connection', (socket) => sockets.add(socket));
    // A process-wide dispatcher that counts what goes through it (and still delivers it).
    const previous = getGlobalDispatcher();
    const counting = new Agent();
    let viaGlobal = 0;
    const dispatch = counting.dispatch.bind(counting);
    counting.dispatch = (opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler) => {
      viaGlobal++;
      return dispatch(opts, handler);
    };
    setGlobalDispatcher(counting);
    try {
      // A generous timeout: a probe cut short on a busy machine would cost its connection.
      const { prober: p } = prober(server, { dispatcher: undefined, timeoutMs: 5_000 });
      p.start();
      await until(() => server.hits.length >= 4);
      expect(stateOf(p)?.state).toBe('up');
      expect(viaGlobal).toBe(0);
      // Four probes, one connection: it is kept between probes.
      expect(sockets.size).toBe(1);
      const [socket] = sockets as Set<import('node:net').Socket>;
      await p.stop();
      await until(() => socket!.destroyed);
    } finally {
      setGlobalDispatcher(previous);
      await counting.destroy();
    }
  });

  it('keeps probing through a live connection when started again while its stop is still settling', async () => {
    const server = await startServer();
    const { prober: p, emitted } = prober(server, { dispatcher: undefined, timeoutMs: 5_000 });
    p.start();
    await until(() => stateOf(p)?.state === 'up');
    const stopping = p.stop();
    p.start();
    await stopping;
    const before = server.hits.length;
    await until(() => server.hits.length >= before + 4);
    // Every probe of the new run reached the region: none went out through the destroyed agent.
    expect(stateOf(p)).toMatchObject({ state: 'up', failures: 0 });
    expect(emitted.at(-1)!.heartbeat.status).toBe('up');
  });

  it('rejects a region without an orchestrator URL', () => {
    const bad: RegionConfig = { ...region('atl', 'http://x'), orchestrators: [] };
    expect(() => new Prober({ regions: [bad], onHeartbeat: () => {} })).toThrow(/atl/);
  });

  it('keeps no memory per probe: a prober runs as long as its process (2.5 probes a second with five regions)', async () => {
    // On Node 20, AbortSignal.any([stop, timeout]) per probe left an entry in the run's stop
    // signal's dependants for good: 100–250 bytes a probe, never given back (measured here).
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const heapAfterGc = () => {
      gc();
      gc();
      return process.memoryUsage().heapUsed;
    };
    const regions = Array.from({ length: 40 }, (_, i) => region(`r${i}`, `http://r${i}.test`));
    const mock = new MockAgent();
    mock.disableNetConnect();
    let probes = 0;
    for (const r of regions) {
      mock
        .get(r.orchestrators[0]!)
        .intercept({ path: () => true })
        .reply(() => {
          probes++;
          return { statusCode: 200, data: 'ok' };
        })
        .persist();
    }
    const p = new Prober({ regions, intervalMs: 1, timeoutMs: 5_000, jitter: 0, dispatcher: mock, onHeartbeat: () => undefined });
    probers.push(p);
    p.start();
    await until('the probes to settle in', () => probes >= 5_000, 60_000);
    const before = heapAfterGc();
    const from = probes;
    await until('30,000 more probes', () => probes >= from + 30_000, 120_000);
    const perProbe = (heapAfterGc() - before) / (probes - from);
    await p.stop();
    await mock.close();
    expect(perProbe).toBeLessThan(40);
  }, 180_000);
});

describe('probeSignal', () => {
  it('aborts on the stop signal, with its reason, and leaves no listener on it once done', () => {
    const stop = new AbortController();
    const probe = probeSignal(stop.signal, 60_000);
    expect(getEventListeners(stop.signal, 'abort')).toHaveLength(1);
    stop.abort(new Error('stopping'));
    expect(probe.signal.aborted).toBe(true);
    expect((probe.signal.reason as Error).message).toBe('stopping');
    probe.done();
    expect(getEventListeners(stop.signal, 'abort')).toHaveLength(0);
  });

  it('takes its listener off a stop signal that outlives it', () => {
    const stop = new AbortController();
    for (let i = 0; i < 1_000; i++) probeSignal(stop.signal, 60_000).done();
    expect(getEventListeners(stop.signal, 'abort')).toHaveLength(0);
  });

  it('times out with a TimeoutError (named "timeout" in lastError)', async () => {
    const probe = probeSignal(new AbortController().signal, 10);
    await until('the probe to time out', () => probe.signal.aborted, 2_000);
    expect(probeErrorName(probe.signal.reason)).toBe('timeout');
    probe.done();
  });

  it('is aborted at once when the stop signal already is', () => {
    const stop = new AbortController();
    stop.abort(new Error('stopped'));
    const probe = probeSignal(stop.signal, 60_000);
    expect(probe.signal.aborted).toBe(true);
    probe.done();
  });
});

describe('Prober and Reporter on one region', () => {
  const registries: [string, boolean, () => Promise<{ registry: HealthRegistry; close(): Promise<void> }>][] = [
    ['MemoryRegistry', false, async () => {
      const registry = new MemoryRegistry();
      return { registry, close: () => registry.close() };
    }],
    ['RedisRegistry', REDIS_MISSING, async () => {
      const registry = new RedisRegistry({ url: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379', keyPrefix: `test:${randomUUID()}:`, regions: ['atl'] });
      await registry.ready();
      return { registry, close: () => registry.close() };
    }],
  ];

  for (const [name, missing, open] of registries) {
    it.skipIf(missing)(`keeps the orchestrator's draining through the prober's up heartbeats, and goes down on the prober's down (${name})`, async () => {
      // Before: one heartbeat per region, newest wins: every probe `up` replaced the report's
      // `draining` (and its loads) until the next report: draining, up, up, …, draining.
      const server = await startServer();
      const { registry, close } = await open();
      const regions = [region('atl', server.url)];
      const intervalMs = 50;
      const timeoutMs = 200;
      const probeTtlMs = probeHeartbeatTtlMs(intervalMs, timeoutMs);
      // The report's TTL outlasts a stalled turn (600 ms did not, on a loaded machine: the report
      // read as expired, and the probe's up showed through): the test is about the probes, not it.
      const watcher = new RegistryWatcher({ registry, regions, heartbeatTtlMs: 3_000, probeHeartbeatTtlMs: probeTtlMs, pollMs: 50 });
      const reporter = new Reporter({ registry, region: 'atl', intervalMs: 200, ttlMs: 3_000, collect: () => ({ inFlight: 4, warmContainers: 1, latencyMs: { p50: 5, p99: 9 }, errorRate: 0, warmFunctions: [] }) });
      const p = new Prober({ regions, intervalMs, timeoutMs, jitter: 0, unhealthyThreshold: 2, dispatcher: agent, onHeartbeat: (hb) => registry.writeHeartbeat(hb, probeTtlMs) });
      probers.push(p);
      const status = () => watcher.snapshot.regions.get('atl')!.status;
      try {
        await watcher.start();
        reporter.start();
        await reporter.drain();
        p.start();
        await until('draining seen', () => status() === 'draining', 3_000);
        const seen = new Set<RegionStatus>();
        const inFlight = new Set<number>();
        const until1s = performance.now() + 1_000;
        while (performance.now() < until1s) {
          seen.add(status());
          inFlight.add(watcher.snapshot.regions.get('atl')!.inFlight);
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        expect([...seen]).toEqual(['draining']);
        expect([...inFlight]).toEqual([4]);
        // The prober's down takes the region down, report or not.
        server.handler = unavailable;
        await until('down seen', () => status() === 'down', 3_000);
        // Once the orchestrator stops reporting, the prober's up counts.
        await reporter.stop();
        server.handler = ok;
        // The report's last heartbeat lives its 3 s first.
        await until('up seen', () => status() === 'up', 10_000);
      } finally {
        await reporter.stop();
        await p.stop();
        await watcher.stop();
        await close();
      }
    });
  }
});

describe('jitteredDelayMs', () => {
  it.each([
    [0, 900],
    [0.25, 950],
    [0.5, 1_000],
    [0.75, 1_050],
    [-3, 900],
    [7, 1_100],
  ])('random %d → %d ms (interval 1000, jitter 0.1)', (random, expected) => {
    expect(jitteredDelayMs(1_000, 0.1, () => random)).toBeCloseTo(expected, 6);
  });

  it('stays within interval × (1 ± jitter) for many draws', () => {
    for (let i = 0; i < 1_000; i++) {
      const delayMs = jitteredDelayMs(2_000, 0.1, Math.random);
      expect(delayMs).toBeGreaterThanOrEqual(1_800);
      expect(delayMs).toBeLessThanOrEqual(2_200);
    }
  });
});

describe('probeErrorName', () => {
  const coded = (code: string) => Object.assign(new Error('message text is never read'), { code });
  it.each<[string, unknown, string]>([
    ['connection refused', coded('ECONNREFUSED'), 'refused'],
    ['connect timeout', coded('UND_ERR_CONNECT_TIMEOUT'), 'connect-timeout'],
    ['headers timeout', coded('UND_ERR_HEADERS_TIMEOUT'), 'headers-timeout'],
    ['body timeout', coded('UND_ERR_BODY_TIMEOUT'), 'body-timeout'],
    ['reset', coded('ECONNRESET'), 'reset'],
    ['socket closed', coded('UND_ERR_SOCKET'), 'socket-closed'],
    ['dns', coded('ENOTFOUND'), 'dns'],
    ['unreachable', coded('EHOSTUNREACH'), 'unreachable'],
    ['parser error', coded('HPE_INVALID_HEADER_TOKEN'), 'bad-response'],
    ['unknown code is kept', coded('EWHATEVER'), 'EWHATEVER'],
    ['no code', new Error('ECONNREFUSED in the message only'), 'error'],
    ['not an error', 'boom', 'error'],
    ['AbortSignal.timeout', new DOMException('timed out', 'TimeoutError'), 'timeout'],
    ['abort', new DOMException('aborted', 'AbortError'), 'aborted'],
    ['happy eyeballs', new AggregateError([coded('ECONNREFUSED'), coded('ECONNREFUSED')]), 'refused'],
    ['wrapped', new TypeError('fetch failed', { cause: coded('ECONNRESET') }), 'reset'],
  ])('%s → %s', (_name, err, expected) => {
    expect(probeErrorName(err)).toBe(expected);
  });
});
