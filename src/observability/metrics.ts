/**
 * Prometheus metrics (prom-client) and the per-region counters the dashboard shows. The request
 * path calls `observe` once per request; what it touches every time is in hot-metrics.ts (plain
 * numbers, no label hashing), the rest is prom-client's.
 * Gauges that mirror other components' state are filled at scrape time (collect callbacks).
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { RESPONSE_DEADLINE, type RegionConfig, type RegistrySnapshot } from '../core/types.js';
import type { AccessContext, AccessOutcome } from './access-log.js';
import { HotCounter, HotHistogram, type CounterSeries } from './hot-metrics.js';
import { logLinesDropped } from './logger.js';
import { HANDSHAKE_FAILURES, type HandshakeFailureCounts } from '../core/tls-handshake-failure.js';

export interface MetricsSources {
  readonly regions: readonly RegionConfig[];
  readonly snapshot: () => RegistrySnapshot;
  readonly registryStatus: () => { stale: boolean; staleForMs: number; lastFullSyncAt: number | null; dataLostAt: number | null };
  readonly geo: () => { lookups: number; cacheHits: number } | undefined;
  readonly retryBudgetExhausted: () => number;
  /** Certificate files and GeoIP databases refused when read again (what they replaced kept serving). */
  readonly reloadsRefused?: () => { tls: number; geoip: number; adminToken: number };
  readonly openConnections: () => number;
  /** WebSocket tunnels open now, by how the client opened them (HTTP/1.1 Upgrade, or HTTP/2 extended CONNECT). */
  readonly openTunnels: () => { http1: number; http2: number };
  /** Connections refused for their address's quota, and HTTP/2 connections closed as reset floods. */
  readonly refusedConnections: () => { perAddress: number; rate: number; resetFlood: number; frameFlood: number; penalty: number; sendStalled: number; atCapacity: number; heavyNearCapacity: number; idleReclaimed: number };
  /** TLS handshakes that failed on the HTTPS listener, by reason (undefined before it listens, or without one). */
  readonly tlsHandshakeFailures?: () => Readonly<HandshakeFailureCounts> | undefined;
  /** The plain listener's answers in redirect mode (public-servers.ts httpsRedirects). */
  readonly httpsRedirects?: () => Readonly<{ redirected: number; refused: number }> | undefined;
  /** This router's own requests at a region: dispatched (holding a pool slot) and waiting for one. */
  readonly outstanding: (region: string) => { active: number; queued: number };
}

/** A region's numbers as the dashboard shows them; a cluster's workers' are summed (see cluster/whole-router.ts). */
export interface RegionStats {
  readonly requestsTotal: number;
  readonly errorsTotal: number;
  readonly failoversTotal: number;
  readonly ejectionsTotal: number;
  readonly requestsPerSecond: number;
  readonly routerActive: number;
  readonly routerQueued: number;
}

/** Requests per region, kept for the dashboard: totals and a one-second-bucket rate over 5 s. */
interface RegionCounters {
  requests: number;
  errors: number;
  failovers: number;
  ejections: number;
  buckets: Uint32Array;
}

const RATE_WINDOW_S = 5;

const STATUS_CLASSES = ['none', '1xx', '2xx', '3xx', '4xx', '5xx'] as const;

/** Index into STATUS_CLASSES. */
function statusClassIndex(status: number): number {
  return status >= 500 ? 5 : status >= 400 ? 4 : status >= 300 ? 3 : status >= 200 ? 2 : status === 101 ? 1 : 0;
}

/**
 * Route kinds by route reason, remembered: most reasons are the decider's constants, so the lookup
 * finds them by a hash V8 already has, and the kind is the same string every time (a slice made
 * per request was a new string to hash in the series lookup). Reasons built per request (a
 * failover's) are few per region; past the cap they are sliced each time, not remembered.
 */
const routeKinds = new Map<string, string>();
const MAX_REMEMBERED_REASONS = 256;

/** `failover:atl-down` → `failover`: the label stays low-cardinality. */
function routeKind(reason: string | null): string {
  if (reason === null) return 'rejected';
  let kind = routeKinds.get(reason);
  if (kind === undefined) {
    const colon = reason.indexOf(':');
    kind = colon === -1 ? reason : reason.slice(0, colon);
    if (routeKinds.size < MAX_REMEMBERED_REASONS) routeKinds.set(reason, kind);
  }
  return kind;
}

export class RouterMetrics {
  readonly registry = new Registry();
  private readonly requests: HotCounter;
  private readonly total: HotHistogram;
  private readonly upstream: HotHistogram;
  private readonly routing: HotHistogram;
  private readonly failovers: Counter<'region'>;
  private readonly retries: Counter;
  private readonly ejections: Counter<'region'>;
  private readonly prewarms: Counter<'region'>;
  private readonly hedges: Counter<'region' | 'result'>;
  private readonly coldStartsAvoided: Counter<'region'>;
  private readonly deadlineCuts: Counter<'region'>;
  /**
   * The request counter's series by region, then route kind, then status class: looked up with
   * strings V8 has already hashed (region ids and route kinds recur). One key joined per request
   * (`region|class|route`) was a new string to build, flatten and hash every time.
   */
  private readonly children = new Map<string, Map<string, (CounterSeries | undefined)[]>>();
  private readonly perRegion = new Map<string, RegionCounters>();
  private lastSecond = Math.floor(Date.now() / 1000);

  constructor(private readonly sources: MetricsSources) {
    const registers = [this.registry];
    // Node's own metrics under their standard names (process_*, nodejs_*), so stock Node.js
    // dashboards and alerts work as they are; the router's own are edge_router_*.
    collectDefaultMetrics({ register: this.registry });
    this.requests = new HotCounter('edge_router_requests_total', 'Requests answered, by region, status class and route kind', ['region', 'status_class', 'route']).register(this.registry);
    const buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
    this.total = new HotHistogram('edge_router_request_duration_seconds', 'Time from request arrival to the end of the answer', buckets).register(this.registry);
    this.upstream = new HotHistogram('edge_router_upstream_duration_seconds', 'Time from calling a region to its response headers', buckets).register(this.registry);
    this.routing = new HotHistogram(
      'edge_router_routing_duration_seconds',
      'Time spent deciding where a request goes (host, GeoIP, ranking, readiness)',
      [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005],
    ).register(this.registry);
    this.failovers = new Counter({ name: 'edge_router_failovers_total', help: 'Requests moved away from a region that failed them', labelNames: ['region'], registers });
    this.retries = new Counter({ name: 'edge_router_retries_total', help: 'Extra attempts made on another region', registers });
    this.ejections = new Counter({ name: 'edge_router_ejections_total', help: 'Regions ejected by passive outlier detection', labelNames: ['region'], registers });
    this.coldStartsAvoided = new Counter({
      name: 'edge_router_cold_starts_avoided_total',
      help: 'Requests latency routing sent away from a region with no idle warm container to one with (route warm:<region>), by the region that served them',
      labelNames: ['region'],
      registers,
    });
    this.deadlineCuts = new Counter({
      name: 'edge_router_response_deadline_cuts_total',
      help: 'Responses cut mid-body because the function was still sending past the tier deadline and grace (time spent waiting for the client not counted), by the region that sent them',
      labelNames: ['region'],
      registers,
    });
    this.hedges = new Counter({
      name: 'edge_router_hedges_total',
      help: 'Cold-start hedges sent (functions deployed with hedging on), by the warm region raced and whether its answer was the one taken',
      labelNames: ['region', 'result'],
      registers,
    });
    this.prewarms = new Counter({
      name: 'edge_router_prewarms_total',
      help: 'Containers asked of a region that latency routing passed over because it was cold for the function',
      labelNames: ['region'],
      registers,
    });
    new Counter({
      name: 'edge_router_log_lines_dropped_total',
      help: 'Log lines (access log and others) dropped because stdout did not keep up',
      registers,
      collect() {
        this.reset();
        this.inc(logLinesDropped());
      },
    });
    new Counter({
      name: 'edge_router_retry_budget_exhausted_total',
      help: 'Retries refused because the retry budget was spent',
      registers,
      collect() {
        this.reset();
        this.inc(sources.retryBudgetExhausted());
      },
    });
    new Gauge({
      name: 'edge_router_registry_stale',
      help: '1 while the health registry is unreachable and routing runs on the last snapshot',
      registers,
      // Across cluster workers: stale if any worker is.
      aggregator: 'max',
      collect() {
        this.set(sources.registryStatus().stale ? 1 : 0);
      },
    });
    new Gauge({
      name: 'edge_router_registry_staleness_seconds',
      help: 'How long the registry has been unreachable (0 when reachable)',
      registers,
      aggregator: 'max',
      collect() {
        this.set(sources.registryStatus().staleForMs / 1000);
      },
    });
    new Gauge({
      name: 'edge_router_registry_data_lost',
      help: '1 while the registry is found without its data (a Redis that restarted empty) and routing runs on the last-known functions, domains and settings while they are written back (a worker seeded from the copy the cluster primary held routes on it without writing it back)',
      registers,
      aggregator: 'max',
      collect() {
        this.set(sources.registryStatus().dataLostAt === null ? 0 : 1);
      },
    });
    new Gauge({
      name: 'edge_router_registry_last_sync_timestamp_seconds',
      help: 'When the snapshot was last fully read from the registry',
      registers,
      // Across cluster workers: the oldest sync, the one an alert should see.
      aggregator: 'min',
      collect() {
        const at = sources.registryStatus().lastFullSyncAt;
        this.set(at === null ? 0 : at / 1000);
      },
    });
    new Counter({
      name: 'edge_router_geoip_lookups_total',
      help: 'GeoIP lookups',
      registers,
      collect() {
        this.reset();
        this.inc(sources.geo()?.lookups ?? 0);
      },
    });
    new Counter({
      name: 'edge_router_geoip_cache_hits_total',
      help: 'GeoIP lookups answered from the cache',
      registers,
      collect() {
        this.reset();
        this.inc(sources.geo()?.cacheHits ?? 0);
      },
    });
    new Counter({
      name: 'edge_router_reloads_refused_total',
      help: 'Replaced certificate files, GeoIP databases and admin token files refused (the previous ones keep serving, if still valid)',
      labelNames: ['file'],
      registers,
      collect() {
        this.reset();
        const refused = sources.reloadsRefused?.() ?? { tls: 0, geoip: 0, adminToken: 0 };
        this.inc({ file: 'tls' }, refused.tls);
        this.inc({ file: 'geoip' }, refused.geoip);
        this.inc({ file: 'admin-token' }, refused.adminToken);
      },
    });
    new Gauge({
      name: 'edge_router_open_connections',
      help: 'Client connections open on the public listeners',
      registers,
      collect() {
        this.set(sources.openConnections());
      },
    });
    new Gauge({
      name: 'edge_router_websockets_open',
      help: 'WebSocket tunnels open now, by how the client opened them: http1 (Upgrade) or http2 (extended CONNECT, RFC 8441)',
      labelNames: ['protocol'],
      registers,
      collect() {
        const open = sources.openTunnels();
        this.labels('http1').set(open.http1);
        this.labels('http2').set(open.http2);
      },
    });
    new Counter({
      name: 'edge_router_connections_refused_total',
      help: 'Client connections the router refused or closed: per_address = over --max-conns-per-ip; rate = over --max-conn-rate-per-ip; reset_flood = HTTP/2 connection resetting most of its streams (rapid reset); frame_flood = HTTP/2 connection closed for a PING, SETTINGS, CONTINUATION or invalid-frame flood; penalty = from an address that flooded within --flood-penalty; send_stalled = HTTP/1.1 connection whose client took none of its answers for --send-timeout; at_capacity = closed as it came, its listener at --max-connections (none idle long enough to close); heavy_near_capacity = closed as it came, its listener within 1/64 of --max-connections and its address holding more than 16 connections and half an equal share of the cap; idle_reclaimed = idle connection (keep-alive between requests, HTTP/2 without a stream, nothing sent since it connected) closed, least recently used first, to make room near --max-connections',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        const refused = sources.refusedConnections();
        this.inc({ reason: 'per_address' }, refused.perAddress);
        this.inc({ reason: 'rate' }, refused.rate);
        this.inc({ reason: 'reset_flood' }, refused.resetFlood);
        this.inc({ reason: 'frame_flood' }, refused.frameFlood);
        this.inc({ reason: 'penalty' }, refused.penalty);
        this.inc({ reason: 'send_stalled' }, refused.sendStalled);
        this.inc({ reason: 'at_capacity' }, refused.atCapacity);
        this.inc({ reason: 'heavy_near_capacity' }, refused.heavyNearCapacity);
        this.inc({ reason: 'idle_reclaimed' }, refused.idleReclaimed);
      },
    });
    new Counter({
      name: 'edge_router_tls_handshake_failures_total',
      help: 'TLS handshakes with clients that failed on the HTTPS listener: no_certificate = none for the name asked (SNI) or for a client naming none; certificate_rejected = the client refused the certificate served (alert); protocol = no TLS version or ALPN protocol in common, or not TLS at all; cipher = no cipher suite, group or signature algorithm in common; timeout = not done within --tls-handshake-timeout; aborted = the client closed or reset the connection; other = anything else',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        const failures = sources.tlsHandshakeFailures?.();
        // Every reason, at 0 too: a rate over a series that appears only at its first failure misses that one.
        for (const reason of HANDSHAKE_FAILURES) this.inc({ reason }, failures?.[reason] ?? 0);
      },
    });
    new Counter({
      name: 'edge_router_https_redirects_total',
      help: 'Requests to the plain HTTP listener in redirect mode (--plain-http redirect): redirected = answered 308 to HTTPS; refused = answered 400, no redirect could be made (a Host that is no DNS name, a path with bytes a Location may not carry). Neither reaches a function nor writes an access line',
      labelNames: ['outcome'],
      registers,
      collect() {
        this.reset();
        const answers = sources.httpsRedirects?.();
        this.inc({ outcome: 'redirected' }, answers?.redirected ?? 0);
        this.inc({ outcome: 'refused' }, answers?.refused ?? 0);
      },
    });
    new Gauge({
      name: 'edge_router_region_up',
      help: '1 when the region is up or degraded and not drained, else 0',
      labelNames: ['region'],
      registers,
      // Across cluster workers: up only if every worker sees it up.
      aggregator: 'min',
      collect() {
        for (const [id, h] of sources.snapshot().regions) this.set({ region: id }, (h.status === 'up' || h.status === 'degraded') && !h.drained ? 1 : 0);
      },
    });
    new Gauge({
      name: 'edge_router_region_in_flight',
      help: 'Requests in flight at the region: the larger of what it last reported and what this router has outstanding there (routing spills on this)',
      labelNames: ['region'],
      registers,
      // Each cluster worker spills on its own view: report the largest.
      aggregator: 'max',
      collect() {
        for (const [id, h] of sources.snapshot().regions) {
          const own = sources.outstanding(id);
          this.set({ region: id }, Math.max(h.inFlight, own.active + own.queued));
        }
      },
    });
    new Gauge({
      name: 'edge_router_region_outstanding',
      help: "This router's requests at the region: active (holding an upstream connection) or queued (waiting for one)",
      labelNames: ['region', 'state'],
      registers,
      collect() {
        for (const r of sources.regions) {
          const own = sources.outstanding(r.id);
          this.set({ region: r.id, state: 'active' }, own.active);
          this.set({ region: r.id, state: 'queued' }, own.queued);
        }
      },
    });
    for (const r of sources.regions) this.perRegion.set(r.id, { requests: 0, errors: 0, failovers: 0, ejections: 0, buckets: new Uint32Array(RATE_WINDOW_S + 1) });
  }

  /** One finished request (from the access-log hook). */
  observe(ctx: AccessContext, out: AccessOutcome): void {
    const region = out.region ?? 'none';
    const cls = statusClassIndex(out.status);
    const route = routeKind(out.route ?? ctx.reason);
    let byRoute = this.children.get(region);
    if (byRoute === undefined) this.children.set(region, (byRoute = new Map()));
    let byClass = byRoute.get(route);
    if (byClass === undefined) byRoute.set(route, (byClass = []));
    let series = byClass[cls];
    if (series === undefined) byClass[cls] = series = this.requests.seriesFor(region, STATUS_CLASSES[cls]!, route);
    series.value++;
    // Only when that region served it: a request refused before any region (a 413, the address's
    // quota) or one the warm region failed avoided no cold start (and made a region="none" series).
    if (route === 'warm' && out.region !== null && out.status > 0 && out.status < 500) this.coldStartsAvoided.labels(region).inc();
    if (out.error === RESPONSE_DEADLINE) this.deadlineCuts.labels(region).inc();
    this.total.observe(out.totalMs / 1000);
    if (out.upstreamMs > 0) this.upstream.observe(out.upstreamMs / 1000);
    if (ctx.routeMs > 0) this.routing.observe(ctx.routeMs / 1000);
    if (out.hedgedTo !== undefined && out.hedgedTo !== null) this.hedges.labels(out.hedgedTo, route === 'hedged' ? 'won' : 'lost').inc();
    const tried = out.tried;
    // A hedge that won is not a failover: the first attempt was still running when it lost.
    if (tried.length > 1 && route !== 'hedged') {
      this.retries.inc(tried.length - 1);
      for (let i = 0; i < tried.length - 1; i++) {
        this.failovers.labels(tried[i]!).inc();
        const from = this.perRegion.get(tried[i]!);
        if (from !== undefined) from.failovers++;
      }
    }
    const counters = out.region === null ? undefined : this.perRegion.get(out.region);
    if (counters !== undefined) {
      this.roll();
      counters.requests++;
      counters.buckets[this.lastSecond % counters.buckets.length]!++;
      if (out.status >= 500 || out.status === 0) counters.errors++;
    }
  }

  prewarmSent(region: string): void {
    this.prewarms.labels(region).inc();
  }

  ejected(region: string): void {
    this.ejections.labels(region).inc();
    const counters = this.perRegion.get(region);
    if (counters !== undefined) counters.ejections++;
  }

  /** Per-region counters for the dashboard; requests/s averaged over the last full seconds. */
  regionStats(region: string): RegionStats {
    this.roll();
    const c = this.perRegion.get(region);
    const own = this.sources.outstanding(region);
    if (c === undefined) return { requestsTotal: 0, errorsTotal: 0, failoversTotal: 0, ejectionsTotal: 0, requestsPerSecond: 0, routerActive: own.active, routerQueued: own.queued };
    let recent = 0;
    for (let s = 1; s <= RATE_WINDOW_S; s++) recent += c.buckets[(this.lastSecond - s + c.buckets.length * 2) % c.buckets.length]!;
    return {
      requestsTotal: c.requests,
      errorsTotal: c.errors,
      failoversTotal: c.failovers,
      ejectionsTotal: c.ejections,
      requestsPerSecond: Math.round((recent / RATE_WINDOW_S) * 10) / 10,
      routerActive: own.active,
      routerQueued: own.queued,
    };
  }

  /** Every configured region's stats, keyed by region id. */
  allRegionStats(): Map<string, RegionStats> {
    return new Map(this.sources.regions.map((r) => [r.id, this.regionStats(r.id)]));
  }

  /** Clears the rate buckets of the seconds that have passed since the last request. */
  private roll(): void {
    const second = Math.floor(Date.now() / 1000);
    if (second === this.lastSecond) return;
    const steps = Math.min(RATE_WINDOW_S + 1, second - this.lastSecond);
    for (const c of this.perRegion.values()) {
      for (let s = 1; s <= steps; s++) c.buckets[(this.lastSecond + s) % c.buckets.length] = 0;
    }
    this.lastSecond = second;
  }
}
