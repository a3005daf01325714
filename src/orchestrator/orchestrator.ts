/**
 * One region's serverless stack, simulated: an HTTP server that gives each function request a
 * container from the pool (cold or warm), runs the function under its tier's timeout, delays the
 * answer by the simulated network round trip to the client's metro, and reports the region's
 * health and load through the Reporter every second. SIGTERM: report draining, finish, exit.
 * WebSocket upgrades go to function-sockets.ts (the demo echo accepts them).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { PREWARM_PATH } from '../core/protocol.js';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { GeoLocator } from '../core/geo-locator.js';
import { DEFAULT_TIER_TIMEOUT_MS, type FunctionRecord, type RegionConfig, type RegistrySnapshot, type TimeoutTier } from '../core/types.js';
import type { HealthRegistry } from '../registry/health-registry.js';
import { Reporter } from '../registry/reporter.js';
import { MAX_REPORTED_FUNCTIONS } from '../registry/health-registry.js';
import { greatCircleKm } from '../routing/distance.js';
import { resolveHost } from '../routing/hostname.js';
import { CapacityError, ColdStartAbandoned, ContainerPool, type Container } from './container-pool.js';
import { settledOrAborted } from '../core/settled-or-aborted.js';
import { monotonicNow } from '../core/monotonic-clock.js';
import { closeIdleByAnswersOnClose } from '../core/idle-http-close.js';
import { DEMO_FUNCTIONS, DEMO_ORG, genericFunction } from './demo-functions.js';
import { LatencyWindow } from './latency-window.js';
import { FunctionSockets } from './function-sockets.js';
import type { Duplex } from 'node:stream';

export interface OrchestratorOptions {
  readonly region: RegionConfig;
  readonly host: string;
  readonly port: number;
  readonly zone: string;
  readonly registry: HealthRegistry;
  /** The function directory as this region knows it (a watcher's snapshot). */
  readonly directory: () => RegistrySnapshot;
  readonly locator: GeoLocator;
  /** Simulated round trip per 100 km of great-circle distance to the client (default 1 ms). */
  readonly msPer100Km?: number;
  readonly coldStartMs?: readonly [number, number];
  readonly warmOverheadMs?: readonly [number, number];
  readonly keepAliveMs?: number;
  readonly tierTimeoutMs?: Readonly<Record<TimeoutTier, number>>;
  readonly queueLimit?: number;
  readonly reportIntervalMs?: number;
  /**
   * Shared with the routers: `POST /_edge/prewarm` (naming the function in x-edge-fn / x-edge-org)
   * needs `Authorization: Bearer <token>`. Without one the endpoint does not exist.
   */
  readonly prewarmToken?: string;
  /** How often the functions it hosts are re-asserted in the directory (default 10 s; also after a registry outage). */
  readonly reassertMs?: number;
  readonly onLog?: (event: string, fields: Record<string, unknown>) => void;
}

/**
 * How long a stopping region waits for the requests in flight: the longest tier limit, plus 5 s
 * for the answer to leave. The compose file and the Kubernetes simulation give orchestrators a
 * grace period above it (test/deploy checks).
 */
export function shutdownGraceMs(tiers: Readonly<Record<TimeoutTier, number>> = DEFAULT_TIER_TIMEOUT_MS): number {
  return Math.max(...Object.values(tiers)) + 5_000;
}

/** The demo functions, deployed in every region; `slow` gets the extended tier to show tiers off. */
function hostedFunctions(): FunctionRecord[] {
  return Object.keys(DEMO_FUNCTIONS).map((fn) => ({ org: DEMO_ORG, fn, regions: null, tier: fn === 'slow' ? 'extended' : 'standard', enabled: true }));
}

/**
 * Whether a pre-warm's Authorization header carries the routers' token. Compared as SHA-256
 * digests, always the same length: comparing the texts needs equal lengths first, and returning
 * early when they differ tells a caller timing its answers how long the token is.
 */
export function tokenMatches(header: string | undefined, token: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(header ?? ''), digest(`Bearer ${token}`));
}

/**
 * How long a cancelled function may run on before its container is killed: the platform's SIGTERM
 * grace, short here because every demo function heeds its signal or its closed connection within
 * milliseconds (a function that does not is the one this bounds).
 */
const KILL_GRACE_MS = 2_000;
/** The longest stop() waits for a re-assertion under way. */
const REASSERT_STOP_WAIT_MS = 3_000;

/**
 * The URL a function sees, or undefined when the request-target is none. Origin-form (RFC 9112
 * §3.2.1) is a path: resolved against a base, `//host:port/p` would read as an authority, so
 * the path would lose its start, or fail to parse and turn a client's mistake into a 500.
 */
function requestUrl(target: string): URL | undefined {
  try {
    return new URL(target.startsWith('/') ? `http://function.local${target}` : target, 'http://function.local');
  } catch {
    return undefined;
  }
}

const uniform = ([min, max]: readonly [number, number]) => min + Math.random() * (max - min);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Orchestrator {
  readonly pool: ContainerPool;
  private readonly latency = new LatencyWindow();
  private readonly reporter: Reporter;
  private server: Server | undefined;
  private draining = false;
  private inFlight = 0;
  private sweepTimer: NodeJS.Timeout | undefined;
  private reassertTimer: NodeJS.Timeout | undefined;
  /** The re-assertion under way, if any (reassert); stop() waits for it up to REASSERT_STOP_WAIT_MS. */
  private reasserting: Promise<number> | undefined;
  private readonly tiers: Readonly<Record<TimeoutTier, number>>;
  /** Opened by start(): until then nothing can ask for an upgrade. */
  private sockets: FunctionSockets | undefined;
  port = 0;

  constructor(private readonly options: OrchestratorOptions) {
    const { region } = options;
    this.tiers = options.tierTimeoutMs ?? DEFAULT_TIER_TIMEOUT_MS;
    this.pool = new ContainerPool({
      maxContainers: region.capacity.hard,
      queueLimit: options.queueLimit ?? region.capacity.hard,
      coldStartMs: () => uniform(options.coldStartMs ?? [100, 500]),
      keepAliveMs: options.keepAliveMs ?? 60_000,
    });
    this.reporter = new Reporter({
      registry: options.registry,
      region: region.id,
      intervalMs: options.reportIntervalMs ?? 1_000,
      collect: () => {
        const stats = this.pool.stats();
        const { p50, p99, errorRate } = this.latency.summary();
        const serviceMs = this.latency.serviceP50();
        const loads = this.pool.functionLoads(MAX_REPORTED_FUNCTIONS);
        return {
          functions: loads.functions,
          functionsTotal: loads.total,
          inFlight: stats.inFlight + stats.queued,
          capacity: region.capacity,
          warmContainers: stats.warmContainers,
          latencyMs: { p50, p99 },
          serviceMs,
          errorRate,
          warmFunctions: stats.warmFunctions,
        };
      },
      onError: (err, attempt) => options.onLog?.('report_failed', { error: err.message, attempt }),
      onReconnect: () => this.reassert(),
    });
  }

  /**
   * Puts back any function this region hosts that the directory has lost (a registry that
   * restarted empty while no router remembered it), without touching entries that exist: an
   * operator's change to a record stands. Logged when it put any back, except at start, where
   * writing them is the normal case (a registry that never held them).
   */
  async assertHosted(atStart = false): Promise<number> {
    let written = 0;
    for (const record of hostedFunctions()) {
      if (await this.options.registry.assertFunction(record).catch(() => false)) written++;
    }
    if (written > 0 && !atStart) this.options.onLog?.('functions_reasserted', { count: written });
    return written;
  }

  /**
   * Starts a re-assertion unless one is under way or the region is stopping: stop() waits for the
   * one under way. Left running, its writes went on after stop() had resolved, into a registry the
   * command was closing.
   */
  private reassert(): void {
    if (this.draining || this.reasserting !== undefined) return;
    this.reasserting = this.assertHosted().finally(() => (this.reasserting = undefined));
  }

  async start(): Promise<number> {
    const sockets = await FunctionSockets.open({
      pool: this.pool,
      tiers: this.tiers,
      functionOf: (req) => this.functionOf(req),
      draining: () => this.draining,
      delayMs: (req) => this.networkDelayMs(req),
    });
    this.sockets = sockets;
    // Only the records the directory lacks: a restart must not undo an operator's change to one
    // (a function disabled or held to some regions), which a plain write here would.
    await this.assertHosted(true);
    this.reassertTimer = setInterval(() => this.reassert(), this.options.reassertMs ?? 10_000);
    this.reassertTimer.unref();
    const server = createServer((req, res) => void this.handle(req, res));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => void sockets.upgrade(req, socket, head));
    server.keepAliveTimeout = 5_000;
    server.listen(this.options.port, this.options.host);
    await once(server, 'listening');
    this.server = server;
    this.port = (server.address() as { port: number }).port;
    this.sweepTimer = setInterval(() => this.pool.sweep(), 1_000);
    this.sweepTimer.unref();
    this.reporter.start();
    return this.port;
  }

  /**
   * SIGTERM: report draining, refuse new work, let in-flight requests finish, then stop. By default
   * it waits as long as a request may run (shutdownGraceMs): a shorter wait cut an extended-tier
   * request the platform promised 60 s.
   */
  async stop(timeoutMs = shutdownGraceMs(this.tiers)): Promise<void> {
    if (this.server === undefined) return;
    this.draining = true;
    await this.reporter.drain();
    // server.close() closes the idle connections by Node's rule, which cuts an answer still
    // leaving behind a client that reads slowly: by the rule that lets it leave instead.
    closeIdleByAnswersOnClose(this.server);
    this.server.close();
    // Upgraded connections have left the HTTP server: its close does not reach them.
    this.sockets?.closeAll();
    const deadline = monotonicNow() + timeoutMs;
    while (this.inFlight > 0 && monotonicNow() < deadline) await sleep(20);
    this.pool.rejectAll('the region is shutting down');
    this.server.closeAllConnections();
    clearInterval(this.sweepTimer);
    clearInterval(this.reassertTimer);
    await this.reporter.stop();
    // At most a few seconds: against a registry that does not answer, each write takes its command
    // timeout, and the stop must not outlast a container runtime's grace for it.
    if (this.reasserting !== undefined) await Promise.race([this.reasserting, new Promise((resolve) => setTimeout(resolve, REASSERT_STOP_WAIT_MS).unref())]);
    this.server = undefined;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    // The region's own health, for probes and load balancers: only a request for no function here
    // (a Host that merely reads as <fn>-<org> names none). A function's own /healthz (the router
    // forwards it with x-edge-fn) is the function's to answer:
    // taken here it said "ok" for a broken function, and "draining" (a region failure, to the
    // router) for a healthy one while the region drained.
    if (req.url === '/healthz' && typeof req.headers['x-edge-fn'] !== 'string' && this.functionOf(req) === undefined) {
      res.writeHead(this.draining ? 503 : 200, { 'content-type': 'text/plain' });
      res.end(this.draining ? 'draining\n' : 'ok\n');
      return;
    }
    if (this.draining) {
      res.shouldKeepAlive = false;
      return this.answer(res, 503, 'region_draining', 'this region is shutting down', { 'retry-after': '1' });
    }
    if (req.url === PREWARM_PATH && req.method === 'POST' && this.options.prewarmToken !== undefined) return this.prewarm(req, res);
    const target = this.functionOf(req);
    if (target === undefined) return this.answer(res, 404, 'function_not_found', 'no such function in this region');
    const { fn, org, tier } = target;
    const url = requestUrl(req.url ?? '/');
    if (url === undefined) return this.answer(res, 400, 'bad_request', 'the request-target is not a URL');
    const handler = org === DEMO_ORG && Object.hasOwn(DEMO_FUNCTIONS, fn) ? DEMO_FUNCTIONS[fn]! : genericFunction;

    this.inFlight++;
    let failed = true;
    /** Refused before it had a container: an error, but no request time (see LatencyWindow). */
    let refused = false;
    /** When it was given a container, or a slot one starts in for it: its service time starts there. */
    let servedFrom: number | null = null;
    const deadline = AbortSignal.timeout(this.tiers[tier]);
    const gone = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) gone.abort(new Error('client went away'));
    });
    try {
      await sleep(this.networkDelayMs(req));
      const askedAt = performance.now();
      // The tier deadline takes a waiting request out of the queue too, when it passes: the pool's
      // sweep (once a second) did so up to a second late, and a container freed in between was
      // taken (evicting a warm one for a cold start) for a request already over, answered 504.
      const lease = await this.pool.acquire(`${org}/${fn}`, monotonicNow() + this.tiers[tier], AbortSignal.any([gone.signal, deadline])).catch((err: unknown) => {
        // Still starting its container at the limit: a timeout, as one that ran out in the
        // function is, and its service time (the start's) counts, as a started one's does.
        if (err instanceof ColdStartAbandoned) {
          servedFrom = askedAt + err.queuedMs;
          throw err;
        }
        // Still queued at the limit: a refusal (another region may have room).
        if (deadline.aborted && !gone.signal.aborted) throw new CapacityError('no container became free before the deadline', 1);
        throw err;
      });
      servedFrom = askedAt + lease.queuedMs;
      const signal = AbortSignal.any([deadline, gone.signal]);
      let work: Promise<void> | undefined;
      try {
        if (!lease.cold) await sleep(uniform(this.options.warmOverheadMs ?? [1, 5]));
        // A client gone (or a deadline passed) during the cold start or the warm overhead: the
        // function never runs, and its container goes back at once, warm.
        signal.throwIfAborted();
        res.setHeader('x-edge-container', `${lease.container.id}; ${lease.cold ? 'cold' : 'warm'}`);
        res.setHeader('x-edge-served-by', this.options.region.id);
        work = handler(req, res, { fn, org, region: this.options.region.id, container: lease.container.id, url, signal });
        // The platform stops a function at its tier limit whether or not it heeds its signal (echo
        // waiting for a body that never ends does not): the answer waits for the function or the
        // signal, whichever comes first (the container, for the function: see giveBack).
        await settledOrAborted(work, signal);
        failed = res.statusCode >= 500;
      } finally {
        this.giveBack(lease.container, work, signal);
      }
    } catch (err) {
      if (err instanceof CapacityError) {
        refused = true;
        this.answer(res, 503, 'region_at_capacity', err.message, { 'retry-after': String(err.retryAfterS) });
      }
      else if (deadline.aborted) {
        if (res.headersSent) res.destroy();
        else {
          // The function may still be reading the body or writing: this connection is done.
          res.shouldKeepAlive = false;
          this.answer(res, 504, 'function_timeout', `the function did not finish within its ${tier} tier limit`);
        }
      } else if (!res.headersSent && !gone.signal.aborted) this.answer(res, 500, 'function_error', 'the function failed');
      else res.destroy();
    } finally {
      // Counted until the answer has left the process, not until the function returned: stop()
      // closes every connection once none is in flight, and an answer still queued behind a
      // client that reads slowly was cut short of its length.
      // Or until its connection closes: an answer queued behind another (HTTP/1 pipelining) has no
      // socket of its own, and Node emits no 'close' on it when its client goes.
      if (res.writableFinished || res.destroyed || req.socket.destroyed) this.inFlight--;
      else {
        const socket = req.socket;
        const left = () => {
          res.off('close', left);
          socket.off('close', left);
          this.inFlight--;
        };
        res.once('close', left);
        socket.once('close', left);
      }
      // A client that left before its deadline says nothing of the region: its time is cut short
      // and its outcome is no failure (counted as one, a departed client raised the errorRate).
      const endedAt = performance.now();
      if (!gone.signal.aborted || deadline.aborted) this.latency.record(refused ? null : endedAt - started, failed, servedFrom === null ? null : endedAt - servedFrom);
    }
  }

  /**
   * Gives a request's container back once its function has ended. Cancelled (its tier limit, or
   * its client gone), the function may still run (echo reading a body it no longer needs stops
   * only when its connection closes): given back at once, the container went to the next request
   * while the first still ran in it, two requests in one container. It is given back when the
   * function ends, and killed when it has not ended within KILL_GRACE_MS (as the platform kills a
   * container whose function outruns its signal): its slot is then free, and it is warm for no one.
   */
  private giveBack(container: Container, work: Promise<void> | undefined, signal: AbortSignal): void {
    if (work === undefined || !signal.aborted) return this.pool.release(container);
    const kill = setTimeout(() => this.pool.kill(container), KILL_GRACE_MS);
    kill.unref();
    void work.catch(() => undefined).then(() => {
      clearTimeout(kill);
      this.pool.release(container);
    });
  }

  /** A router asks for one container of a function, ahead of its next request (answered at once). */
  private prewarm(req: IncomingMessage, res: ServerResponse): void {
    req.resume();
    if (!tokenMatches(req.headers.authorization, this.options.prewarmToken!)) return this.answer(res, 401, 'unauthorized', 'a pre-warm needs the routers\' token');
    const target = this.functionOf(req);
    if (target === undefined) return this.answer(res, 404, 'function_not_found', 'no such function in this region');
    const started = this.pool.prewarm(`${target.org}/${target.fn}`);
    res.writeHead(202, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ started }));
  }

  /** The function a request is for: the router names it in x-edge-fn/x-edge-org; direct calls use the Host. */
  private functionOf(req: IncomingMessage): { fn: string; org: string; tier: TimeoutTier } | undefined {
    let fn = req.headers['x-edge-fn'];
    let org = req.headers['x-edge-org'];
    if (typeof fn !== 'string' || typeof org !== 'string') {
      const resolved = resolveHost(req.headers.host ?? '', this.options.zone);
      if (!resolved.ok) return undefined;
      ({ fn, org } = resolved);
    }
    const record = this.options.directory().functions.get(org)?.get(fn);
    if (record !== undefined) {
      if (!record.enabled || (record.regions !== null && !record.regions.has(this.options.region.id))) return undefined;
      return { fn, org, tier: record.tier };
    }
    // Own keys only: `in` also finds constructor, toString, __proto__ … on any object, and
    // calling those as handlers left the request unanswered (or failed it with a 500).
    if (org === DEMO_ORG && Object.hasOwn(DEMO_FUNCTIONS, fn)) return { fn, org, tier: fn === 'slow' ? 'extended' : 'standard' };
    return undefined;
  }

  /** The simulated round trip between the client's metro and this region. */
  private networkDelayMs(req: IncomingMessage): number {
    const perHundredKm = this.options.msPer100Km ?? 1;
    if (perHundredKm === 0) return 0;
    // The client the router worked out (it walks a trusted chain from the right): X-Forwarded-For's
    // leftmost entry is whatever a client behind a trusted proxy wrote there.
    const realIp = req.headers['x-real-ip'];
    const clientIp = (typeof realIp === 'string' ? realIp.trim() : undefined) ?? req.socket.remoteAddress ?? '';
    const client = this.options.locator.locate(clientIp);
    if (client.lat === null || client.lon === null) return 0;
    const { lat, lon } = this.options.region;
    return (greatCircleKm(client.lat, client.lon, lat, lon) / 100) * perHundredKm;
  }

  private answer(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
    if (res.headersSent) return void res.destroy();
    const body = JSON.stringify({ error: { code, message } });
    res.writeHead(status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }
}
