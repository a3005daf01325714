/**
 * Composition root of one router process (or cluster worker): wires the concrete pieces —
 * GeoIP locator, registry and its watcher, prober, upstream pools, outlier detection, TLS
 * certificates, public and admin listeners, logger — and owns the shutdown order.
 * Everything here is configuration; behaviour lives in the modules it wires.
 */
import type { Socket } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { SharedSettings } from './config/shared-settings.js';
import { BUNDLED_SIMULATION_GEOIP, trustedProxyList } from './config/shared-settings.js';
import { RESPONSE_GRACE_MS, type TimeoutTier } from './core/types.js';
import type { MessageLink } from './cluster/message-link.js';
import { clusterWorkerRouter, singleProcessRouter } from './cluster/whole-router.js';
import { sharePenalties } from './cluster/shared-penalties.js';
import { seedFromSiblings } from './cluster/registry-seed.js';
import { createAdminApi, type AdminRequestFacts } from './dashboard/admin-api.js';
import { AdminTokens } from './dashboard/admin-auth.js';
import { AdminTokenFile } from './dashboard/admin-token-file.js';
import { AcmeIssuer, type CertificateIssuer } from './acme/acme-issuer.js';
import { CertificateAutomation } from './acme/certificate-automation.js';
import type { CertificateEvent } from './acme/certificate-manager.js';
import type { IssuedContexts } from './acme/issued-contexts.js';
import type { AcmeSettings } from './cli/acme-flags.js';
import type { CertificateVault } from './core/certificate-vault.js';
import { limitKeyOf, peerLimitKey } from './core/ip.js';
import { throttle } from './core/throttle.js';
import { monotonicNow } from './core/monotonic-clock.js';
import { createAcmeChallengeResponder } from './ingress/acme-challenge.js';
import { MemoryCertificateVault } from './registry/memory-certificate-vault.js';
import { RouterMetrics } from './observability/metrics.js';
import { MaxmindLocator } from './geoip/maxmind-locator.js';
import { openLocator } from './geoip/open-locator.js';
import { createEdgeHandler } from './ingress/edge-handler.js';
import { formatAccessLine, type AccessContext, type AccessOutcome } from './observability/access-log.js';
import { createUpgradeHandler } from './ingress/upgrade-handler.js';
import { createExtendedConnectHandler } from './ingress/extended-connect.js';
import type { WebSocketTunnelOptions } from './ingress/websocket-tunnel.js';
import { PublicServers, type PublicServersOptions } from './ingress/public-servers.js';
import { AdminConnections } from './dashboard/admin-connections.js';
import { http2RequestsWaiting } from './ingress/http2-after-read.js';
import type { ServerLimits } from './ingress/server-limits.js';
import type { LingerLimits } from './ingress/lingering-close.js';
import { logSinkOf, type Logger } from './observability/logger.js';
import { summarisedEvery } from './observability/log-summary.js';
import { OutlierDetector } from './proxy/outlier-detector.js';
import { SharedEjections } from './proxy/shared-ejections.js';
import { createPrewarmer } from './proxy/prewarm.js';
import type { ClientPaceLimits } from './proxy/exchange.js';
import { ExchangeWatchdog } from './proxy/exchange-watchdog.js';
import { RegionGates } from './proxy/region-gate.js';
import { AddressQuota } from './ingress/address-quota.js';
import { InFlight } from './ingress/in-flight.js';
import { UpgradesInProgress } from './ingress/upgrades-in-progress.js';
import { UpstreamPools } from './proxy/pools.js';
import { RetryBudget } from './proxy/retry-budget.js';
import type { HealthRegistry } from './registry/health-registry.js';
import { MemoryRegistry } from './registry/memory-registry.js';
import { TicketKeySync } from './ingress/certificates/ticket-keys.js';
import { Prober, probeHeartbeatTtlMs } from './registry/prober.js';
import { connectOrchestrators } from './cli/orchestrator-connection.js';
import { RedisRegistry, type SentinelTarget } from './registry/redis-registry.js';
import { logEvictionChecks } from './cli/open-registry.js';
import { RegistryWatcher } from './registry/registry-watcher.js';
import { trustTest, type ClientAddressHeader } from './routing/client-address.js';
import { healthSkip } from './routing/pick-region.js';
import { createRouteDecider, type RoutingMode, type UnknownFunctionPolicy } from './routing/route-decider.js';
import type { RegionId, WorkerSlot } from './core/types.js';
import { refusedByParser } from './ingress/request-context.js';
import { thrownText } from './core/errors.js';

/** Connections the admin listener keeps open at once: its clients are a few dashboards (32 streams), probes and scrapers. */
export const ADMIN_MAX_CONNECTIONS = 256;
/** …and one address holds at most this many of them: a dashboard takes a few, a scraper or a probe one or two. */
export const ADMIN_MAX_CONNECTIONS_PER_ADDRESS = 32;
/**
 * The longest an admin connection waits between requests, whatever --keep-alive-timeout gives the
 * public listeners (up to an hour): 256 connections held idle that long would shut operators out.
 * Dashboards' event streams are requests in progress, not idle connections: this does not cut them.
 */
export const ADMIN_KEEP_ALIVE_MAX_MS = 5_000;

export interface RouterConfig {
  readonly shared: SharedSettings;
  readonly bindAddress: string;
  readonly httpsPort: number;
  readonly httpPort: number;
  readonly adminHost: string;
  readonly adminPort: number;
  /** TLS options for the HTTPS listener (certificate store wired by the caller); null = no HTTPS. */
  readonly tls: PublicServersOptions['tls'];
  readonly plainHttp: 'redirect' | 'serve';
  /** Run by `start`, the local simulation: the bundled GeoIP database is the one meant (no geoip_simulation warning). */
  readonly simulation?: boolean;
  /** The HTTPS port the plain listener's redirects name (--redirect-port); absent: the HTTPS listener's own. */
  readonly redirectPort?: number;
  /** WebSockets over HTTP/2 (RFC 8441 extended CONNECT) on the HTTPS listener; absent: on. */
  readonly http2WebSockets?: boolean;
  readonly wrapListener?: PublicServersOptions['wrapListener'];
  /** Redis (URL or Sentinels); null = the memory registry. */
  readonly redis: { readonly url: string; readonly sentinel?: SentinelTarget } | null;
  readonly redisPrefix: string;
  readonly unknownFunctions: UnknownFunctionPolicy;
  /** The forwarding header trusted proxies' client chain is read from (default X-Forwarded-For). */
  readonly clientAddressHeader?: ClientAddressHeader;
  /** How regions are ordered: nearest (default) or by expected time to answer (cold starts counted). */
  readonly routing?: { readonly routing: RoutingMode; readonly msPer100Km: number; readonly hedgeDelayMs?: number };
  /** Shared with the orchestrators: with latency routing, lets this router pre-warm a cold region. */
  readonly prewarmToken?: string;
  readonly maxAttempts: number;
  readonly connectTimeoutMs: number;
  /** Certificate files refused so far (CertificateStore events), for the metrics; the caller owns the store. */
  readonly tlsRefusals?: () => number;
  /** How often the orchestrator TLS files are read again (default 60 s; tests shorten it). */
  readonly orchestratorTlsReloadMs?: number;
  readonly headersTimeoutMs: number;
  readonly tierTimeoutMs: Readonly<Record<TimeoutTier, number>>;
  /** How long past its tier deadline a response may still stream before it is cut (default RESPONSE_GRACE_MS, 5 s; tests shorten it). */
  readonly responseGraceMs?: number;
  readonly maxBodyBytes: Readonly<Record<TimeoutTier, number>>;
  readonly drainTimeoutMs: number;
  readonly limits: ServerLimits;
  /** Bounds of an HTTP/1 connection's lingering close (lingering-close.ts; default DEFAULT_LINGER_LIMITS). */
  readonly lingering?: LingerLimits;
  /** What one client may hold: queue places, pool slots, time (see docs/hostile-clients.md). */
  readonly clientBounds: ClientBounds;
  readonly probe: { readonly path: string; readonly intervalMs: number; readonly timeoutMs: number; readonly healthyThreshold: number; readonly unhealthyThreshold: number } | null;
  /** How long a probe heartbeat counts, when the probes are not this process's (a cluster primary's); else from `probe`. */
  readonly probeHeartbeatTtlMs?: number;
  readonly hsts: string | null;
  /** TLS session tickets: the shared key's rotation period (ticket-keys.ts); 0 or absent = each process keeps its own key. */
  readonly tlsTicketRotationMs?: number;
  /** Log one line per request (the benchmark measures with it on). */
  readonly accessLog: boolean;
  /** A registry shared with code in this process (`edge-router start`); otherwise built from `redis`. */
  readonly registry?: HealthRegistry;
  /**
   * The channel to the cluster primary when this process is one of several workers: metrics,
   * dashboard numbers and operator actions then cover every worker (cluster/whole-router.ts).
   */
  readonly primaryLink?: MessageLink;
  /** This worker's slot in its cluster: latency routing counts on its share of idle containers only. */
  readonly workerSlot?: WorkerSlot;
  /** Admin API bearer token (null: the admin API answers 401 to everything but health). */
  readonly adminToken: string | null;
  /**
   * The file `adminToken` was read from, watched for replacements: a new token is taken at once and
   * the replaced one for `overlapMs` more. Absent: the token stays until the router restarts.
   */
  readonly adminTokenRotation?: { readonly file: string; readonly overlapMs: number };
  /** Admin GET endpoints without a token. */
  readonly adminPublicReads: boolean;
  /** Host names (besides addresses and localhost) token-less public reads are answered for. */
  readonly adminAllowedHosts?: readonly string[];
  /**
   * Certificates for custom domains from an ACME CA (src/acme/). The caller serves `issued`
   * through its SNI callback; `coveredByFiles` says which names its certificate files serve.
   */
  readonly acme?: AcmeSettings & { readonly issued: IssuedContexts; readonly coveredByFiles: (name: string) => boolean };
}

export interface ClientBounds {
  /** Upstream connections (and so dispatched requests) per orchestrator. */
  readonly poolConnections: number;
  /** Longest wait for a slot at one region before moving on. */
  readonly queueTimeoutMs: number;
  /** Requests waiting per region. */
  readonly maxQueue: number;
  /** Share of a region's slots streaming uploads may hold. */
  readonly uploadShare: number;
  /** Share of a region's slots, and of its queue, one organisation's requests may hold (1 = no limit). */
  readonly tenantShare: number;
  /** Bodies up to this size are buffered before dispatch. */
  readonly bodyBufferBytes: number;
  readonly pace: ClientPaceLimits;
  /** Open connections per peer address (0 = no limit; trusted proxies are exempt). */
  readonly maxConnectionsPerAddress: number;
  /** New connections per peer address per second, bursts of twice that (0 = no limit; trusted proxies are exempt). */
  readonly maxConnectRatePerAddress: number;
  /** Requests in progress per client address (0 = no limit). */
  readonly maxRequestsPerClient: number;
  /** An address whose HTTP/2 connection was closed as a reset or frame flood is refused at connect this long. */
  readonly floodPenaltyMs: number;
  /** A WebSocket tunnel that carries no byte either way this long is closed (0 = never). */
  readonly tunnelIdleTimeoutMs: number;
}

/** At most one pre-warm per function and region this often (a burst passing a cold region over asks once). */
const PREWARM_INTERVAL_MS = 2_000;

export interface RunningRouter {
  readonly ports: { https: number | null; http: number; admin: number };
  /** Re-applies the default certificate after a reload (see PublicServers.updateDefaultCredentials). */
  updateDefaultCredentials(credentials: { cert: string; key: string } | undefined): void;
  readonly watcher: RegistryWatcher;
  readonly registry: HealthRegistry;
  /** Custom-domain certificates (with --acme-directory): tell it when the certificate files change. */
  readonly certificates: CertificateAutomation | undefined;
  /** This router's requests at a region: dispatched (holding an upstream connection) and waiting for one. */
  outstanding(region: string): { active: number; queued: number };
  /** Readiness off, drain, close everything; resolves when done (at most drainTimeoutMs + a little). */
  close(): Promise<void>;
  /**
   * Takes no more admin connections; those open are served until the drain ends. For a cluster
   * worker that drains while the router goes on: the admin port's next connections, a readiness
   * probe's among them, then go to the workers that serve, not to one that answers /readyz 503.
   */
  leaveAdminPort(): void;
}

export async function startEdgeRouter(config: RouterConfig, logger: Logger): Promise<RunningRouter> {
  const { shared } = config;
  const regions = shared.regions.regions;

  let geoipRefusals = 0;
  let adminTokenRefusals = 0;
  const locator = await openLocator(shared.geoip, {
    watch: true,
    source: shared.geoipSource,
    onEvent: (e) => {
      if (e.type === 'loaded') {
        logger.info({ event: 'geoip_loaded', file: e.file, databaseType: e.databaseType, ipVersion: e.ipVersion }, 'GeoIP database loaded');
        if (e.ipVersion === 4) logger.warn({ event: 'geoip_ipv4_only', file: e.file }, 'the GeoIP database covers IPv4 only: IPv6 clients are not located (they go by the country or default region fallback); use a database with both families');
      }
      else if (e.type === 'watch-failed') {
        logger.warn({ event: 'geoip_watch', dir: e.dir, error: e.reason }, 'the watch on the GeoIP database directory failed: a replacement is seen by the periodic check alone (every 10 s)');
      } else if (e.type === 'reload-failed') {
        geoipRefusals++;
        logger.error({ event: 'geoip_reload_failed', file: e.file, reason: e.reason }, 'GeoIP reload refused; keeping the previous database');
      }
    },
  });
  if (shared.geoip === null) logger.warn({ event: 'geoip_none' }, 'running without a GeoIP database: every client is routed from the fallback region');
  else if (shared.geoipSource === BUNDLED_SIMULATION_GEOIP && config.simulation !== true) {
    logger.warn({ event: 'geoip_simulation', file: shared.geoip }, "locating clients with the bundled simulation GeoIP database, which places only the simulation's own addresses: real clients are routed from the fallback region; give a real database with --geoip or regions.json's geoip");
  }

  const registry: HealthRegistry =
    config.registry ??
    (config.redis === null
      ? new MemoryRegistry()
      : new RedisRegistry({
          ...config.redis,
          keyPrefix: config.redisPrefix,
          regions: regions.map((r) => r.id),
          // A Redis that refuses writes takes no heartbeat: the watcher must see it as silent (fail-static).
          readsNeedWrites: true,
          onRejected: (where, reason) => logger.warn({ event: 'registry_rejected', where, reason }, 'ignored a malformed registry entry'),
          onConnectionError: throttle(5_000, (err: Error) => logger.warn({ event: 'registry_connection', error: err.message }, 'registry connection trouble')),
          ...logEvictionChecks(logger),
        }));
  let reinstate: (region: string) => void = () => undefined;
  // A failing read repeats every poll while it lasts: once a minute is enough to be seen.
  const watcherError = throttle(60_000, (error: string) => logger.warn({ event: 'registry_error', error }, 'a registry read or write failed, or the registry held something refused (error says which)'));
  const probeTtlMs = config.probeHeartbeatTtlMs ?? (config.probe === null ? undefined : probeHeartbeatTtlMs(config.probe.intervalMs, config.probe.timeoutMs));
  const watcher = new RegistryWatcher({
    registry,
    regions,
    ...(probeTtlMs === undefined ? {} : { probeHeartbeatTtlMs: probeTtlMs }),
    onEvent: (e) => {
      if (e.type === 'stale') logger.warn({ event: 'registry_stale', error: e.error }, 'registry unreachable: routing on the last-known snapshot (fail-static)');
      else if (e.type === 'recovered') logger.info({ event: 'registry_recovered', staleForMs: e.staleForMs }, 'registry reachable again; resynced');
      else if (e.type === 'data-lost') {
        if (e.heldCopyAt === null) logger.error({ event: 'registry_data_lost', generation: e.generation, writingBack: true }, 'the registry has lost its data (restarted empty?): routing on the last-known functions, domains and settings, and writing them back');
        else {
          logger.error(
            { event: 'registry_data_lost', generation: e.generation, writingBack: false, heldCopyAt: new Date(e.heldCopyAt).toISOString() },
            'the registry has lost its data (restarted empty?): routing on the copy of the functions, domains and settings the cluster primary held since heldCopyAt, NOT writing it back (it may be older than the lost data); routing by the registry once it holds data again (an orchestrator re-asserting its functions, a router with live state restoring, `edge-router registry import`)',
          );
        }
      } else if (e.type === 'data-restored') logger.info({ event: 'registry_data_restored', lostForMs: e.lostForMs }, 'the registry holds its data again');
      else if (e.type === 'error') watcherError(e.error);
      else if (e.type === 'restore-failed') logger.warn({ event: 'registry_restore_failed', error: e.error }, 'could not write the last-known state back to the registry; will retry');
      else if (e.type === 'seeded') {
        if (e.heldCopyAt === null) {
          logger.warn({ event: 'registry_seeded', source: 'sibling', contactAt: new Date(e.contactAt).toISOString() }, 'registry unreachable at start: routing on the directory the other workers last read (fail-static, stale since contactAt)');
        } else {
          logger.warn(
            { event: 'registry_seeded', source: 'held-copy', contactAt: new Date(e.contactAt).toISOString(), heldCopyAt: new Date(e.heldCopyAt).toISOString(), heldForMs: Date.now() - e.heldCopyAt },
            'registry unreachable at start and no other worker could answer: routing on the copy the cluster primary held since heldCopyAt (stale since contactAt; never written back to the registry)',
          );
        }
      } else if (e.type === 'held-copy-dropped') {
        logger.warn({ event: 'registry_held_copy_dropped', heldCopyAt: new Date(e.heldCopyAt).toISOString(), generation: e.generation }, "the registry holds data again that this worker did not write: routing by it, in place of the cluster primary's copy");
      } else if (e.type === 'data-replaced') logger.warn({ event: 'registry_data_replaced', from: e.from, to: e.to }, 'the registry holds another generation of data (restored or imported): routing by it');
      else if (e.type === 'transition') {
        logger.info({ event: 'region_status', region: e.region, from: e.from, to: e.to }, `region ${e.region} is ${e.to}`);
        // A region that reports healthy again after being down is let back before its ejection ends
        // (not one only this process had not heard from yet: its ejection stands for every router).
        if (e.from === 'down' && e.to === 'up' && e.firstHeard !== true) reinstate(e.region);
      }
    },
  });
  await watcher.start();
  // A cluster worker that could not read the registry routes by what its siblings know (cluster/registry-seed.ts).
  const stopSeeding = config.primaryLink === undefined ? undefined : await seedFromSiblings(config.primaryLink, watcher);
  logger.info({ event: 'registry', kind: registry.kind, target: registry instanceof RedisRegistry ? registry.describe() : null }, `health registry: ${registry.kind}`);

  // With the memory registry nobody else reports: the router probes the regions itself.
  // Probe heartbeats go to the watcher directly too, so they count even while Redis is away.
  const orchestrators = connectOrchestrators(config.shared, config.connectTimeoutMs, logger, config.orchestratorTlsReloadMs);
  let prober: Prober | undefined;
  if (config.probe !== null) {
    const ttlMs = probeHeartbeatTtlMs(config.probe.intervalMs, config.probe.timeoutMs);
    prober = new Prober({
      regions,
      ...config.probe,
      connect: orchestrators.connector.connect,
      onHeartbeat: async (hb) => {
        watcher.applyHeartbeat(hb);
        await registry.writeHeartbeat(hb, ttlMs).catch(() => undefined);
      },
    });
    prober.start();
  }

  const bounds = config.clientBounds;
  const gates = new RegionGates({
    regions: regions.map((r) => r.id),
    slots: (id) => bounds.poolConnections * (regions.find((r) => r.id === id)?.orchestrators.length ?? 1),
    uploadShare: bounds.uploadShare,
    tenantShare: bounds.tenantShare,
    maxQueue: bounds.maxQueue,
  });
  const regionUsable = (region: string, nowMs: number): boolean => {
    const h = watcher.snapshot.regions.get(region);
    return h !== undefined && healthSkip(h, nowMs) === undefined;
  };
  const watchdog = new ExchangeWatchdog({ gates, usable: regionUsable });
  watchdog.start();
  // Keyed like the limits at connect: an IPv6 client by its /64, which it could otherwise roam.
  const perClient = new AddressQuota(bounds.maxRequestsPerClient, limitKeyOf);

  const decider = createRouteDecider({
    regions,
    zone: shared.zone,
    locator,
    countryRegions: shared.regions.countryRegions,
    defaultRegion: shared.regions.defaultRegion,
    customDomains: shared.regions.customDomains,
    unknownFunctions: config.unknownFunctions,
    // The gates were made for `regions` in this order, as the decider's positions count them.
    localLoadAt: (index) => gates.outstandingAt(index),
    ...(config.routing === undefined ? {} : { ...config.routing }),
    prewarmIntervalMs: config.prewarmToken === undefined ? 0 : PREWARM_INTERVAL_MS,
    tierTimeoutMs: config.tierTimeoutMs,
    ...(config.workerSlot === undefined ? {} : { idleShare: config.workerSlot }),
  });
  const pools = new UpstreamPools(regions, { connectTimeoutMs: config.connectTimeoutMs, connections: bounds.poolConnections, connector: orchestrators.connector });
  const ejectedInSnapshot = (region: RegionId) => (watcher.snapshot.regions.get(region)?.ejectedUntil ?? 0) > Date.now();
  const outliers = new OutlierDetector({ regionCount: regions.length, shared: { regions: regions.map((r) => r.id), ejectedElsewhere: ejectedInSnapshot } });
  const ejections = new SharedEjections({
    outliers,
    store: registry,
    ejectedInSnapshot,
    applyHere: (region, ejection) => watcher.applyEjection(region, ejection),
    onEjected: (ejection) => {
      metrics.ejected(ejection.region);
      logger.warn({ event: 'region_ejected', ...ejection }, `region ${ejection.region} ejected`);
    },
    onReinstated: (region) => logger.info({ event: 'region_reinstated', region }, `region ${region} reports healthy again: ejection lifted`),
  });
  reinstate = (region) => ejections.reportedHealthy(region);
  const budget = new RetryBudget({ tenantShare: bounds.tenantShare });
  const trust = trustTest(shared.trustedProxies.length === 0 ? null : trustedProxyList(shared.trustedProxies, 'trusted proxies'));
  const clientAddressHeader = config.clientAddressHeader ?? 'x-forwarded-for';
  const sink = logSinkOf(logger);
  const pid = process.pid;
  let servers: PublicServers | undefined;
  /** WebSocket tunnels open now, for the metrics (websocket-tunnel.ts counts them). */
  const openTunnels = { http1: 0, http2: 0 };
  const metrics = new RouterMetrics({
    regions,
    snapshot: () => watcher.snapshot,
    registryStatus: () => watcher.status(),
    geo: () => (locator instanceof MaxmindLocator ? locator.stats : undefined),
    retryBudgetExhausted: () => budget.exhausted,
    reloadsRefused: () => ({ tls: config.tlsRefusals?.() ?? 0, geoip: geoipRefusals, adminToken: adminTokenRefusals }),
    openConnections: () => servers?.openConnections ?? 0,
    openTunnels: () => openTunnels,
    tlsHandshakeFailures: () => servers?.tlsHandshakeFailures,
    httpsRedirects: () => servers?.httpsRedirects,
    refusedConnections: () => ({ perAddress: servers?.refusedConnections ?? 0, rate: servers?.rateRefusedConnections ?? 0, resetFlood: servers?.resetFloods ?? 0, frameFlood: servers?.frameFloods ?? 0, penalty: servers?.penalizedConnections ?? 0, sendStalled: servers?.sendStalledConnections ?? 0, atCapacity: servers?.droppedAtCapacity ?? 0, heavyNearCapacity: servers?.droppedHeavyNearCapacity ?? 0, idleReclaimed: servers?.reclaimedIdleConnections ?? 0 }),
    outstanding: (region) => gates.stats(region),
  });
  const part = { metrics, watcher };
  const clusterRouter = config.primaryLink === undefined ? undefined : clusterWorkerRouter(config.primaryLink, part);
  const wholeRouter = clusterRouter ?? singleProcessRouter(part);
  const logAccess = config.accessLog && logger.isLevelEnabled('info');
  const onAccess = (context: AccessContext, outcome: AccessOutcome) => {
    metrics.observe(context, outcome);
    if (logAccess) sink.write(formatAccessLine(context, outcome, Date.now(), pid));
  };

  const prewarm = config.prewarmToken === undefined ? undefined : createPrewarmer(pools, config.prewarmToken, (region) => metrics.prewarmSent(region));

  let ready = false;
  const inFlight = new InFlight();
  const upgrades = new UpgradesInProgress();
  // A bug must cost one request, not the process; the stack is for us (clients get a plain 500).
  let faults = 0;
  const logFault = throttle(5_000, (err: unknown, requestId: string | undefined) =>
    logger.error(
      { event: 'request_fault', faults, ...(requestId === undefined ? {} : { requestId }), err: err instanceof Error ? { message: err.message, stack: err.stack } : thrownText(err) },
      'a request failed on a fault of the router: answered 500 (faults counts them all)',
    ),
  );
  const onFault = (err: unknown, requestId?: string) => {
    faults++;
    logFault(err, requestId);
  };
  const handlerOptions = (proto: 'https' | 'http') =>
    createEdgeHandler({
      decider,
      snapshot: () => watcher.snapshot,
      trust,
      clientAddressHeader,
      maxHeaderBytes: config.limits.maxHeaderBytes,
      proto,
      hsts: proto === 'https' ? config.hsts : null,
      zone: shared.zone,
      tierTimeoutMs: config.tierTimeoutMs,
      maxBodyBytes: config.maxBodyBytes,
      exchange: {
        pools,
        gates,
        live: watchdog.live,
        regionUsable,
        queueTimeoutMs: bounds.queueTimeoutMs,
        bodyBufferBytes: bounds.bodyBufferBytes,
        // An HTTP/2 stream's request timeout is the exchange's to keep (Node keeps HTTP/1's).
        pace: { ...bounds.pace, requestTimeoutMs: config.limits.requestTimeoutMs },
        budget,
        outliers,
        maxAttempts: config.maxAttempts,
        headersTimeoutMs: config.headersTimeoutMs,
        responseGraceMs: config.responseGraceMs ?? RESPONSE_GRACE_MS,
        onEjection: ejections.ejected,
      },
      draining: () => servers?.isDraining() ?? false,
      onAccess,
      inFlight,
      perClient,
      onFault,
      ...(prewarm === undefined ? {} : { prewarm }),
    });

  const tunnelOptions = (proto: 'https' | 'http'): WebSocketTunnelOptions => ({
    decider,
    snapshot: () => watcher.snapshot,
    trust,
    clientAddressHeader,
    maxHeaderBytes: config.limits.maxHeaderBytes,
    proto,
    hsts: proto === 'https' ? config.hsts : null,
    zone: shared.zone,
    pools,
    gates,
    regionUsable,
    queueTimeoutMs: bounds.queueTimeoutMs,
    tierTimeoutMs: config.tierTimeoutMs,
    headersTimeoutMs: config.headersTimeoutMs,
    idleTimeoutMs: bounds.tunnelIdleTimeoutMs,
    sendTimeoutMs: bounds.pace.sendTimeoutMs,
    onFault,
    maxAttempts: config.maxAttempts,
    perClient,
    budget,
    outliers,
    onEjection: ejections.ejected,
    onAccess,
    inProgress: upgrades,
    draining: () => servers?.isDraining() ?? false,
    ...(prewarm === undefined ? {} : { prewarm }),
  });
  const httpsTunnels = tunnelOptions('https');

  const vault = config.acme === undefined ? undefined : certificateVaultOf(registry, logger);
  // Before the listeners open: a router that cannot load its ACME client fails its start with nothing bound.
  const issuer = config.acme === undefined || vault === undefined ? undefined : await AcmeIssuer.open({ ...config.acme, vault });
  const sharePenalty = config.primaryLink === undefined ? undefined : sharePenalties(config.primaryLink, (address, untilMs, lengthMs) => servers?.penalizeAddress(address, untilMs, lengthMs));
  servers = new PublicServers({
    bindAddress: config.bindAddress,
    httpsPort: config.httpsPort,
    httpPort: config.httpPort,
    tls: config.tls,
    plainHttp: config.plainHttp,
    ...(config.redirectPort === undefined ? {} : { redirectPort: config.redirectPort }),
    limits: config.limits,
    ...(config.lingering === undefined ? {} : { lingering: config.lingering }),
    handleHttps: handlerOptions('https'),
    handlePlain: handlerOptions('http'),
    upgradeHttps: createUpgradeHandler({ ...httpsTunnels, onTunnel: (d) => (openTunnels.http1 += d) }),
    upgradePlain: createUpgradeHandler({ ...tunnelOptions('http'), onTunnel: (d) => (openTunnels.http1 += d) }),
    ...(config.http2WebSockets === false ? {} : { connectHttps: createExtendedConnectHandler({ ...httpsTunnels, onTunnel: (d) => (openTunnels.http2 += d) }) }),
    // Not before the directory is read: until then every function is answered 503 registry_unreachable.
    ready: () => ready && watcher.snapshot.directoryUnread !== true,
    sendTimeoutMs: bounds.pace.sendTimeoutMs,
    maxConnectionsPerAddress: bounds.maxConnectionsPerAddress,
    maxConnectRatePerAddress: bounds.maxConnectRatePerAddress,
    floodPenaltyMs: bounds.floodPenaltyMs,
    // What Node's HTTP/1 parser refused gets its access line and counts as a request, like any other unrouted answer.
    onRefusedRequest: (clientIp, status, code) => {
      const { context, outcome } = refusedByParser(clientIp, status, code);
      onAccess(context, outcome);
    },
    // One line per 10 s at most: each flooding connection would otherwise write one (the metric counts them all).
    onFrameFlood: throttle(10_000, (address: string, kind: string) => logger.warn({ event: 'http2_flood', client: address, kind }, 'closed an HTTP/2 connection that flooded')),
    // One line per 10 s at most, as for floods: at the cap every new connection would write one.
    onAtCapacity: throttle(10_000, (listener: string, maxConnections: number) =>
      logger.warn({ event: 'connections_at_capacity', listener, maxConnections }, 'a listener is at or near --max-connections: new connections are closed as they come (those of addresses holding more than their share within 1/64 of it, the others once nothing idle is left to close)'),
    ),
    exemptPeer: trust,
    ...(sharePenalty === undefined ? {} : { onPenalized: sharePenalty }),
    ...(config.wrapListener ? { wrapListener: config.wrapListener } : {}),
    ...(vault === undefined
      ? {}
      : { answerAcmeChallenge: createAcmeChallengeResponder({ vault, onError: throttle(60_000, (err: unknown) => logger.warn({ event: 'acme_challenge', error: String(err) }, 'could not read an ACME challenge answer from the registry')) }) }),
  });
  const ports = await servers.start();
  const certificates = config.acme === undefined || vault === undefined || issuer === undefined ? undefined : automateCertificates(config.acme, vault, issuer, watcher, shared.regions.customDomains, logger);
  await certificates?.start();
  const ticketKeys = config.tls === null || !config.tlsTicketRotationMs ? undefined : shareTicketKeys(registry, servers, config.tlsTicketRotationMs, logger);
  // The first read is awaited briefly, so the first clients already get the shared key; a registry
  // that does not answer does not hold the start (Node's own key serves until it does).
  if (ticketKeys !== undefined) await Promise.race([ticketKeys.start(), new Promise((resolve) => setTimeout(resolve, 1_000).unref())]);

  if (config.adminToken === null) {
    logger.warn({ event: 'admin_token_missing' }, 'no admin token (EDGE_ADMIN_TOKEN): the admin API and dashboard actions are disabled');
  }
  const adminTokens = new AdminTokens(config.adminToken);
  const adminTokenFile = config.adminToken === null || config.adminTokenRotation === undefined ? undefined : watchAdminTokenFile(config.adminToken, config.adminTokenRotation, adminTokens, logger, () => adminTokenRefusals++);
  // A request refused for its token is someone trying (or a client misconfigured): logged, at most
  // one line every 10 s with how many were refused since, so a flood of guesses cannot flood the log.
  const refusedAdmin = summarisedEvery<AdminRequestFacts & { reason: string }>(10_000, (request, refused) =>
    logger.warn({ event: 'admin_unauthorized', ...request, refused }, 'admin requests were refused for their token (refused: how many since the last such line)'),
  );
  // A failed request is an operator's (each answered with its error) or, with --admin-public-reads
  // and the registry down, anyone's in a loop: at most one line a second, counting the others.
  const adminFailed = summarisedEvery<{ err: unknown; request: AdminRequestFacts }>(1_000, ({ err, request }, failed) =>
    logger.error({ event: 'admin_error', error: thrownText(err), ...request, failed }, 'an admin API request failed (failed: how many since the last such line)'),
  );
  const admin = createAdaptorServer({
    fetch: createAdminApi({
      tokens: adminTokens,
      publicReads: config.adminPublicReads,
      allowedHosts: config.adminAllowedHosts ?? [],
      regions,
      snapshot: () => watcher.snapshot,
      watcherStatus: () => watcher.status(),
      registry,
      decider,
      router: wholeRouter,
      ...(certificates === undefined ? {} : { certificates: (page) => certificates.manager.status(page) }),
      ready: () => ready && !servers!.isDraining(),
      onAction: (action, fields) => logger.info({ event: 'admin_action', action, ...fields }, `admin: ${action}`),
      onError: (err, request) => adminFailed({ err, request }),
      onUnauthorized: refusedAdmin,
    }).fetch,
  }) as HttpServer;
  // Node's defaults would let anyone who reaches the admin port (a cluster-internal Service, say)
  // hold any number of connections, each a minute before its head and five minutes for a body: the
  // same head, request and keep-alive timeouts as the public listeners (keep-alive at most
  // ADMIN_KEEP_ALIVE_MAX_MS), and a connection cap of its own.
  admin.headersTimeout = config.limits.headersTimeoutMs;
  admin.requestTimeout = config.limits.requestTimeoutMs;
  admin.keepAliveTimeout = Math.min(config.limits.keepAliveTimeoutMs, ADMIN_KEEP_ALIVE_MAX_MS);
  (admin as unknown as { connectionsCheckingInterval: number }).connectionsCheckingInterval = config.limits.checkIntervalMs;
  // Held here, not by Node's maxConnections: with --workers, a worker at that cap refuses the
  // connection back to the primary, which offers it to every worker in turn for as long as all are
  // full (connection-cap.ts). An address holds at most its share, and a newcomer at the cap takes
  // the place of the quietest connection without a request under way, or is closed as it comes
  // when every place serves a request (admin-connections.ts).
  const adminCap = Math.min(ADMIN_MAX_CONNECTIONS, config.limits.maxConnections);
  const adminConnections = new AdminConnections<Socket>(adminCap, ADMIN_MAX_CONNECTIONS_PER_ADDRESS, (socket) => socket.destroy());
  admin.on('connection', (socket: Socket) => {
    if (!adminConnections.admit(socket, peerLimitKey(socket.remoteAddress), Date.now())) {
      socket.destroy();
      return;
    }
    socket.once('close', () => adminConnections.closed(socket));
  });
  admin.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    adminConnections.requestStarted(socket);
    res.once('close', () => adminConnections.requestEnded(socket, Date.now()));
  });
  const adminPort = await new Promise<number>((resolve, reject) => {
    admin.once('error', reject);
    admin.listen(config.adminPort, config.adminHost, () => resolve((admin.address() as { port: number }).port));
  });
  ready = true;
  // From now on the primary may ask this worker for its part of the whole router.
  // Tried three times: until it is announced the primary answers every admin write "pending".
  for (let attempt = 1; clusterRouter !== undefined && attempt <= 3; attempt++) {
    try {
      await clusterRouter.announce();
      break;
    } catch (err) {
      logger.warn({ event: 'cluster_announce', attempt, error: String(err) }, 'could not announce this worker to the cluster primary');
    }
  }
  const slot = config.workerSlot === undefined ? {} : { workerSlot: `${config.workerSlot.slot}/${config.workerSlot.of}` };
  logger.info({ event: 'listening', https: ports.https, http: ports.http, admin: adminPort, ...slot }, 'edge router ready');

  let closing: Promise<void> | undefined;
  return {
    ports: { ...ports, admin: adminPort },
    updateDefaultCredentials: (credentials) => servers!.updateDefaultCredentials(credentials),
    watcher,
    registry,
    certificates,
    outstanding: (region) => gates.stats(region),
    close() {
      closing ??= (async () => {
        ready = false;
        // The drain's time is on the monotonic clock: a step of the wall clock during it (NTP) cut
        // answers still leaving at once, or held the process an hour past its drain timeout.
        const drainStartedAt = monotonicNow();
        servers!.beginDrain();
        // Requests already forwarded finish on their own (their clients were told Connection: close /
        // GOAWAY); WebSockets open get the same time to close on their own.
        const left = () => Math.max(0, config.drainTimeoutMs - (monotonicNow() - drainStartedAt));
        let timedOut = !(await drained(inFlight, upgrades, config.drainTimeoutMs));
        // Connections closing after an early answer (a 413 while the upload still comes) linger
        // until their client stops sending, within the drain's time: cut now, the client's unread
        // bytes would turn the close into a reset and lose it the answer after all.
        if (!timedOut) await servers!.lingeringSettled(left());
        // An answer ended is not an answer delivered: one still in its connection's buffer, behind a
        // client that reads slowly, gets the rest of the drain's time to leave before forceClose.
        // A request admitted meanwhile (on a connection whose handshake was under way when the
        // drain began) is waited for too, then its answer.
        while (!timedOut) {
          await servers!.answersLeft(left());
          if (inFlight.count === 0 && upgrades.count === 0) break;
          timedOut = !(await drained(inFlight, upgrades, left()));
        }
        if (timedOut) {
          logger.warn({ event: 'drain_timeout', inFlight: inFlight.count, upgrades: upgrades.count }, 'drain timeout: ending the remaining requests and WebSockets');
          watchdog.shutdownAll(onFault);
          upgrades.cutAll();
          // The 503s just written (HTTP/2 sends its frames on a later turn) get a moment to leave.
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        // Connections before the pools: after a clean drain, a request that slipped in after the last
        // count (a kept-alive HTTP/1.1 connection whose earlier answer began before the drain) must
        // not hold the pools' close.
        servers!.forceClose();
        await (timedOut ? pools.destroy() : pools.close());
        admin.closeAllConnections();
        if (admin.listening) admin.close();
        adminTokenFile?.close();
        watchdog.stop();
        ticketKeys?.stop();
        await certificates?.stop();
        await prober?.stop();
        orchestrators.stop();
        stopSeeding?.();
        await watcher.stop();
        if (config.registry === undefined) await registry.close();
        locator.close?.();
      })();
      return closing;
    },
    leaveAdminPort() {
      // node:cluster hands a listener's connections only to the workers that still listen.
      if (admin.listening) admin.close();
    },
  };
}

/**
 * Resolves true once requests and upgrades are both at zero at the same moment, or false when
 * `timeoutMs` passes first: each count reaching zero on its own says nothing while the other can
 * still start one (a kept-alive connection's next request, say).
 */
async function drained(inFlight: InFlight, upgrades: UpgradesInProgress, timeoutMs: number): Promise<boolean> {
  const deadline = monotonicNow() + timeoutMs;
  for (;;) {
    const left = deadline - monotonicNow();
    const [requests, tunnels] = await Promise.all([inFlight.idle(Math.max(0, left)), upgrades.idle(Math.max(0, left))]);
    if (!requests || !tunnels) return false;
    // HTTP/2 requests that came in the last read are handled a turn or more later
    // (http2-after-read.ts), after the GOAWAY that covers them: the drain waits for them too.
    await new Promise((resolve) => setImmediate(resolve));
    if (inFlight.count === 0 && upgrades.count === 0 && http2RequestsWaiting() === 0) return true;
    if (monotonicNow() >= deadline) return false;
  }
}

/**
 * Takes each new token the admin token file holds, the replaced one still for the overlap; a
 * replacement that is no token is logged and counted, and the token in use stays. The log never
 * has a token: only the file, the problem and when the replaced token stops being taken.
 */
function watchAdminTokenFile(current: string, rotation: NonNullable<RouterConfig['adminTokenRotation']>, tokens: AdminTokens, logger: Logger, refused: () => void): AdminTokenFile {
  const { file, overlapMs } = rotation;
  return new AdminTokenFile({
    file,
    current,
    onReplaced: (token) => {
      const result = tokens.replace(token, overlapMs);
      if (!result.replaced) return;
      const previousValidUntil = new Date(result.previousValidUntil).toISOString();
      logger.info({ event: 'admin_token_replaced', file, previousValidUntil }, 'the admin token file holds a new token: taken; the previous one is taken until previousValidUntil, then refused and its dashboard streams ended');
    },
    onRefused: (reason) => {
      refused();
      logger.error({ event: 'admin_token_refused', file, reason }, 'the admin token file was replaced by something that is no admin token: keeping the token in use');
    },
    onWatchError: (dir, err) => logger.warn({ event: 'admin_token_watch', dir, error: err.message }, 'the watch on the admin token file failed: a replacement is seen only by the periodic check (every 10 s)'),
  });
}

/** Keeps the HTTPS listener on the registry's shared session-ticket key; a registry outage keeps the key in use, for twice the rotation period at most. */
function shareTicketKeys(registry: HealthRegistry, servers: PublicServers, rotateEveryMs: number, logger: Logger): TicketKeySync {
  const warn = throttle(60_000, (err: Error) => logger.warn({ event: 'tls_ticket_keys', error: err.message }, 'a problem with the shared TLS ticket keys (error says which): the keys in use stay until the registry gives good ones'));
  let warnedSingleKey = false;
  const warnSingleKey = () => {
    if (warnedSingleKey) return;
    warnedSingleKey = true;
    logger.warn({ event: 'tls_ticket_keys', node: process.version }, 'this Node has no ticket-key callback: only the current TLS ticket key opens tickets (after a rotation, and while it spreads, some clients do a full handshake)');
  };
  return new TicketKeySync({
    registry,
    rotateEveryMs,
    // A rotation made by another router reaches this one within a minute (sooner for short periods).
    checkEveryMs: Math.max(1_000, Math.min(60_000, Math.floor(rotateEveryMs / 10))),
    apply: (keys) => {
      if (!servers.setTicketKeys(keys) && (keys.next !== undefined || keys.previous !== undefined)) warnSingleKey();
    },
    onChange: (fingerprint, ring) => logger.info({ event: 'tls_ticket_key', fingerprint, createdAt: new Date(ring.createdAt).toISOString() }, 'TLS session-ticket key in use'),
    onError: warn,
    onSealingLocally: (unreadForMs) =>
      logger.warn({ event: 'tls_ticket_keys_local', unreadForS: Math.round(unreadForMs / 1000) }, 'the registry has not given the shared TLS ticket keys for over twice the rotation period: this process seals tickets with a key of its own, made again every period, until it does (clients resume only on this process meanwhile)'),
  });
}

/** Where the ACME challenge answers, account and certificates live: the registry's Redis, or this process. */
function certificateVaultOf(registry: HealthRegistry, logger: Logger): CertificateVault {
  if (registry instanceof RedisRegistry) {
    return registry.certificateVault((where, reason) => logger.warn({ event: 'registry_rejected', where, reason }, 'ignored a malformed certificate record'));
  }
  return new MemoryCertificateVault();
}

function automateCertificates(
  acme: NonNullable<RouterConfig['acme']>,
  vault: CertificateVault,
  issuer: CertificateIssuer,
  watcher: RegistryWatcher,
  operatorDomains: ReadonlyMap<string, unknown>,
  logger: Logger,
): CertificateAutomation {
  const onEvent = (e: CertificateEvent) => {
    if (e.type === 'issued') logger.info({ event: 'acme_issued', name: e.name, reason: e.reason, notAfter: new Date(e.notAfter).toISOString(), ms: e.ms }, `certificate issued for ${e.name}`);
    else if (e.type === 'failed') {
      const f = e.failure;
      logger.warn({ event: 'acme_failed', name: f.name, attempts: f.attempts, retryAt: new Date(f.retryAt).toISOString(), reason: f.reason }, `could not get a certificate for ${f.name}; trying again later`);
    } else if (e.type === 'rate-limited') {
      const { failure: f, pause } = e;
      logger.warn(
        {
          event: 'acme_rate_limited',
          name: f.name,
          retryAt: new Date(f.retryAt).toISOString(),
          ordersPausedUntil: new Date(pause.until).toISOString(),
          refusals: pause.refusals,
          reason: f.reason,
        },
        `the CA refused the order for ${f.name} for a rate limit; every router orders nothing until ${new Date(pause.until).toISOString()}`,
      );
    } else if (e.type === 'forgotten') logger.info({ event: 'acme_forgotten', name: e.name }, `deleted the expired certificate of ${e.name}, no longer a custom domain`);
    else if (e.type === 'abandoned') {
      logger.info({ event: 'acme_abandoned', name: e.name }, `gave up the order for ${e.name} at shutdown (its lease released for another router); the CA client's timers may hold the exit up to 5 s`);
    }
    else logger.warn({ event: 'acme_vault', error: e.message }, 'could not read or write the certificate vault; will retry');
  };
  return new CertificateAutomation({
    vault,
    issuer,
    issued: acme.issued,
    customDomains: () => [...operatorDomains.keys(), ...watcher.snapshot.domains.keys()],
    coveredByFiles: acme.coveredByFiles,
    // Unique per process: workers and routers each hold their own leases.
    holder: `${hostname()}:${process.pid}:${randomUUID()}`,
    checkEveryMs: acme.checkEveryMs,
    onEvent,
  });
}


