/**
 * Passive outlier detection, after Envoy's: a region that fails `consecutiveFailures` requests in
 * a row (connection refused/reset, 502/503/504) is ejected for base × (times ejected), capped;
 * the count decays once it has behaved for a while. Never ejects more than `maxEjectedFraction`
 * of the regions, so a global problem does not eject everything. A failure that one tenant's
 * function may have caused on its own (its deadline passed while the region held the request: the
 * function may simply not answer) counts once per tenant in a streak: a hostile function's
 * requests, sent together, all reach their deadline in one watchdog sweep, and ejected a region
 * for every tenant (and, through the registry, from every router). Pure state machine: the caller
 * applies the verdict (registry write, event log).
 */
import { MAX_EJECTION_MS, type RegionId } from '../core/types.js';
import { BAD_ANSWER_PREFIX } from './upstream-error.js';

export interface OutlierOptions {
  readonly consecutiveFailures?: number;
  readonly baseEjectionMs?: number;
  readonly maxEjectionMs?: number;
  /** Of all regions, at most this fraction ejected at once (default 0.6: 3 of 5). */
  readonly maxEjectedFraction?: number;
  readonly regionCount: number;
  /**
   * The regions, and whether each is ejected by another process (another router, another worker,
   * this one before a restart: the registry's word). Counted toward the bound with this detector's
   * own: counted alone, each process ejected up to the bound, and together they ejected every
   * region, which put every router in panic.
   */
  readonly shared?: { readonly regions: readonly RegionId[]; readonly ejectedElsewhere: (region: RegionId) => boolean };
  readonly now?: () => number;
}

export interface Ejection {
  readonly region: RegionId;
  readonly until: number;
  readonly count: number;
  readonly cause: string;
  /** The cause of the failure that crossed the threshold, as given to `failure` (an error code, `status 502`). */
  readonly last?: string;
}

/**
 * Causes a tenant's function can bring about alone: the tier deadline (the router's, or undici's
 * backstop timers) passing while the region held the request, which says only that no answer came;
 * and an answer undici could not read once it had begun (upstream-error.ts classifyAttemptError).
 */
const TIMEOUT_CAUSES = new Set(['deadline', 'EDGE_DEADLINE', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** The tenant to attribute a failure of `cause` to, when its own function may have caused it; else undefined (the region's). */
export function tenantOfFailure(cause: string, tenant: string): string | undefined {
  return TIMEOUT_CAUSES.has(cause) || cause.startsWith(BAD_ANSWER_PREFIX) ? tenant : undefined;
}

interface RegionRecord {
  failures: number;
  /** Tenants whose timeouts the current streak counts already (created on the first). */
  timedOut?: Set<string>;
  ejections: number;
  ejectedUntil: number;
  lastEjectedAt: number;
}

export class OutlierDetector {
  private readonly records = new Map<RegionId, RegionRecord>();
  private readonly threshold: number;
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly maxEjected: number;
  private readonly shared: OutlierOptions['shared'];
  private readonly now: () => number;

  constructor(options: OutlierOptions) {
    this.threshold = options.consecutiveFailures ?? 5;
    this.baseMs = options.baseEjectionMs ?? 30_000;
    this.maxMs = options.maxEjectionMs ?? MAX_EJECTION_MS;
    this.maxEjected = Math.max(1, Math.floor(options.regionCount * (options.maxEjectedFraction ?? 0.6)));
    this.shared = options.shared;
    this.now = options.now ?? Date.now;
  }

  private record(region: RegionId): RegionRecord {
    let r = this.records.get(region);
    if (r === undefined) {
      r = { failures: 0, ejections: 0, ejectedUntil: 0, lastEjectedAt: 0 };
      this.records.set(region, r);
    }
    return r;
  }

  success(region: RegionId): void {
    const r = this.records.get(region);
    if (r === undefined || r.failures === 0) return;
    r.failures = 0;
    r.timedOut = undefined;
  }

  /**
   * Lets a region back at once: an active health signal (heartbeat or probe) says it recovered,
   * which outranks passive guesses (Envoy's successful_active_health_check_uneject_host).
   */
  reinstate(region: RegionId): boolean {
    const r = this.records.get(region);
    if (r === undefined || r.ejectedUntil <= this.now()) return false;
    r.ejectedUntil = 0;
    r.failures = 0;
    r.timedOut = undefined;
    return true;
  }

  /**
   * Records a failure; returns the ejection when this failure crossed the threshold. `tenant`: the
   * organisation whose function may have caused it alone (tenantOfFailure), counted once a streak.
   */
  failure(region: RegionId, cause: string, tenant?: string): Ejection | undefined {
    const r = this.record(region);
    const now = this.now();
    if (r.ejectedUntil > now) return undefined; // already out
    if (tenant !== undefined) {
      if (r.timedOut?.has(tenant) === true) return undefined;
      // Past the threshold (an ejection the cap on ejected regions holds back) any failure ejects
      // once there is room: no more names are needed. Kept, one per organisation timing out there,
      // they grew for as long as the cap held, until one request at the region succeeded.
      if (r.failures < this.threshold) (r.timedOut ??= new Set()).add(tenant);
    }
    r.failures++;
    if (r.failures < this.threshold) return undefined;
    if (this.ejectedCount(now) >= this.maxEjected) return undefined;
    r.failures = 0;
    r.timedOut = undefined;
    // Past ejections are forgiven once the region has been back for as long as the cap. Judged
    // here, where the count is used: it was judged on a success that followed a failure, so a
    // region ejected once, clean for hours, whose next trouble began with a streak was ejected
    // for twice the base; and from the ejection's start, so a region failing again as its capped
    // ejection ended started over from the base.
    if (r.ejections > 0 && now - Math.max(r.ejectedUntil, r.lastEjectedAt) > this.maxMs) r.ejections = 0;
    r.ejections++;
    r.lastEjectedAt = now;
    r.ejectedUntil = now + Math.min(this.maxMs, this.baseMs * r.ejections);
    return { region, until: r.ejectedUntil, count: r.ejections, cause: `${this.threshold} consecutive failures (last: ${cause})`, last: cause };
  }

  private ejectedCount(now: number): number {
    let n = 0;
    if (this.shared !== undefined) {
      for (const region of this.shared.regions) if ((this.records.get(region)?.ejectedUntil ?? 0) > now || this.shared.ejectedElsewhere(region)) n++;
      return n;
    }
    for (const r of this.records.values()) if (r.ejectedUntil > now) n++;
    return n;
  }
}
