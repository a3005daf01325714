/**
 * Active health checks for regions that have no reporter: GETs each region's health path and turns
 * streaks of results into probe heartbeats. It only observes and emits; it never writes to a
 * registry itself and never routes.
 */
import { setMaxListeners } from 'node:events';
import { Agent, request, type buildConnector, type Dispatcher } from 'undici';
import type { RegionConfig, RegionId } from '../core/types.js';
import type { Heartbeat } from './health-registry.js';
import { DEFAULT_PROBE_INTERVAL_MS, DEFAULT_PROBE_PATH, DEFAULT_PROBE_TIMEOUT_MS } from './probe-defaults.js';

export interface ProberOptions {
  readonly regions: readonly RegionConfig[];
  readonly path?: string;
  /** Pause between the end of one probe of a region and the start of the next, before jitter. */
  readonly intervalMs?: number;
  /** Budget for one whole probe: connect, headers and body. */
  readonly timeoutMs?: number;
  readonly healthyThreshold?: number;
  readonly unhealthyThreshold?: number;
  /** Fraction of the interval to randomise by, so many routers do not probe in lockstep. */
  readonly jitter?: number;
  /**
   * Called for each heartbeat; its errors and rejections are swallowed. Awaited before the region's
   * next probe (so one region's heartbeats arrive in order, and stop() waits for it): keep it bounded.
   */
  readonly onHeartbeat: (heartbeat: Heartbeat) => void | Promise<void>;
  /** Uniform in [0, 1); injectable for tests. */
  readonly random?: () => number;
  /**
   * Where probes go out. Default: the prober's own agent (one connection per region, kept alive
   * between probes), made at start and destroyed at stop — not undici's process-wide dispatcher,
   * which is whichever undici copy in the process set it first (Node's bundled one, once anything
   * has called the global `fetch`), with that copy's defaults.
   */
  readonly dispatcher?: Dispatcher;
  /** With the prober's own agent: how it connects (the router's orchestrator connector: TLS settings, reloaded). Default undici's. */
  readonly connect?: buildConnector.connector;
}

export type ProbeHealth = 'unknown' | 'up' | 'down';

export interface ProbeState {
  readonly state: ProbeHealth;
  /** Successes in a row (0 after any failure). */
  readonly successes: number;
  /** Failures in a row (0 after any success). */
  readonly failures: number;
  /** Round trip of the last successful probe; kept through failures. */
  readonly lastRttMs: number | null;
  /** Short, stable cause of the last failure, e.g. `refused`, `http-503`; null after a success. */
  readonly lastError: string | null;
}

/** A health body is tiny; anything longer is not read (the connection is dropped instead). */
const MAX_BODY_BYTES = 64 * 1024;

interface Target {
  readonly id: RegionId;
  readonly url: string;
}

type Outcome = { readonly ok: true; readonly rttMs: number } | { readonly ok: false; readonly error: string };

/** How long a probe heartbeat counts: a few intervals, so one slow probe does not expire it. */
export function probeHeartbeatTtlMs(intervalMs: number, timeoutMs = 0): number {
  // Heartbeats come one probe apart: up to the jittered interval plus a probe's whole budget.
  return Math.max(3_000, intervalMs * 3, 2 * (intervalMs + timeoutMs));
}

/** One start → stop of the prober: what its probes are cancelled by and go out through. */
interface Run {
  readonly signal: AbortSignal;
  readonly dispatcher: Dispatcher;
}

export class Prober {
  readonly #targets: readonly Target[];
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  readonly #healthyThreshold: number;
  readonly #unhealthyThreshold: number;
  readonly #jitter: number;
  readonly #onHeartbeat: ProberOptions['onHeartbeat'];
  readonly #random: () => number;
  readonly #givenDispatcher: Dispatcher | undefined;
  readonly #connect: buildConnector.connector | undefined;

  readonly #states = new Map<RegionId, ProbeState>();
  readonly #timers = new Map<RegionId, NodeJS.Timeout>();
  /** One probe loop step per region at most; stop() waits for these. Never reject. */
  readonly #inFlight = new Map<RegionId, Promise<void>>();
  /** The run in progress (start → stop), or null. */
  #current: { readonly stop: AbortController; readonly ownAgent: Agent | undefined } | null = null;

  constructor(options: ProberOptions) {
    const path = options.path ?? DEFAULT_PROBE_PATH;
    this.#targets = options.regions.map((region) => {
      const base = region.orchestrators[0];
      if (base === undefined) throw new RangeError(`Prober: region ${region.id} has no orchestrator URL to probe`);
      return { id: region.id, url: `${base.replace(/\/+$/, '')}${path}` };
    });
    this.#intervalMs = positive(options.intervalMs ?? DEFAULT_PROBE_INTERVAL_MS, 'intervalMs');
    this.#timeoutMs = positive(options.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS, 'timeoutMs');
    this.#healthyThreshold = Math.ceil(positive(options.healthyThreshold ?? 2, 'healthyThreshold'));
    this.#unhealthyThreshold = Math.ceil(positive(options.unhealthyThreshold ?? 3, 'unhealthyThreshold'));
    this.#jitter = Math.min(1, Math.max(0, options.jitter ?? 0.1));
    this.#onHeartbeat = options.onHeartbeat;
    this.#random = options.random ?? Math.random;
    this.#givenDispatcher = options.dispatcher;
    this.#connect = options.connect;
    for (const target of this.#targets) {
      this.#states.set(target.id, { state: 'unknown', successes: 0, failures: 0, lastRttMs: null, lastError: null });
    }
  }

  /**
   * Probes every region now (a fresh router wants answers at once), then each on its own jittered
   * interval. Does nothing if already running.
   */
  start(): void {
    if (this.#current) return;
    // Probes of one region run one at a time: one connection each is all they use. Each run has
    // its own agent, so a start() while the last stop() is still settling never probes through
    // the agent that stop() is about to destroy.
    const ownAgent = this.#givenDispatcher === undefined ? new Agent({ connections: 1, ...(this.#connect === undefined ? {} : { connect: this.#connect }) }) : undefined;
    const stop = new AbortController();
    // Each region's probe in flight listens on it (probeSignal), one per region at most: past
    // Node's default of 10 regions that is no leak, and must not be warned about as one.
    setMaxListeners(Math.max(10, this.#targets.length), stop.signal);
    this.#current = { stop, ownAgent };
    const run: Run = { signal: stop.signal, dispatcher: this.#givenDispatcher ?? (ownAgent as Agent) };
    for (const target of this.#targets) this.#run(target, run);
  }

  /** Cancels pending probes, aborts those in flight and waits for them to settle. */
  async stop(): Promise<void> {
    const current = this.#current;
    if (!current) return;
    this.#current = null;
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    current.stop.abort();
    await Promise.all(this.#inFlight.values());
    await current.ownAgent?.destroy();
  }

  /** A copy of every region's probe state. */
  states(): ReadonlyMap<RegionId, ProbeState> {
    return new Map(this.#states);
  }

  #run(target: Target, run: Run): void {
    const step: Promise<void> = this.#probeAndRecord(target, run).finally(() => {
      // A later run's step for the region may have taken this one's place (start after stop).
      if (this.#inFlight.get(target.id) === step) this.#inFlight.delete(target.id);
      if (run.signal.aborted) return;
      const delayMs = jitteredDelayMs(this.#intervalMs, this.#jitter, this.#random);
      // unref: probing alone must not keep a process alive.
      this.#timers.set(target.id, setTimeout(() => this.#run(target, run), delayMs).unref());
    });
    this.#inFlight.set(target.id, step);
  }

  async #probeAndRecord(target: Target, run: Run): Promise<void> {
    const outcome = await this.#probe(target.url, run);
    // A probe cut short by stop() says nothing about the region.
    if (run.signal.aborted) return;
    const heartbeat = this.#record(target.id, outcome);
    if (heartbeat) await this.#emit(heartbeat);
  }

  async #probe(url: string, { signal: stopSignal, dispatcher }: Run): Promise<Outcome> {
    const startedAt = performance.now();
    const probe = probeSignal(stopSignal, this.#timeoutMs);
    try {
      // undici's own timeouts name the phase that stalled; the signal bounds the whole probe,
      // including connect (whose default timeout is far longer than a probe's budget).
      const response = await request(url, {
        method: 'GET',
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
        signal: probe.signal,
        dispatcher,
      });
      // Read the body to the end so the connection can be reused, and so a body that fails
      // midway counts as a failure.
      let bytes = 0;
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        if (bytes > MAX_BODY_BYTES) break;
      }
      const rttMs = performance.now() - startedAt;
      const status = response.statusCode;
      return status >= 200 && status < 300 ? { ok: true, rttMs } : { ok: false, error: `http-${status}` };
    } catch (err) {
      return { ok: false, error: probeErrorName(err) };
    } finally {
      probe.done();
    }
  }

  /** Applies one outcome to the region's streaks; returns the heartbeat to emit, if any. */
  #record(region: RegionId, outcome: Outcome): Heartbeat | null {
    const before = this.#states.get(region);
    if (!before) return null;
    const now = Date.now();
    if (outcome.ok) {
      const successes = before.successes + 1;
      // The first success of a never-seen region counts at once: a fresh router should route to a
      // healthy region immediately rather than wait healthyThreshold intervals. Recovery from down
      // still needs the full streak, which is where flapping hurts.
      const state: ProbeHealth =
        before.state === 'unknown' || (before.state === 'down' && successes >= this.#healthyThreshold) ? 'up' : before.state;
      this.#states.set(region, { state, successes, failures: 0, lastRttMs: outcome.rttMs, lastError: null });
      // Still down below the streak, and says so: left silent, its down heartbeat expired (about
      // three intervals) before a streak of more than that was in, and routers took the region's
      // own "up" report meanwhile, sending traffic where the prober had not cleared it.
      return state === 'up' ? probeHeartbeat(region, 'up', now, outcome.rttMs) : probeHeartbeat(region, 'down', now, null);
    }
    const failures = before.failures + 1;
    const state: ProbeHealth = failures >= this.#unhealthyThreshold ? 'down' : before.state;
    this.#states.set(region, { state, successes: 0, failures, lastRttMs: before.lastRttMs, lastError: outcome.error });
    // Re-sent on every failed probe while down, so the down heartbeat never expires into 'unknown'.
    if (state === 'down') return probeHeartbeat(region, 'down', now, null);
    // Below the threshold an up region stays up, and says so: left silent, its last heartbeat
    // would expire before the threshold's failures were in, and one failed probe would take it down.
    return state === 'up' ? probeHeartbeat(region, 'up', now, before.lastRttMs) : null;
  }

  async #emit(heartbeat: Heartbeat): Promise<void> {
    try {
      await this.#onHeartbeat(heartbeat);
    } catch {
      // The consumer's failure (say, a registry write) must not stop probing or crash the process.
    }
  }
}

/**
 * One probe's signal: aborted by `stop` (the run's, which lasts as long as the process) or after
 * `timeoutMs` (a TimeoutError, as AbortSignal.timeout's). Not `AbortSignal.any([stop, timeout])`:
 * on Node 20 every signal made that way leaves an entry in `stop`'s set of dependants that is
 * never taken out, even once the probe's signal is collected, so a prober grew by 100–250 bytes a
 * probe for as long as it ran (2.5 probes a second with five regions: 20–50 MB a day; measured in
 * test/registry/prober.test.ts). A listener on `stop`, taken off when the probe is over (`done`),
 * leaves nothing behind.
 */
export function probeSignal(stop: AbortSignal, timeoutMs: number): { readonly signal: AbortSignal; done(): void } {
  const probe = new AbortController();
  const onStop = () => probe.abort(stop.reason);
  const timer = setTimeout(() => probe.abort(new DOMException(`the probe took longer than ${timeoutMs} ms`, 'TimeoutError')), timeoutMs);
  // Probing alone must not keep a process alive (the loop's own timers are unref'd too).
  timer.unref();
  if (stop.aborted) onStop();
  else stop.addEventListener('abort', onStop, { once: true });
  return {
    signal: probe.signal,
    done() {
      clearTimeout(timer);
      stop.removeEventListener('abort', onStop);
    },
  };
}

/** interval × (1 ± jitter), from a uniform `random` in [0, 1). */
export function jitteredDelayMs(intervalMs: number, jitter: number, random: () => number): number {
  const unit = Math.min(1, Math.max(0, random()));
  return intervalMs * (1 + jitter * (2 * unit - 1));
}

/** undici / Node error codes → short stable names. Matched on `code`, never on message text. */
const ERROR_NAMES: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'refused',
  ECONNRESET: 'reset',
  EPIPE: 'reset',
  UND_ERR_SOCKET: 'socket-closed',
  UND_ERR_CONNECT_TIMEOUT: 'connect-timeout',
  ETIMEDOUT: 'connect-timeout',
  UND_ERR_HEADERS_TIMEOUT: 'headers-timeout',
  UND_ERR_BODY_TIMEOUT: 'body-timeout',
  UND_ERR_ABORTED: 'aborted',
  ENOTFOUND: 'dns',
  EAI_AGAIN: 'dns',
  EHOSTUNREACH: 'unreachable',
  ENETUNREACH: 'unreachable',
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: 'bad-response',
  HPE_INVALID_CONSTANT: 'bad-response',
};

/** The short lastError for a thrown probe error. */
export function probeErrorName(err: unknown): string {
  // DOMExceptions from AbortSignal carry a numeric legacy `code`; their name is the stable part.
  const name = typeof err === 'object' && err !== null ? (err as { name?: unknown }).name : undefined;
  if (name === 'TimeoutError') return 'timeout';
  if (name === 'AbortError') return 'aborted';
  const code = errorCode(err);
  if (code === null) return 'error';
  return ERROR_NAMES[code] ?? (code.startsWith('HPE_') ? 'bad-response' : code);
}

/** The string `code` of an error, looking through `cause` and AggregateError (happy eyeballs). */
function errorCode(err: unknown, depth = 0): string | null {
  if (typeof err !== 'object' || err === null || depth > 3) return null;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  if (err instanceof AggregateError) {
    for (const inner of err.errors) {
      const found = errorCode(inner, depth + 1);
      if (found) return found;
    }
  }
  return errorCode((err as { cause?: unknown }).cause, depth + 1);
}

function probeHeartbeat(region: RegionId, status: 'up' | 'down', reportedAt: number, rttMs: number | null): Heartbeat {
  return {
    region,
    status,
    source: 'probe',
    reportedAt,
    inFlight: 0,
    warmContainers: 0,
    latencyMs: { p50: rttMs ?? 0, p99: rttMs ?? 0 },
    // A probe sees no traffic; a region that fails every probe is reported as failing everything.
    errorRate: status === 'down' ? 1 : 0,
    warmFunctions: [],
  };
}

function positive(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`Prober: ${name} must be a positive number, got ${value}`);
  return value;
}
