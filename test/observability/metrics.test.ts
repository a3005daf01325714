import { describe, expect, it } from 'vitest';
import { RouterMetrics } from '../../src/observability/metrics.js';
import { staticSnapshot } from '../../src/registry/static-snapshot.js';
import { REGIONS } from '../support/regions.js';

function metrics() {
  return new RouterMetrics({
    regions: REGIONS,
    snapshot: () => staticSnapshot(REGIONS),
    registryStatus: () => ({ stale: false, staleForMs: 0, lastFullSyncAt: 1, dataLostAt: null }),
    geo: () => undefined,
    retryBudgetExhausted: () => 0,
    openConnections: () => 0,
    openTunnels: () => ({ http1: 0, http2: 0 }),
    refusedConnections: () => ({ perAddress: 0, rate: 0, resetFlood: 0, frameFlood: 0, penalty: 0, sendStalled: 0, atCapacity: 0, heavyNearCapacity: 0, idleReclaimed: 0 }),
    outstanding: () => ({ active: 0, queued: 0 }),
  });
}

const context = (reason: string) =>
  ({ requestId: 'r', traceId: null, method: 'GET', host: 'h', path: '/', protocol: 'HTTP/1.1', fn: 'api', org: 'acme', clientIp: '1.2.3.4', country: null, reason, routeMs: 0.01 }) as const;
const served = (region: string) => ({ region, tried: [region], status: 200, error: null, bytesIn: 0, bytesOut: 2, upstreamMs: 1, totalMs: 2 });

describe('RouterMetrics, cold-start-aware routing', () => {
  it('counts a cold start avoided for each request latency routing moved to a warm region, and pre-warms sent', async () => {
    const m = metrics();
    m.observe(context('warm:nyc'), served('nyc'));
    m.observe(context('warm:nyc'), served('nyc'));
    m.observe(context('nearest'), served('fra'));
    m.observe(context('cold-nearest'), served('fra'));
    // Routed warm but served by no region (refused first: a 413, the quota), or failed there: none avoided.
    m.observe(context('warm:nyc'), { ...served('nyc'), region: null, tried: [], status: 413 });
    m.observe(context('warm:nyc'), { ...served('nyc'), status: 502, error: 'upstream_error' });
    m.prewarmSent('fra');
    const text = await m.registry.metrics();
    expect(text).toMatch(/^edge_router_cold_starts_avoided_total\{region="nyc"\} 2$/m);
    expect(text).not.toMatch(/^edge_router_cold_starts_avoided_total\{region="fra"\}/m);
    expect(text).not.toMatch(/^edge_router_cold_starts_avoided_total\{region="none"\}/m);
    expect(text).toMatch(/^edge_router_prewarms_total\{region="fra"\} 1$/m);
    expect(text).toMatch(/^edge_router_requests_total\{region="fra",status_class="2xx",route="cold-nearest"\} 1$/m);
  });
});

describe('RouterMetrics, cold-start hedging', () => {
  it('counts hedges won and lost by the warm region raced, and a won hedge is no failover', async () => {
    const m = metrics();
    m.observe(context('nearest'), { ...served('nyc'), tried: ['fra', 'nyc'], route: 'hedged:fra>nyc', hedgedTo: 'nyc' });
    m.observe(context('nearest'), { ...served('fra'), hedgedTo: 'nyc' });
    m.observe(context('nearest'), { ...served('fra'), hedgedTo: 'nyc' });
    m.observe(context('nearest'), { ...served('nyc'), tried: ['fra', 'nyc'], route: 'failover:fra-error' });
    const text = await m.registry.metrics();
    expect(text).toMatch(/^edge_router_hedges_total\{region="nyc",result="won"\} 1$/m);
    expect(text).toMatch(/^edge_router_hedges_total\{region="nyc",result="lost"\} 2$/m);
    expect(text).toMatch(/^edge_router_failovers_total\{region="fra"\} 1$/m);
    expect(text).toMatch(/^edge_router_requests_total\{region="nyc",status_class="2xx",route="hedged"\} 1$/m);
  });
});

describe('RouterMetrics, the request counter', () => {
  it('keeps one series per region, status class and route kind, and adds to the right one', async () => {
    const m = metrics();
    const answered = (region: string | null, status: number) => ({ ...served(region ?? 'x'), region, tried: region === null ? [] : [region], status });
    m.observe(context('nearest'), answered('fra', 200));
    m.observe(context('nearest'), answered('fra', 204));
    m.observe(context('nearest'), answered('fra', 503));
    m.observe(context('nearest'), answered('fra', 404));
    m.observe(context('nearest'), answered('fra', 101));
    m.observe(context('nearest'), answered('fra', 302));
    m.observe(context('fallback:no-geo'), answered('fra', 200));
    m.observe(context('nearest'), answered('nyc', 200));
    m.observe(context('nearest'), answered('fra', 0));
    m.observe({ ...context('nearest'), reason: null }, answered(null, 400));
    const text = await m.registry.metrics();
    const series = text.split('\n').filter((line) => line.startsWith('edge_router_requests_total{'));
    expect(series.sort()).toEqual(
      [
        'edge_router_requests_total{region="fra",status_class="2xx",route="nearest"} 2',
        'edge_router_requests_total{region="fra",status_class="5xx",route="nearest"} 1',
        'edge_router_requests_total{region="fra",status_class="4xx",route="nearest"} 1',
        'edge_router_requests_total{region="fra",status_class="1xx",route="nearest"} 1',
        'edge_router_requests_total{region="fra",status_class="3xx",route="nearest"} 1',
        'edge_router_requests_total{region="fra",status_class="none",route="nearest"} 1',
        'edge_router_requests_total{region="fra",status_class="2xx",route="fallback"} 1',
        'edge_router_requests_total{region="nyc",status_class="2xx",route="nearest"} 1',
        'edge_router_requests_total{region="none",status_class="4xx",route="rejected"} 1',
      ].sort(),
    );
  });
});

describe('RouterMetrics, answers cut at the tier deadline', () => {
  it('counts answers cut because the function was still sending past its deadline, by region, and no other end', async () => {
    const m = metrics();
    m.observe(context('nearest'), { ...served('fra'), error: 'response_deadline' });
    m.observe(context('nearest'), { ...served('fra'), error: 'send_timeout' });
    m.observe(context('nearest'), { ...served('nyc'), status: 504, error: 'upstream_timeout' });
    m.observe(context('nearest'), served('nyc'));
    const text = await m.registry.metrics();
    expect(text).toMatch(/^edge_router_response_deadline_cuts_total\{region="fra"\} 1$/m);
    expect(text).not.toMatch(/^edge_router_response_deadline_cuts_total\{region="nyc"\}/m);
  });
});
