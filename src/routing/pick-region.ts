/**
 * Readiness: walks a proximity ranking and decides which regions may take the request, in order.
 * Pure and synchronous; it reads a registry snapshot and never waits on anything.
 *
 * Rules, in this order:
 *  1. placement — skip regions outside the org's residency set or where the function is not deployed;
 *  2. health — skip regions that are down, draining (operator or shutdown) or ejected;
 *  3. load — regions below their soft limit come first; degraded regions and regions at the soft
 *     limit follow (spill); a region at its hard limit is used only when every candidate is;
 *  4. panic — if health leaves nothing, every placement-eligible region in distance order.
 * The reason names why the top-ranked region was not chosen, so it reads as "what happened".
 */
import type { RegionHealth, RegionId, RegionStatus } from '../core/types.js';
import type { RankedRegion } from './rank-regions.js';

/** Why the ranking started where it did (no coordinates → ranked from a fallback region). */
export type Anchor = 'nearest' | 'fallback:country' | 'fallback:no-geo';

export type SkipCause = 'residency' | 'not-deployed' | 'down' | 'draining' | 'ejected';
export type DemoteCause = 'soft-limit' | 'hard-limit' | 'degraded';

/** One line of `explain`'s ranking. */
export interface RegionTrace {
  readonly region: RegionId;
  readonly distanceKm: number;
  readonly status: RegionStatus;
  readonly skipped?: SkipCause;
  readonly demoted?: DemoteCause;
}

export interface PickInput {
  readonly ranking: readonly RankedRegion[];
  /**
   * Region health by a ranked region's `index` (its place in the configured list; undefined = a
   * region nobody reports, read as down). An array read, not a lookup by id in a map: the request
   * path asks this for every ranked region of every request.
   */
  readonly healthAt: readonly (RegionHealth | undefined)[];
  /** Where the function is deployed; null = everywhere. */
  readonly deployedIn: ReadonlySet<RegionId> | null;
  /** The org's residency set; undefined = anywhere. */
  readonly allowedIn: ReadonlySet<RegionId> | undefined;
  readonly nowMs: number;
  readonly anchor: Anchor;
  /** When given, receives one entry per ranked region (for `explain`; the hot path passes none). */
  readonly trace?: RegionTrace[];
  /**
   * Requests this router has outstanding at a region (dispatched and queued), by the region's
   * `index`. The registry's count lags by a heartbeat and misses a wedged region; the larger of
   * the two is the load.
   */
  readonly localLoadAt?: ((index: number) => number) | undefined;
}

export interface PickResult {
  /** Regions to try, best first; empty when no region may serve the function at all. */
  readonly candidates: RegionId[];
  readonly reason: string;
  /** How many leading candidates are below their soft limit (the ones a finer ranking may reorder). */
  readonly belowSoft: number;
}

const UNKNOWN: Pick<RegionHealth, 'status' | 'drained' | 'ejectedUntil' | 'inFlight' | 'capacity'> = {
  status: 'down',
  drained: false,
  ejectedUntil: 0,
  inFlight: 0,
  capacity: { soft: 0, hard: 0 },
};

/**
 * Why health rules a region out right now (down, draining by operator or shutdown, ejected), or
 * undefined when it may take requests. Routing and the data plane's gates ask the same question.
 */
export function healthSkip(h: Pick<RegionHealth, 'status' | 'drained' | 'ejectedUntil'>, nowMs: number): 'down' | 'draining' | 'ejected' | undefined {
  if (h.status === 'down') return 'down';
  if (h.drained || h.status === 'draining') return 'draining';
  if (h.ejectedUntil > nowMs) return 'ejected';
  return undefined;
}

export function pickRegions(input: PickInput): PickResult {
  const { ranking, healthAt, deployedIn, allowedIn, nowMs, trace, localLoadAt } = input;
  const belowSoft: RegionId[] = [];
  let spill: RegionId[] | undefined;
  let atHard: RegionId[] | undefined;
  let placementOk: RegionId[] | undefined; // only needed for panic; built lazily
  let topCause: string | undefined; // cause attached to ranking[0] when it is not the pick

  for (let i = 0; i < ranking.length; i++) {
    const ranked = ranking[i]!;
    const id = ranked.region.id;
    const h = healthAt[ranked.index] ?? UNKNOWN;
    let skipped: SkipCause | undefined;
    let demoted: DemoteCause | undefined;

    if (allowedIn !== undefined && !allowedIn.has(id)) skipped = 'residency';
    else if (deployedIn !== null && !deployedIn.has(id)) skipped = 'not-deployed';
    else {
      (placementOk ??= []).push(id);
      skipped = healthSkip(h, nowMs);
      if (skipped === undefined) {
        const load = localLoadAt === undefined ? h.inFlight : Math.max(h.inFlight, localLoadAt(ranked.index));
        if (load >= h.capacity.hard) demoted = 'hard-limit';
        else if (h.status === 'degraded') demoted = 'degraded';
        else if (load >= h.capacity.soft) demoted = 'soft-limit';
      }
    }

    if (skipped === undefined) {
      if (demoted === undefined) belowSoft.push(id);
      else if (demoted === 'hard-limit') (atHard ??= []).push(id);
      else (spill ??= []).push(id);
    }
    if (i === 0) topCause = causeReason(id, skipped, demoted);
    if (trace !== undefined) trace.push(traceEntry(ranked, h.status, skipped, demoted));
  }

  let candidates: RegionId[];
  if (belowSoft.length > 0 || spill !== undefined) {
    candidates = spill === undefined ? belowSoft : belowSoft.concat(spill);
  } else if (atHard !== undefined) {
    candidates = atHard; // every healthy region is full: the nearest full one is still the best bet
  } else if (placementOk !== undefined) {
    return { candidates: placementOk, reason: 'panic', belowSoft: 0 };
  } else {
    return { candidates: [], reason: topCause ?? 'no-region', belowSoft: 0 };
  }

  if (candidates[0] === ranking[0]!.region.id || topCause === undefined) {
    return { candidates, reason: input.anchor, belowSoft: belowSoft.length };
  }
  return { candidates, reason: topCause, belowSoft: belowSoft.length };
}

function causeReason(id: RegionId, skipped: SkipCause | undefined, demoted: DemoteCause | undefined): string | undefined {
  if (skipped === 'residency' || skipped === 'not-deployed') return skipped;
  if (skipped !== undefined) return `failover:${id}-${skipped}`;
  if (demoted === 'degraded') return `failover:${id}-degraded`;
  if (demoted !== undefined) return `spill:${id}-${demoted}`;
  return undefined;
}

function traceEntry(
  r: RankedRegion,
  status: RegionStatus,
  skipped: SkipCause | undefined,
  demoted: DemoteCause | undefined,
): RegionTrace {
  const entry: { region: RegionId; distanceKm: number; status: RegionStatus; skipped?: SkipCause; demoted?: DemoteCause } = {
    region: r.region.id,
    distanceKm: Math.round(r.distanceKm),
    status,
  };
  if (skipped !== undefined) entry.skipped = skipped;
  if (demoted !== undefined) entry.demoted = demoted;
  return entry;
}
