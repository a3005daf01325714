/**
 * Sends a regional orchestrator's heartbeat to the HealthRegistry on a steady cadence; it never
 * throws out of its timers, never overlaps writes, and never decides health itself (the registry's
 * TTL and the watchers do that).
 */
import type { RegionId } from '../core/types.js';
import { MAX_FUNCTION_NAME_LENGTH, MAX_REPORTED_FUNCTIONS, MAX_WARM_FUNCTIONS, MAX_WARM_FUNCTIONS_JSON_BYTES, type HealthRegistry, type Heartbeat } from './health-registry.js';
import { isReportedMs } from './records.js';

/** What the orchestrator measures; the reporter adds region, time, source and (unless draining) status. */
export type ReporterMetrics = Omit<Heartbeat, 'region' | 'reportedAt' | 'source' | 'status'> & {
  readonly status?: 'up' | 'degraded';
};

export interface ReporterOptions {
  readonly registry: HealthRegistry;
  readonly region: RegionId;
  /** Normal cadence between heartbeats. */
  readonly intervalMs?: number;
  /** How long each heartbeat counts in the registry; a few intervals, so one lost beat is not an outage. */
  readonly ttlMs?: number;
  readonly collect: () => ReporterMetrics;
  /** Told about every failed attempt (`attempt` counts failures in a row, from 1). */
  readonly onError?: (err: Error, attempt: number) => void;
  /** A heartbeat went through after failed ones: the registry is back, and may have come back empty. */
  readonly onReconnect?: () => void;
  readonly now?: () => number;
}

export const DEFAULT_REPORT_INTERVAL_MS = 1_000;
export const DEFAULT_HEARTBEAT_TTL_MS = 3_000;
/** First retry delay after a failed write; doubles per failure, capped at the interval. */
export const RETRY_BASE_MS = 100;

export class Reporter {
  readonly #registry: HealthRegistry;
  readonly #region: RegionId;
  readonly #intervalMs: number;
  readonly #ttlMs: number;
  readonly #collect: () => ReporterMetrics;
  readonly #onError: (err: Error, attempt: number) => void;
  readonly #onReconnect: () => void;
  readonly #now: () => number;

  #ticker: NodeJS.Timeout | null = null;
  #retryTimer: NodeJS.Timeout | null = null;
  /** The write in progress; there is never more than one. Never rejects. */
  #writing: Promise<void> | null = null;
  #failuresInRow = 0;
  #draining = false;
  /** Between start() and stop(): only then do the ticker and retries run. */
  #running = false;
  /** Set by stop(), so a drain() waiting behind a write does not write afterwards. */
  #stopped = false;

  constructor(options: ReporterOptions) {
    this.#registry = options.registry;
    this.#region = options.region;
    this.#intervalMs = positive(options.intervalMs ?? DEFAULT_REPORT_INTERVAL_MS, 'intervalMs');
    this.#ttlMs = positive(options.ttlMs ?? DEFAULT_HEARTBEAT_TTL_MS, 'ttlMs');
    this.#collect = options.collect;
    this.#onError = options.onError ?? (() => {});
    this.#onReconnect = options.onReconnect ?? (() => {});
    this.#now = options.now ?? Date.now;
  }

  /** Sends one heartbeat now, then one every intervalMs. Calling it again while running does nothing. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#stopped = false;
    // unref: a heartbeat alone must not keep a shutting-down process alive.
    this.#ticker = setInterval(() => this.#tick(), this.#intervalMs).unref();
    this.#tick();
  }

  /**
   * Reports 'draining' from now on and writes that immediately (after any write in progress), so
   * routers stop sending new traffic before the process exits. Resolves once that write was tried;
   * a failure goes to onError and, while started, is retried like any other. After stop() it does nothing.
   */
  async drain(): Promise<void> {
    this.#draining = true;
    while (this.#writing) await this.#writing;
    if (this.#stopped) return;
    this.#clearRetry();
    await this.#write();
  }

  /** Stops the timers and waits for a write in progress; nothing is written after it resolves. */
  async stop(): Promise<void> {
    this.#running = false;
    this.#stopped = true;
    if (this.#ticker) clearInterval(this.#ticker);
    this.#ticker = null;
    this.#clearRetry();
    while (this.#writing) await this.#writing;
  }

  #tick(): void {
    // Skip rather than queue: a late heartbeat is worth nothing once the next one is due, and
    // while a retry is pending the backoff owns the schedule.
    if (this.#writing || this.#retryTimer) return;
    void this.#write();
  }

  #write(): Promise<void> {
    const run = this.#attempt().finally(() => {
      if (this.#writing === run) this.#writing = null;
    });
    this.#writing = run;
    return run;
  }

  async #attempt(): Promise<void> {
    try {
      // Inside the try: a collect() that throws is handled exactly like a failed write.
      await this.#registry.writeHeartbeat(this.#heartbeat(), this.#ttlMs);
      const reconnected = this.#failuresInRow > 0;
      this.#failuresInRow = 0;
      if (reconnected) this.#onReconnect();
    } catch (err) {
      this.#failuresInRow += 1;
      this.#report(err, this.#failuresInRow);
      this.#scheduleRetry();
    }
  }

  #heartbeat(): Heartbeat {
    const metrics = this.#collect();
    // Copy field by field: the registry validates strictly, so a stray field from collect()
    // would get the whole heartbeat rejected.
    return {
      region: this.#region,
      status: this.#draining ? 'draining' : (metrics.status ?? 'up'),
      reportedAt: this.#now(),
      source: 'reporter',
      inFlight: metrics.inFlight,
      ...(metrics.capacity ? { capacity: { soft: metrics.capacity.soft, hard: metrics.capacity.hard } } : {}),
      warmContainers: metrics.warmContainers,
      latencyMs: { p50: metrics.latencyMs.p50, p99: metrics.latencyMs.p99 },
      // Optional, and left out when it is no time the routers would take (they would refuse it).
      ...(isReportedMs(metrics.serviceMs) ? { serviceMs: metrics.serviceMs } : {}),
      errorRate: metrics.errorRate,
      warmFunctions: boundedWarmFunctions(metrics.warmFunctions),
      ...(metrics.functions === undefined
        ? {}
        : {
            functions: metrics.functions.slice(0, MAX_REPORTED_FUNCTIONS).map((f) => ({ fn: f.fn, idle: f.idle, busy: f.busy, coldStartMs: f.coldStartMs })),
            functionsTotal: metrics.functionsTotal ?? metrics.functions.length,
          }),
    };
  }

  #scheduleRetry(): void {
    // Without start() (a lone drain) there is no cadence to return to, so no retry either.
    if (!this.#running) return;
    const delayMs = retryDelayMs(this.#failuresInRow, this.#intervalMs);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      if (!this.#writing) void this.#write();
    }, delayMs).unref();
  }

  #clearRetry(): void {
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
  }

  #report(err: unknown, attempt: number): void {
    try {
      this.#onError(err instanceof Error ? err : new Error(String(err)), attempt);
    } catch {
      // A throwing error callback must not turn a failed heartbeat into a crashed process.
    }
  }
}

/**
 * The warm functions a heartbeat can carry and every router still accept (MAX_WARM_FUNCTIONS*), in
 * the order given; a name no router would accept is left out rather than the whole heartbeat refused.
 */
function boundedWarmFunctions(names: readonly string[]): string[] {
  const kept: string[] = [];
  let bytes = 2; // []
  for (const name of names) {
    if (kept.length === MAX_WARM_FUNCTIONS) break;
    if (name.length > MAX_FUNCTION_NAME_LENGTH) continue;
    bytes += JSON.stringify(name).length + 1;
    if (bytes > MAX_WARM_FUNCTIONS_JSON_BYTES) break;
    kept.push(name);
  }
  return kept;
}

/** 100, 200, 400 … ms, never longer than the normal interval (a retry is never later than a beat). */
export function retryDelayMs(attempt: number, intervalMs: number): number {
  return Math.min(RETRY_BASE_MS * 2 ** Math.max(0, attempt - 1), intervalMs);
}

function positive(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`Reporter: ${name} must be a positive number, got ${value}`);
  return value;
}
