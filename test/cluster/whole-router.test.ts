import { afterEach, describe, expect, it } from 'vitest';
import { ClusterAnswers, clusterWorkerRouter, sumRegionStats, type WholeRouter } from '../../src/cluster/whole-router.js';
import { staticSnapshot } from '../../src/registry/static-snapshot.js';
import { RouterMetrics, type RegionStats } from '../../src/observability/metrics.js';
import { linkedPair, type LinkedPair } from '../support/linked-pair.js';
import { REGIONS } from '../support/regions.js';

const stats = (requests: number, extra: Partial<RegionStats> = {}): RegionStats => ({
  requestsTotal: requests,
  errorsTotal: 0,
  failoversTotal: 0,
  ejectionsTotal: 0,
  requestsPerSecond: 0,
  routerActive: 0,
  routerQueued: 0,
  ...extra,
});

describe('sumRegionStats', () => {
  it('adds the workers region by region, keeping regions only one worker has', () => {
    const total = sumRegionStats([
      new Map([['atl', stats(3, { errorsTotal: 1, requestsPerSecond: 0.1, routerActive: 2 })], ['fra', stats(1)]]),
      new Map([['atl', stats(4, { failoversTotal: 2, requestsPerSecond: 0.2, routerQueued: 5, ejectionsTotal: 1 })]]),
    ]);
    expect(total).toEqual(
      new Map([
        ['atl', { requestsTotal: 7, errorsTotal: 1, failoversTotal: 2, ejectionsTotal: 1, requestsPerSecond: 0.3, routerActive: 2, routerQueued: 5 }],
        ['fra', stats(1)],
      ]),
    );
    expect(sumRegionStats([])).toEqual(new Map());
  });
});

/** A worker process's metrics with `requests` requests answered by atl, and its stale flag. */
function workerMetrics(requests: number, stale: boolean): RouterMetrics {
  const metrics = new RouterMetrics({
    regions: REGIONS,
    snapshot: () => staticSnapshot(REGIONS),
    registryStatus: () => ({ stale, staleForMs: stale ? 4_000 : 0, lastFullSyncAt: 1_000, dataLostAt: null }),
    geo: () => undefined,
    retryBudgetExhausted: () => 0,
    openConnections: () => 2,
    openTunnels: () => ({ http1: 1, http2: 2 }),
    refusedConnections: () => ({ perAddress: 0, rate: 0, resetFlood: 0, frameFlood: 0, penalty: 0, sendStalled: 0, atCapacity: 0, heavyNearCapacity: 0, idleReclaimed: 0 }),
    outstanding: () => ({ active: 1, queued: 0 }),
  });
  for (let i = 0; i < requests; i++) {
    metrics.observe(
      { requestId: 'r', traceId: null, method: 'GET', host: 'h', path: '/', protocol: 'HTTP/1.1', fn: 'echo', org: 'demo', clientIp: '1.2.3.4', country: null, reason: 'nearest', routeMs: 0.01 },
      { region: 'atl', tried: ['atl'], status: 200, error: null, bytesIn: 0, bytesOut: 10, upstreamMs: 5, totalMs: 6 },
    );
  }
  return metrics;
}

describe('ClusterAnswers: the primary combines the workers', () => {
  const pairs: LinkedPair[] = [];
  afterEach(() => pairs.splice(0).forEach((p) => p.close()));

  function worker(answers: ClusterAnswers, requests: number, options: { stale?: boolean; resync?: () => Promise<boolean> } = {}) {
    const pair = linkedPair(1_000);
    pairs.push(pair);
    const detach = answers.attach(pair.primary);
    const resyncs: number[] = [];
    const metrics = workerMetrics(requests, options.stale ?? false);
    const router = clusterWorkerRouter(pair.worker, {
      metrics,
      watcher: {
        async resync() {
          resyncs.push(Date.now());
          return (await options.resync?.()) ?? true;
        },
      },
    });
    return { router, resyncs, detach, pair, metrics };
  }

  it('aggregates the metrics of every announced worker: counters summed, node metrics once, gauges by their rule', async () => {
    const answers = new ClusterAnswers();
    const a = worker(answers, 3, { stale: false });
    const b = worker(answers, 2, { stale: true });
    await a.router.announce();
    await b.router.announce();
    expect(answers.workers).toBe(2);
    const text = await a.router.metrics();
    expect(text).toMatch(/^edge_router_requests_total\{region="atl",status_class="2xx",route="nearest"\} 5$/m);
    expect(text).toMatch(/^edge_router_open_connections 4$/m);
    // Open WebSockets add up across workers too.
    expect(text).toMatch(/^edge_router_websockets_open\{protocol="http2"\} 4$/m);
    // The registry is stale for the router if any worker finds it so.
    expect(text).toMatch(/^edge_router_registry_stale 1$/m);
    expect(text.match(/^process_resident_memory_bytes /gm)).toHaveLength(1);
    expect(text).not.toMatch(/^process_start_time_seconds /m);
    expect((await b.router.regionStats()).get('atl')).toMatchObject({ requestsTotal: 5, routerActive: 2 });
  });

  it('asks only workers that have announced themselves (a starting worker is not waited for)', async () => {
    const answers = new ClusterAnswers();
    const a = worker(answers, 3);
    worker(answers, 2); // forked, not yet announced
    await a.router.announce();
    expect((await a.router.regionStats()).get('atl')?.requestsTotal).toBe(3);
  });

  it('settles only when every worker has resynced', async () => {
    const answers = new ClusterAnswers();
    let release: (ok: boolean) => void = () => undefined;
    const slow = new Promise<boolean>((resolve) => (release = resolve));
    const a = worker(answers, 0);
    const b = worker(answers, 0, { resync: () => slow });
    await a.router.announce();
    await b.router.announce();
    let settled = false;
    const settling = a.router.settle().then((everywhere) => ((settled = true), everywhere));
    await expect.poll(() => a.resyncs.length + b.resyncs.length).toBe(2);
    expect(settled).toBe(false);
    release(true);
    expect(await settling).toBe(true);
    expect(settled).toBe(true);
  });

  it('does not call a write settled everywhere while a forked worker has not announced itself', async () => {
    const answers = new ClusterAnswers();
    const a = worker(answers, 0);
    const starting = worker(answers, 0); // forked: it may be serving with an older snapshot, and cannot be asked yet
    await a.router.announce();
    expect(await a.router.settle()).toBe(false);
    await starting.router.announce();
    expect(await a.router.settle()).toBe(true);
    expect(starting.resyncs).toHaveLength(1);
    // A worker that dies before announcing is no longer waited for.
    const doomed = worker(answers, 0);
    expect(await a.router.settle()).toBe(false);
    doomed.detach();
    expect(await a.router.settle()).toBe(true);
  });

  it('leaves out, and reports, a worker that does not answer; forgets one that has gone', async () => {
    const missing: string[] = [];
    const answers = new ClusterAnswers({ workerTimeoutMs: 100, onMissing: (question) => missing.push(question) });
    const a = worker(answers, 3);
    const b = worker(answers, 2, { resync: () => new Promise(() => undefined) });
    await a.router.announce();
    await b.router.announce();
    expect(await a.router.settle()).toBe(false); // b never confirmed
    expect(missing).toEqual(['worker.resync']);
    b.detach();
    expect(answers.workers).toBe(1);
    expect((await a.router.regionStats()).get('atl')?.requestsTotal).toBe(3);
  });

  it("keeps a gone worker's counts in the counters and histograms, so its replacement does not make them go back", async () => {
    // Prometheus reads a counter that goes down as a reset and counts the whole new value as an
    // increase: a restarted worker's counts must not vanish from the router's.
    const answers = new ClusterAnswers();
    const a = worker(answers, 3);
    const b = worker(answers, 2);
    await a.router.announce();
    await b.router.announce();
    const before = await a.router.metrics();
    expect(before).toMatch(/^edge_router_requests_total\{region="atl",status_class="2xx",route="nearest"\} 5$/m);
    expect(before).toMatch(/^edge_router_request_duration_seconds_count 5$/m);
    b.detach(); // b died
    const replacement = worker(answers, 1);
    await replacement.router.announce();
    const after = await a.router.metrics();
    expect(after).toMatch(/^edge_router_requests_total\{region="atl",status_class="2xx",route="nearest"\} 6$/m);
    expect(after).toMatch(/^edge_router_request_duration_seconds_count 6$/m);
    expect(after).toMatch(/^edge_router_request_duration_seconds_bucket\{le="0.01"\} 6$/m);
    // Gauges are the living workers' only: b's open connections closed with it.
    expect(after).toMatch(/^edge_router_open_connections 4$/m);
  });

  it('counts a worker that misses one scrape by its last answer, not as zero', async () => {
    let hang = false;
    const answers = new ClusterAnswers({ workerTimeoutMs: 100 });
    const a = worker(answers, 3);
    const b = worker(answers, 2);
    b.pair.worker.handle('worker.metrics', () => (hang ? new Promise(() => undefined) : b.metrics.registry.getMetricsAsJSON()));
    await a.router.announce();
    await b.router.announce();
    expect(await a.router.metrics()).toMatch(/^edge_router_requests_total\{[^}]*\} 5$/m);
    hang = true;
    expect(await a.router.metrics()).toMatch(/^edge_router_requests_total\{[^}]*\} 5$/m);
  });

  it('counts a worker that dies while it is asked once, by its answer before', async () => {
    let answerLate: (() => void) | undefined;
    const answers = new ClusterAnswers();
    const a = worker(answers, 3);
    const b = worker(answers, 2);
    await a.router.announce();
    await b.router.announce();
    expect(await a.router.metrics()).toMatch(/^edge_router_requests_total\{[^}]*\} 5$/m);
    b.pair.worker.handle('worker.metrics', () => new Promise((resolve) => (answerLate = () => resolve(b.metrics.registry.getMetricsAsJSON()))));
    const scrape = a.router.metrics();
    await expect.poll(() => answerLate).not.toBe(undefined);
    b.detach(); // b dies with its answer on the way
    answerLate!();
    expect(await scrape).toMatch(/^edge_router_requests_total\{[^}]*\} 5$/m);
  });

  it('a worker asks through its own link: the answer is the same whichever worker asks', async () => {
    const answers = new ClusterAnswers();
    const routers: WholeRouter[] = [];
    for (const n of [1, 2, 4]) {
      const w = worker(answers, n);
      await w.router.announce();
      routers.push(w.router);
    }
    for (const r of routers) expect((await r.regionStats()).get('atl')?.requestsTotal).toBe(7);
  });
});
