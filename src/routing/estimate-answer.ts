/**
 * Cold-start-aware ranking (`--routing latency`): orders the regions readiness allows by when
 * each would most likely answer, not merely by distance. On this platform a container serves one
 * request at a time and a cold start costs 100-500 ms, while 1,000 km costs about 10 ms: an idle
 * warm container one ocean away can answer before a cold one next door.
 *
 *   expected(region) = rtt(client, region) + (no idle warm container left ? coldStart(fn, region) : 0)
 *
 * rtt is great-circle distance at a configurable cost (default 1 ms per 100 km, the simulation's
 * figure); idle warm containers come from the region's last report, minus what this router has
 * itself sent there since and plus what it has freed since (so a burst does not all count on one
 * idle container, and a container busy at the moment of the report counts as idle once it is done); the cold start
 * is the region's recent p50 for the function, else a default. Only the regions readiness put
 * first (below their soft limit) are reordered: placement, residency, health and load still win
 * over any estimate, and distance breaks ties. When no region has an idle warm container, the
 * order stays readiness's (the nearest cold-starts it): comparing one cold start with another
 * would only follow the noise in their medians. For the same reason, where some region is warm,
 * every cold region is counted with one cold start, that of the first cold region in readiness's
 * order (the one that would start a container were nothing warm), and never as sooner than a cold
 * region readiness put before it: cold regions keep readiness's order among themselves, the
 * operator's weights in it (by raw distance, a region weighted down but nearer took the cold pick
 * once any region was warm, and the pre-warm went to the one readiness put first), and a cold
 * pick is readiness's first cold region, as its `cold-nearest` label says. Pure and synchronous.
 */
import type { FunctionLoad, RegionId } from '../core/types.js';

export interface AnswerEstimateInput {
  /** Readiness's order (placement, health and load already applied). */
  readonly candidates: readonly RegionId[];
  /** How many leading candidates may be reordered (those below their soft limit). */
  readonly reorderable: number;
  readonly distanceKm: (region: RegionId) => number;
  /** The function's containers in the region, as last reported; undefined = none reported (cold). */
  readonly load: (region: RegionId) => FunctionLoad | undefined;
  /**
   * Containers of the function there this router took since the region's last report: its sends
   * since then still running, less the ones the report counted busy that it has freed since (can be
   * negative). Idle left = reported idle − this.
   */
  readonly takenSinceReport: (region: RegionId) => number;
  readonly msPer100Km: number;
  /** Cold start assumed where the region reports none for the function. */
  readonly defaultColdStartMs: number;
}

export interface AnswerEstimate {
  readonly region: RegionId;
  readonly rttMs: number;
  /** Idle warm containers left for the next request (reported idle minus this router's sends). */
  readonly idleWarm: number;
  readonly coldStartMs: number;
  /** Expected time to the answer's first byte, from the client's point of view (ms). */
  readonly expectedMs: number;
}

export interface AnswerOrder {
  /** Every candidate, the reorderable ones sorted by expected answer time. */
  readonly candidates: RegionId[];
  /** The pick has an idle warm container. */
  readonly warm: boolean;
  /** One per reorderable candidate, in the new order (for `explain`). */
  readonly estimates: AnswerEstimate[];
}

/**
 * One region's estimate. `coldStartMs`: the cold start counted for the region if it has no idle
 * warm container (orderByExpectedAnswer passes the one shared by every cold region); by default
 * the region's own.
 */
export function estimateAnswer(input: AnswerEstimateInput, region: RegionId, sharedColdStartMs?: number): AnswerEstimate {
  const load = input.load(region);
  const idleWarm = Math.max(0, (load?.idle ?? 0) - input.takenSinceReport(region));
  const coldStartMs = sharedColdStartMs ?? coldStartIn(input, region);
  const rttMs = (input.distanceKm(region) / 100) * input.msPer100Km;
  return { region, rttMs, idleWarm, coldStartMs, expectedMs: expectedMs(rttMs, idleWarm, coldStartMs) };
}

function coldStartIn(input: AnswerEstimateInput, region: RegionId): number {
  return input.load(region)?.coldStartMs ?? input.defaultColdStartMs;
}

/**
 * The cold start counted for every cold region among the first `n`: the first cold one's, in
 * readiness's order; undefined when none is cold. `idle[at + i]` is candidate i's idle warm count
 * (an array, not a callback: on the request path a closure per decision was an allocation).
 */
function sharedColdStart(input: AnswerEstimateInput, n: number, idle: ArrayLike<number>, at = 0): number | undefined {
  for (let i = 0; i < n; i++) if (idle[at + i]! <= 0) return coldStartIn(input, input.candidates[i]!);
  return undefined;
}

/** The estimate itself: the round trip, plus a cold start unless an idle warm container is left. */
function expectedMs(rttMs: number, idleWarm: number, coldStartMs: number): number {
  return rttMs + (idleWarm > 0 ? 0 : coldStartMs);
}

/**
 * The request path's form of orderByExpectedAnswer: same estimates and order, but it reorders
 * `input.candidates` in place (a stable insertion sort over at most a handful of regions) and
 * allocates nothing. `scratch` holds at least twice as many numbers as there are regions. Returns
 * whether the pick has an idle warm container.
 */
export function reorderByExpectedAnswer(input: AnswerEstimateInput, scratch: Float64Array): boolean {
  const candidates = input.candidates as RegionId[];
  const n = Math.min(input.reorderable, candidates.length);
  // First pass: idle warm containers left per region (kept in the scratch's upper half, so the
  // sort reads each region's load once). Is any region warm? If not, readiness's order stands.
  const idleAt = scratch.length >> 1;
  let anyWarm = false;
  for (let i = 0; i < n; i++) {
    const region = candidates[i]!;
    const idle = (input.load(region)?.idle ?? 0) - input.takenSinceReport(region);
    scratch[idleAt + i] = idle;
    if (idle > 0) anyWarm = true;
  }
  if (!anyWarm) return false;
  // Every cold region counts the same cold start (see the top): 0 when none is cold (unused then).
  const coldStartMs = sharedColdStart(input, n, scratch, idleAt) ?? 0;
  let firstWarm = false;
  let coldFloor = 0;
  for (let i = 0; i < n; i++) {
    const region = candidates[i]!;
    const idleWarm = scratch[idleAt + i]!;
    let cost = expectedMs((input.distanceKm(region) / 100) * input.msPer100Km, idleWarm, coldStartMs);
    // A cold region is never expected sooner than a cold one readiness put before it (coldFloor).
    if (idleWarm <= 0) cost = coldFloor = Math.max(cost, coldFloor);
    // Insert at its place among the ones before (stable: equal costs keep readiness's order). The
    // idle counts of the ones not yet placed (i + 1 …) stay where the first pass put them.
    let j = i;
    while (j > 0 && scratch[j - 1]! > cost) {
      scratch[j] = scratch[j - 1]!;
      candidates[j] = candidates[j - 1]!;
      j--;
    }
    scratch[j] = cost;
    candidates[j] = region;
    if (j === 0) firstWarm = idleWarm > 0;
  }
  return firstWarm;
}

/** The order with each reorderable region's estimate listed (for `explain`); the request path uses reorderByExpectedAnswer. */
export function orderByExpectedAnswer(input: AnswerEstimateInput): AnswerOrder {
  const candidates = [...input.candidates];
  const n = Math.min(input.reorderable, candidates.length);
  const idle = candidates.slice(0, n).map((region) => (input.load(region)?.idle ?? 0) - input.takenSinceReport(region));
  // As the reorder counts them: one cold start for every cold region once any region is warm.
  const anyWarm = idle.some((count) => count > 0);
  const shared = anyWarm ? sharedColdStart(input, n, idle) : undefined;
  const scratch = new Float64Array(2 * candidates.length);
  const warm = reorderByExpectedAnswer({ ...input, candidates }, scratch);
  // Each expected answer as the order counted it (the reorder leaves its costs in the scratch, in
  // the new order): a cold region's is at least that of the cold ones readiness put before it.
  const estimates = candidates.slice(0, n).map((region, i) => {
    const estimate = estimateAnswer(input, region, shared);
    return anyWarm ? { ...estimate, expectedMs: scratch[i]! } : estimate;
  });
  return { candidates, warm, estimates };
}
