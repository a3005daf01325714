/**
 * The routing brain as one call: host + client address + registry snapshot → function,
 * client location and an ordered list of regions to try, with a stable reason.
 * Options are compiled once; `decide` is the per-request closure. No I/O: GeoIP comes in
 * through the GeoLocator role and health through the snapshot.
 */
import type { GeoLocator } from '../core/geo-locator.js';
import type {
  ClientLocation,
  FunctionRecord,
  FunctionRef,
  RegionConfig,
  RegionHealth,
  RegionId,
  RegistrySnapshot,
  TimeoutTier,
  WorkerSlot,
} from '../core/types.js';
import type { HostErrorCode } from '../core/errors.js';
import { LRUCache } from 'lru-cache';
import { CUSTOM_DOMAIN_CANDIDATES, type HostResolution } from './hostname.js';
import { createHostMemo } from './host-memo.js';
import { rankRegions, type RankedRegion } from './rank-regions.js';
import { pickRegions, type Anchor, type RegionTrace } from './pick-region.js';
import { orderByExpectedAnswer, reorderByExpectedAnswer, type AnswerEstimate } from './estimate-answer.js';
import { checkDeadline, regionServiceMs, type MutableCandidate } from './deadline-admission.js';
import { ended, isCurrent, newRegionCounts, rebase, sent as countedSend, taken, type RegionCounts } from './container-ledger.js';

export type UnknownFunctionPolicy = 'reject' | 'forward';

export interface RouteDeciderOptions {
  readonly regions: readonly RegionConfig[];
  readonly zone: string;
  readonly locator: GeoLocator;
  /** ISO country → region, for clients whose country is known but whose coordinates are not. */
  readonly countryRegions: ReadonlyMap<string, RegionId>;
  /** Where clients with no usable location are ranked from. */
  readonly defaultRegion: RegionId;
  /** Operator custom domains (consulted before the registry's). */
  readonly customDomains: ReadonlyMap<string, FunctionRef>;
  /** `reject`: a function missing from the directory is not found; `forward`: deployed everywhere. */
  readonly unknownFunctions: UnknownFunctionPolicy;
  /** This router's own outstanding requests per region, by the region's position in `regions` (see PickInput.localLoadAt). */
  readonly localLoadAt?: (index: number) => number;
  /**
   * `nearest` (default): distance, health and load. `latency`: among the regions below their soft
   * limit, the one expected to answer first, counting cold starts (estimate-answer.ts).
   */
  readonly routing?: RoutingMode;
  /** Round-trip cost of distance for `latency` routing (default 1 ms per 100 km). */
  readonly msPer100Km?: number;
  /** Cold start assumed where a region reports none for the function (default 300 ms). */
  readonly defaultColdStartMs?: number;
  /**
   * With `latency` routing, when a request goes elsewhere because its nearest region is cold,
   * name that region in the decision (`prewarm`) so the data plane can ask it for a container;
   * at most once per function and region per this many ms (0 or absent: never).
   */
  readonly prewarmIntervalMs?: number;
  /**
   * The functions' time limits per tier: when every region is full and the best expected answer
   * is past the limit, the request is refused at once (deadline-admission.ts). Absent: never.
   */
  readonly tierTimeoutMs?: Readonly<Record<TimeoutTier, number>>;
  /**
   * Hedging (functions with `hedge` on): how long past the pick's round trip the data plane waits
   * for an answer before racing the request from a region with an idle warm container (default 50 ms).
   */
  readonly hedgeDelayMs?: number;
  /**
   * With `--workers N`: this worker's slot. Each worker counts only its own sends, so each counts on
   * a disjoint share of a region's idle containers (slot k of N: ⌊(idle + N − 1 − k) / N⌋); the
   * shares add up to the region's count, and no idle container is promised to two workers.
   */
  readonly idleShare?: WorkerSlot;
}

export type RoutingMode = 'nearest' | 'latency';

/** The client's distance to `region` in a ranking (0 when the region is not in it). */
function distanceIn(ranking: readonly RankedRegion[], region: RegionId): number {
  for (let i = 0; i < ranking.length; i++) if (ranking[i]!.region.id === region) return ranking[i]!.distanceKm;
  return 0;
}

/** Slot `slot`'s share of `idle` containers: ⌊(idle + of − 1 − slot) / of⌋; the shares of all slots add up to `idle`. */
export function idleShare(idle: number, { slot, of }: WorkerSlot): number {
  return idle <= 0 ? idle : Math.floor((idle + of - 1 - slot) / of);
}

export type RouteErrorCode = HostErrorCode | 'function_not_found' | 'function_disabled' | 'no_eligible_region' | 'deadline_unreachable' | 'registry_unreachable';

export type RouteDecision =
  | {
      readonly ok: true;
      readonly host: string;
      readonly fn: string;
      readonly org: string;
      readonly fnRecord: FunctionRecord;
      readonly client: ClientLocation;
      /** Regions to try in order; the first is the pick. Never empty. */
      readonly candidates: RegionId[];
      readonly reason: string;
      /** A cold region worth asking for a container (latency routing sent this request elsewhere). */
      readonly prewarm?: RegionId;
      /** The function hedges and the pick is cold: race it from this warm region after `afterMs` without an answer. */
      readonly hedge?: { readonly region: RegionId; readonly afterMs: number };
      /** Latency routing counted this request against its pick: hand the decision to `finished` when it is over. */
      readonly sent?: { readonly region: RegionId; readonly sentAt: number; readonly entry: number };
    }
  | {
      readonly ok: false;
      readonly code: RouteErrorCode;
      readonly message: string;
      /** The normalised name the host resolved to, when it named a function (whose answer the router's own HSTS follows). */
      readonly host?: string;
      readonly fn?: string;
      readonly org?: string;
      readonly client?: ClientLocation;
      /** deadline_unreachable: when the queues are expected to have room again (seconds). */
      readonly retryAfterS?: number;
    };

export interface RouteDecider {
  decide(host: string, ip: string, snapshot: RegistrySnapshot, nowMs: number, trace?: RegionTrace[], estimates?: AnswerEstimate[]): RouteDecision;
  /** The host part alone: the same rules `decide` applies, for early rejection. */
  resolveHost(host: string, snapshot: RegistrySnapshot): HostResolution;
  /**
   * A request `decide` counted (`sent`) is over: its container is free again. `snapshot` is the
   * registry's current one: a report that arrived while the request ran decides how it counts.
   */
  finished(decision: Extract<RouteDecision, { ok: true }>, snapshot: RegistrySnapshot, nowMs: number): void;
  /**
   * A request `decide` counted went on to `region` (a failover, a spill): it no
   * longer holds a container where it was counted, and holds one in `region`. Returns the decision
   * to hand to `finished` (or `moved`) from now on; the same one when nothing was counted.
   */
  moved(decision: Extract<RouteDecision, { ok: true }>, region: RegionId, snapshot: RegistrySnapshot, nowMs: number): Extract<RouteDecision, { ok: true }>;
  /**
   * A second copy of a request `decide` counted went to `region` (a hedge) while the first runs on:
   * it holds a container there too. Returns the decision to hand to `finished` for that copy.
   */
  alsoSent(decision: Extract<RouteDecision, { ok: true }>, region: RegionId, snapshot: RegistrySnapshot, nowMs: number): Extract<RouteDecision, { ok: true }>;
}

interface CachedRanking {
  readonly generation: number;
  readonly ranking: readonly RankedRegion[];
}

/** The directory has not been read yet (RegistrySnapshot.directoryUnread): try again, not "no such function". */
const DIRECTORY_UNREAD = {
  ok: false,
  code: 'registry_unreachable',
  message: 'the function directory has not been read from the registry yet; try again shortly',
} as const satisfies RouteDecision;

export function createRouteDecider(options: RouteDeciderOptions): RouteDecider {
  const { regions, zone, locator, countryRegions, defaultRegion, customDomains, unknownFunctions, localLoadAt } = options;
  const latency = options.routing === 'latency';
  const msPer100Km = options.msPer100Km ?? 1;
  const defaultColdStartMs = options.defaultColdStartMs ?? 300;
  const regionIndex = new Map(regions.map((r, i) => [r.id, i]));
  const warmReason = new Map(regions.map((r) => [r.id, `warm:${r.id}`]));
  const deadlineReason = new Map(regions.map((r) => [r.id, `deadline:${r.id}`]));
  // What this router did to each (function, region)'s containers since that region's last report
  // (container-ledger.ts), and when it last asked each region for a pre-warm. Keyed by org, then
  // function name (no string per request), not by the record object: a registry may decode new,
  // equal records on every full read (Redis, a cluster worker's IPC), and a ledger keyed by the
  // object started from zero each time, promising the same idle container twice. Bounded by the
  // directory: an entry goes when its function leaves it (pruneLedger).
  // `entry`: which entry this is, counted. A function deleted and deployed again gets a new entry; a
  // request counted in the old one must not end or move a count in the new one. Told by a count,
  // not by the time the entry was made: after the wall clock stepped back every new send looked
  // older than its entry, so none ended, and the idle containers were used up one request at a time.
  type Sends = { key: string; entry: number; counts: RegionCounts; prewarmAt: Float64Array; warmthIn: unknown; warmth: Warmth | undefined };
  let entriesMade = 0;
  const ledger = new Map<string, Map<string, Sends>>();
  let ledgerDirectory: RegistrySnapshot['functions'] | undefined;
  // A stand-in's (unlisted function's) state stays keyed by its record: the LRU below keeps that
  // object while it is in use, and its entry goes with it (no directory entry would prune it).
  const standInSends = new WeakMap<FunctionRecord, Sends>();
  const prewarmIntervalMs = options.prewarmIntervalMs ?? 0;
  const regionById = new Map(regions.map((r) => [r.id, r]));
  if (!regionById.has(defaultRegion)) throw new Error(`default region ${defaultRegion} is not a configured region`);

  // Rankings depend on the client's location and on region weights (which operators may change).
  // Cache per location object (the locator caches those) and invalidate when weights change.
  let generation = 0;
  let seenRegions: RegistrySnapshot['regions'] | undefined;
  // The snapshot's region health by position in `regions` (= a ranked region's index), read by
  // readiness instead of the map. A snapshot is replaced whole, never changed: rebuilt with it.
  let healthAt: (RegionHealth | undefined)[] = [];
  let weights: readonly number[] = regions.map((r) => r.weight);
  let anyZeroWeight = weights.some((w) => !(w > 0));
  const byLocation = new WeakMap<ClientLocation, CachedRanking>();
  let byAnchor = new Map<RegionId, readonly RankedRegion[]>();

  function refreshRegions(snapshot: RegistrySnapshot): void {
    seenRegions = snapshot.regions;
    healthAt = regions.map((r) => snapshot.regions.get(r.id));
    const next = healthAt.map((h, i) => h?.weight ?? regions[i]!.weight);
    if (next.some((w, i) => w !== weights[i])) {
      weights = next;
      anyZeroWeight = next.some((w) => !(w > 0));
      generation++;
      byAnchor = new Map();
    }
  }

  const weightOf = (id: RegionId): number => weights[regions.findIndex((r) => r.id === id)] ?? 1;

  /**
   * How many of the `belowSoft` leading candidates latency routing and hedging may choose among.
   * Weight 0 is an operator's "last resort" (ranked after every weighted region): readiness puts
   * such regions at the end of the below-soft run, but the estimate reordered that whole run by
   * warmth, so a region weighted to 0 to move traffic off it won every request while it still held
   * idle containers (and was raced as a hedge). They stay out of the choice while a weighted
   * region is left; if every region left is weighted 0, the choice is among them.
   */
  function choosable(candidates: readonly RegionId[], belowSoft: number): number {
    if (!anyZeroWeight) return belowSoft;
    let n = 0;
    while (n < belowSoft && weights[regionIndex.get(candidates[n]!)!]! > 0) n++;
    return n === 0 ? belowSoft : n;
  }

  function rankingFor(client: ClientLocation): { ranking: readonly RankedRegion[]; anchor: Anchor } {
    if (client.lat !== null && client.lon !== null) {
      const cached = byLocation.get(client);
      if (cached !== undefined && cached.generation === generation) return { ranking: cached.ranking, anchor: 'nearest' };
      const ranking = rankRegions(regions, client.lat, client.lon, weightOf);
      byLocation.set(client, { generation, ranking });
      return { ranking, anchor: 'nearest' };
    }
    const byCountry = client.country === null ? undefined : countryRegions.get(client.country);
    const anchorId = byCountry ?? defaultRegion;
    let ranking = byAnchor.get(anchorId);
    if (ranking === undefined) {
      const a = regionById.get(anchorId)!;
      ranking = rankRegions(regions, a.lat, a.lon, weightOf);
      byAnchor.set(anchorId, ranking);
    }
    return { ranking, anchor: byCountry === undefined ? 'fallback:no-geo' : 'fallback:country' };
  }

  /** Whether the last lookupFunction found the function in the directory (not a stand-in). */
  let lookedUpListed = false;
  function lookupFunction(snapshot: RegistrySnapshot, org: string, fn: string): FunctionRecord | undefined {
    const record = snapshot.functions.get(org)?.get(fn);
    lookedUpListed = record !== undefined;
    // No stand-in before the directory is read: the org's residency rule is not known yet, and a
    // stand-in sent the request to the nearest region anywhere (residency fails closed: 503).
    if (record !== undefined || unknownFunctions === 'reject' || snapshot.directoryUnread) return record;
    return standInFor(org, fn);
  }

  // An unlisted function's stand-in record, kept (bounded) so its next request finds the same
  // object: the per-record state below (counts, warmth) is keyed by it, and a fresh record per
  // request would build that state anew each time.
  const standIns = new LRUCache<string, FunctionRecord>({ max: 10_000 });
  const standInRecords = new WeakSet<FunctionRecord>();
  // The last stand-in handed out: a run of requests for one unlisted function (one host memo entry,
  // so the same org and fn strings) finds it with two comparisons instead of building the LRU's key
  // and looking it up (about 1,000 instructions a request, counted). Nothing here depends on the
  // registry: lookupFunction consults the directory first on every request, so a function that
  // gets listed is served from the directory at once. Skipping the LRU's touch for this one record
  // can only let it be evicted sooner there, which builds an equal record later (stand-ins count no
  // sends, so a new one carries nothing the old one had).
  let lastStandIn: FunctionRecord | undefined;
  function standInFor(org: string, fn: string): FunctionRecord {
    const last = lastStandIn;
    if (last !== undefined && last.fn === fn && last.org === org) return last;
    const key = `${org}/${fn}`;
    let record = standIns.get(key);
    if (record === undefined) {
      record = { org, fn, regions: null, tier: 'standard', enabled: true };
      standIns.set(key, record);
      standInRecords.add(record);
    }
    lastStandIn = record;
    return record;
  }

  const hosts = createHostMemo(zone, customDomains);

  function decide(
    rawHost: string,
    ip: string,
    snapshot: RegistrySnapshot,
    nowMs: number,
    trace?: RegionTrace[],
    estimates?: AnswerEstimate[],
  ): RouteDecision {
    current.nowMs = nowMs;
    const resolved = hosts.resolve(rawHost, snapshot.domains);
    if (!resolved.ok) {
      // A name a custom domain could be (outside the zone, or under it and off the naming rule) may be one the unread directory holds.
      if (snapshot.directoryUnread && CUSTOM_DOMAIN_CANDIDATES.has(resolved.code)) return DIRECTORY_UNREAD;
      return { ok: false, code: resolved.code, message: resolved.message };
    }
    const { fn, org, host } = resolved;
    const client = locator.locate(ip);

    if (snapshot.functions !== ledgerDirectory) pruneLedger(snapshot.functions);
    const fnRecord = lookupFunction(snapshot, org, fn);
    if (fnRecord === undefined) {
      if (snapshot.directoryUnread) return { ...DIRECTORY_UNREAD, host, fn, org, client };
      return { ok: false, code: 'function_not_found', message: `no function ${fn} in org ${org}`, host, fn, org, client };
    }
    if (!fnRecord.enabled) {
      return { ok: false, code: 'function_disabled', message: `function ${fn} in org ${org} is disabled`, host, fn, org, client };
    }

    if (snapshot.regions !== seenRegions) refreshRegions(snapshot);
    const { ranking, anchor } = rankingFor(client);
    let picked = pickRegions({
      ranking,
      healthAt,
      deployedIn: fnRecord.regions,
      allowedIn: snapshot.residency.get(org),
      nowMs,
      anchor,
      trace,
      localLoadAt,
    });
    // Every region full: refuse now what could only time out (a rare branch; none of it runs otherwise).
    if (tierTimeoutMs !== undefined && picked.belowSoft === 0 && picked.candidates.length > 0 && picked.reason !== 'panic') {
      const limitMs = tierTimeoutMs[fnRecord.tier];
      deadlineOf.record = fnRecord;
      deadlineOf.ranking = ranking;
      deadlineOf.snapshot = snapshot;
      const verdict = checkDeadline(picked.candidates, limitMs, describeForDeadline);
      if (!verdict.fits) {
        const message = `every region this function may use is full: the soonest expected answer (${(verdict.bestMs / 1000).toFixed(1)} s, ${verdict.bestRegion}) is past its ${limitMs / 1000} s limit; try again in ${verdict.retryAfterS} s`;
        return { ok: false, code: 'deadline_unreachable', message, host, fn, org, client, retryAfterS: verdict.retryAfterS };
      }
      // Admitted on the estimate of a region further down: it goes first. Tried in distance order,
      // the request went to the nearer region expected past the limit (a 504 there, the very answer
      // this check exists to spare), or never reached the one that fits past --max-attempts.
      if (verdict.index > 0) {
        const [fits] = picked.candidates.splice(verdict.index, 1);
        picked.candidates.unshift(fits!);
        picked = { candidates: picked.candidates, reason: deadlineReason.get(fits!)!, belowSoft: picked.belowSoft };
      }
    }
    // Sends are counted, and pre-warms asked, only for functions in the directory, never for an
    // unlisted one's stand-in (--unknown-functions forward): nobody deploys containers for it.
    const listed = latency && lookedUpListed;
    const reorderable = choosable(picked.candidates, picked.belowSoft);
    if (latency && reorderable > 1) {
      const readinessFirst = picked.candidates[0]!;
      const warm = orderByWarmth(fnRecord, ranking, picked.candidates, reorderable, snapshot, estimates);
      const ordered = { candidates: picked.candidates };
      // warm:<r> says a cold start was avoided: the request left readiness's pick for an idle warm
      // container elsewhere. Warm where readiness would have sent it anyway keeps readiness's reason.
      // So does a pick left although it had an idle container itself: readiness ranks by distance
      // over weight, the estimate by distance alone, so a region weighted up ranks first and loses
      // to a nearer warm one. No cold start was avoided there, and it needs no pre-warm (asking
      // started a container in a region with idle ones, every interval, and counted the request in
      // edge_router_cold_starts_avoided_total).
      const moved = ordered.candidates[0] !== readinessFirst && !hasIdleWarm(readinessFirst);
      // cold-nearest only where regions report their containers at all: with no report anywhere
      // (orchestrators that report none, a directory just started) nothing is known to be cold.
      const reason = warm ? (moved ? warmReason.get(ordered.candidates[0]!)! : picked.reason) : picked.reason === 'nearest' && warmthIndex.size > 0 ? 'cold-nearest' : picked.reason;
      const hedge = fnRecord.hedge === true ? hedgeFor(fnRecord, ranking, ordered.candidates, reorderable, snapshot) : undefined;
      // Only a decision the data plane acts on counts as a send (explain and /api/route pass a trace).
      if (trace !== undefined || !listed) return { ok: true, host: resolved.host, fn, org, fnRecord, client, candidates: ordered.candidates, reason, ...(hedge === undefined ? {} : { hedge }) };
      const sent = countSend(fnRecord, ordered.candidates[0]!, snapshot, nowMs);
      // Passed over because it was cold (`moved`): worth a container for the next request.
      const prewarm = moved && shouldPrewarm(fnRecord, readinessFirst, nowMs) ? readinessFirst : undefined;
      return { ok: true, host: resolved.host, fn, org, fnRecord, client, candidates: ordered.candidates, reason, sent, ...(prewarm === undefined ? {} : { prewarm }), ...(hedge === undefined ? {} : { hedge }) };
    }
    const hedge = fnRecord.hedge === true ? hedgeFor(fnRecord, ranking, picked.candidates, reorderable, snapshot) : undefined;
    const sent = listed && trace === undefined && picked.candidates.length > 0 ? countSend(fnRecord, picked.candidates[0]!, snapshot, nowMs) : undefined;
    if (picked.candidates.length === 0) {
      return { ok: false, code: 'no_eligible_region', message: noEligibleRegion(fn, org, fnRecord.regions, snapshot.residency.get(org)), host, fn, org, client };
    }
    return { ok: true, host: resolved.host, fn, org, fnRecord, client, candidates: picked.candidates, reason: picked.reason, ...(sent === undefined ? {} : { sent }), ...(hedge === undefined ? {} : { hedge }) };
  }

  /**
   * Why no region may serve the function (placement left none), as explain and the client read it.
   * Not always a deployment outside the rule: a rule the registry could not read allows no region
   * (RecordDecoder), and a function deployed, within the rule, only in regions this router's regions
   * file lacks (a region being rolled out) is served by the routers that have them, not this one.
   */
  function noEligibleRegion(fn: string, org: string, deployedIn: ReadonlySet<RegionId> | null, allowedIn: ReadonlySet<RegionId> | undefined): string {
    if (allowedIn !== undefined && allowedIn.size === 0) return `function ${fn} in org ${org} may be served from no region: its org's residency rule allows none (the registry could not read it)`;
    if (deployedIn !== null && [...deployedIn].some((id) => !regionById.has(id) && (allowedIn === undefined || allowedIn.has(id)))) {
      return `function ${fn} in org ${org} is deployed, within its org's residency, only in regions this router's regions file lacks`;
    }
    return `function ${fn} in org ${org} is not deployed in any region its org may use`;
  }

  function newSends(record: FunctionRecord): Sends {
    return { key: `${record.org}/${record.fn}`, entry: ++entriesMade, counts: newRegionCounts(regions.length), prewarmAt: new Float64Array(regions.length).fill(-Infinity), warmthIn: undefined, warmth: undefined };
  }

  function sendsOf(record: FunctionRecord): Sends {
    if (standInRecords.has(record)) {
      let s = standInSends.get(record);
      if (s === undefined) standInSends.set(record, (s = newSends(record)));
      return s;
    }
    let byFn = ledger.get(record.org);
    if (byFn === undefined) ledger.set(record.org, (byFn = new Map()));
    let s = byFn.get(record.fn);
    if (s === undefined) byFn.set(record.fn, (s = newSends(record)));
    return s;
  }

  /**
   * Drops the ledger entries of functions no longer in the directory (deleted, or lost with their
   * org), so the ledger holds at most one entry per listed function. Runs when the directory
   * object changes (a full read: every few seconds at most), not per request.
   */
  function pruneLedger(directory: RegistrySnapshot['functions']): void {
    ledgerDirectory = directory;
    // The decision-in-progress shortcut (current.sends) could point at an entry dropped below.
    current.record = undefined as unknown as FunctionRecord;
    current.sends = undefined;
    for (const [org, byFn] of ledger) {
      const listed = directory.get(org);
      if (listed === undefined) {
        ledger.delete(org);
        continue;
      }
      for (const fn of byFn.keys()) if (!listed.has(fn)) byFn.delete(fn);
      if (byFn.size === 0) ledger.delete(org);
    }
  }

  /**
   * Brings the function's counts in region `i` to the region's last report (reportAtByRegion is
   * current: every caller has indexed its snapshot). The busy count is looked up only then.
   */
  function syncCounts(s: Sends, i: number): void {
    const reportAt = reportAtByRegion[i]!;
    if (isCurrent(s.counts, i, reportAt)) return;
    // Remembered on the entry while the index is the one it was read from (an end may come with a newer snapshot).
    const warmth = s.warmthIn === warmthIndex ? s.warmth : warmthIndex.get(s.key);
    rebase(s.counts, i, reportAt, warmth?.busy[i] ?? 0);
  }

  /**
   * Containers of the function in `region` this router took since the region's last report (see
   * container-ledger.ts; negative when it freed more). Idle left = reported idle − this.
   */
  function takenSinceReport(record: FunctionRecord, region: RegionId): number {
    const i = regionIndex.get(region)!;
    const s = record === current.record ? current.sends! : sendsOf(record);
    const settleMs = settledAfterMs(s, i);
    const count = taken(s.counts, i, reportAtByRegion[i]!, current.nowMs, settleMs);
    if (!Number.isNaN(count)) return count;
    syncCounts(s, i);
    return taken(s.counts, i, reportAtByRegion[i]!, current.nowMs, settleMs);
  }

  /**
   * After how long region `i`'s report stops holding the function's busy containers busy
   * (container-ledger.ts): the region's service time (regionServiceMs), but not while a pre-warm this router
   * asked of the region may still be starting. An orchestrator reports a starting container as
   * busy, and one settled as free the moment its report was a few ms old: the next request went
   * there as to a warm container, found it still starting and cold-started another (while the
   * warm region the pre-warm was asked for stood idle), the cold start pre-warming is there to avoid.
   */
  function settledAfterMs(s: Sends, i: number): number {
    const askedAt = s.prewarmAt[i]!;
    if (askedAt === -Infinity) return serviceMsByRegion[i]!; // never asked: the request path's usual case
    const warmth = s.warmthIn === warmthIndex ? s.warmth : warmthIndex.get(s.key);
    const cold = warmth?.coldStartMs[i] ?? NaN;
    // A pre-warm asked "in the future" (the wall clock stepped back since) is one long settled.
    const since = current.nowMs - askedAt;
    return since >= 0 && since < (Number.isNaN(cold) ? defaultColdStartMs : cold) ? 0 : serviceMsByRegion[i]!;
  }

  /** Counts a request sent to `region` at `nowMs`; `finished` takes it back when it is over. */
  function countSend(record: FunctionRecord, region: RegionId, snapshot: RegistrySnapshot, nowMs: number): { region: RegionId; sentAt: number; entry: number } {
    return sendIn(record === current.record ? current.sends! : sendsOf(record), region, snapshot, nowMs);
  }

  /** Counts a send to `region` in the ledger entry `s`. */
  function sendIn(s: Sends, region: RegionId, snapshot: RegistrySnapshot, nowMs: number): { region: RegionId; sentAt: number; entry: number } {
    indexRegions(snapshot);
    const i = regionIndex.get(region)!;
    syncCounts(s, i);
    return { region, sentAt: countedSend(s.counts, i, nowMs), entry: s.entry };
  }

  /**
   * The ledger entry a counted decision's send is in. Sent decisions are for listed functions
   * only; one deleted since has no entry left (or a new one, if it was deployed again, which this
   * request was never counted in).
   */
  function entryOf(decision: Extract<RouteDecision, { ok: true }>, sent: { readonly entry: number }): Sends | undefined {
    const s = ledger.get(decision.org)?.get(decision.fn);
    return s === undefined || s.entry !== sent.entry ? undefined : s;
  }

  function finished(decision: Extract<RouteDecision, { ok: true }>, snapshot: RegistrySnapshot, nowMs: number): void {
    const sent = decision.sent;
    if (sent === undefined) return;
    const s = entryOf(decision, sent);
    if (s === undefined) return;
    indexRegions(snapshot);
    const i = regionIndex.get(sent.region)!;
    syncCounts(s, i);
    ended(s.counts, i, sent.sentAt, nowMs);
  }

  function alsoSent(decision: Extract<RouteDecision, { ok: true }>, region: RegionId, snapshot: RegistrySnapshot, nowMs: number): Extract<RouteDecision, { ok: true }> {
    if (decision.sent === undefined) return decision;
    const s = entryOf(decision, decision.sent);
    if (s === undefined || !regionIndex.has(region)) return { ...decision, sent: undefined };
    return { ...decision, sent: sendIn(s, region, snapshot, nowMs) };
  }

  function moved(decision: Extract<RouteDecision, { ok: true }>, region: RegionId, snapshot: RegistrySnapshot, nowMs: number): Extract<RouteDecision, { ok: true }> {
    if (decision.sent === undefined || decision.sent.region === region) return decision;
    finished(decision, snapshot, nowMs);
    return alsoSent(decision, region, snapshot, nowMs);
  }

  /** Rate limit per function and region: a burst passing a cold region over asks it once. */
  function shouldPrewarm(record: FunctionRecord, region: RegionId, nowMs: number): boolean {
    if (prewarmIntervalMs <= 0) return false;
    const s = sendsOf(record);
    const i = regionIndex.get(region)!;
    // Not before the interval has passed; a step of the wall clock back since the last ask is no
    // reason to wait for its length more (the request path's times are Date.now()).
    const since = nowMs - s.prewarmAt[i]!;
    if (since >= 0 && since < prewarmIntervalMs) return false;
    s.prewarmAt[i] = nowMs;
    return true;
  }

  // One estimate input for the decider's life: its callbacks read the decision in progress, so a
  // decision allocates no closures (the request path's budget is a few hundred nanoseconds).
  const current = {
    record: undefined as unknown as FunctionRecord,
    ranking: [] as readonly RankedRegion[],
    warmth: undefined as Warmth | undefined,
    sends: undefined as Sends | undefined,
    /** The decision's clock (ms). */
    nowMs: 0,
  };
  // The function's containers in every region, indexed once per snapshot (not two map lookups per
  // region per request). Rebuilt when the snapshot's regions change: a few times a second.
  interface Warmth {
    /** Idle containers per region (config order); -1 where the region did not report the function. */
    readonly idle: Int32Array;
    /** Busy containers per region, as reported, or this worker's share (0 where it did not report the function). */
    readonly busy: Int32Array;
    /** Median cold start per region; NaN where unknown. */
    readonly coldStartMs: Float64Array;
  }
  const idleShareOf = options.idleShare;
  let indexedRegions: RegistrySnapshot['regions'] | undefined;
  let warmthIndex = new Map<string, Warmth>();
  const reportAtByRegion = new Float64Array(regions.length);
  /** How long a request holds a container in each region, as last reported (regionServiceMs; ms, 0 = unknown). */
  const serviceMsByRegion = new Float64Array(regions.length);
  /** The function's warmth in the snapshot's index, remembered on its entry until the index is rebuilt (no string-keyed lookup per request). */
  function warmthOf(snapshot: RegistrySnapshot, s: Sends): Warmth | undefined {
    indexRegions(snapshot);
    if (s.warmthIn !== warmthIndex) {
      s.warmthIn = warmthIndex;
      s.warmth = warmthIndex.get(s.key);
    }
    return s.warmth;
  }
  function indexRegions(snapshot: RegistrySnapshot): void {
    if (snapshot.regions !== indexedRegions) {
      indexedRegions = snapshot.regions;
      warmthIndex = new Map();
      regions.forEach((r, i) => {
        const health = snapshot.regions.get(r.id);
        reportAtByRegion[i] = health?.heartbeatAt ?? 0;
        serviceMsByRegion[i] = regionServiceMs(health);
        for (const [fnKey, load] of health?.functionLoads ?? []) {
          let w = warmthIndex.get(fnKey);
          if (w === undefined) warmthIndex.set(fnKey, (w = { idle: new Int32Array(regions.length).fill(-1), busy: new Int32Array(regions.length), coldStartMs: new Float64Array(regions.length).fill(NaN) }));
          w.idle[i] = idleShareOf === undefined ? load.idle : idleShare(load.idle, idleShareOf);
          // A share of the busy ones too: once a report settles (see container-ledger.ts), they
          // count as idle, and the workers must not each count all of them.
          w.busy[i] = idleShareOf === undefined ? load.busy : idleShare(load.busy, idleShareOf);
          w.coldStartMs[i] = load.coldStartMs ?? NaN;
        }
      });
    }
  }
  // Handed to the estimate and read at once, never kept: one object serves every call.
  const loadView = { idle: 0, busy: 0, coldStartMs: null as number | null };
  const estimateInput = {
    candidates: [] as RegionId[],
    reorderable: 0,
    distanceKm: (region: RegionId) => distanceIn(current.ranking, region),
    load: (region: RegionId) => {
      const w = current.warmth;
      const i = regionIndex.get(region)!;
      if (w === undefined || w.idle[i]! < 0) return undefined;
      loadView.idle = w.idle[i]!;
      const cold = w.coldStartMs[i]!;
      loadView.coldStartMs = Number.isNaN(cold) ? null : cold;
      return loadView;
    },
    takenSinceReport: (region: RegionId) => takenSinceReport(current.record, region),
    msPer100Km,
    defaultColdStartMs,
  };

  /** Whether `region` has an idle warm container left for the decision in progress (after orderByWarmth), as the estimate counts it. */
  function hasIdleWarm(region: RegionId): boolean {
    return (estimateInput.load(region)?.idle ?? 0) - takenSinceReport(current.record, region) > 0;
  }

  const scratch = new Float64Array(2 * regions.length);
  const hedgeDelayMs = options.hedgeDelayMs ?? 50;

  /**
   * Where to race a hedged function's request: when the pick has no idle warm container left, the
   * first of the other regions with room (below their soft limit) that has one. The data plane
   * waits the pick's round trip plus hedgeDelayMs first: a warm container answers in a few ms, so
   * a pick still silent by then is cold-starting. A hedge is not counted as a send: it is only
   * sent when that wait runs out.
   */
  function hedgeFor(record: FunctionRecord, ranking: readonly RankedRegion[], candidates: readonly RegionId[], belowSoft: number, snapshot: RegistrySnapshot): { region: RegionId; afterMs: number } | undefined {
    const n = Math.min(belowSoft, candidates.length);
    if (n < 2) return undefined;
    const warmth = warmthOf(snapshot, sendsOf(record));
    if (warmth === undefined) return undefined;
    const idleLeft = (region: RegionId) => warmth.idle[regionIndex.get(region)!]! - takenSinceReport(record, region);
    const pick = candidates[0]!;
    if (idleLeft(pick) > 0) return undefined;
    for (let k = 1; k < n; k++) {
      if (idleLeft(candidates[k]!) <= 0) continue;
      return { region: candidates[k]!, afterMs: Math.round((distanceIn(ranking, pick) / 100) * msPer100Km) + hedgeDelayMs };
    }
    return undefined;
  }

  // Deadline admission's view of one region, read from the decision in progress (no closure per request).
  const { tierTimeoutMs } = options;
  const deadlineOf = { record: undefined as unknown as FunctionRecord, ranking: [] as readonly RankedRegion[], snapshot: undefined as unknown as RegistrySnapshot };
  function describeForDeadline(region: RegionId, into: MutableCandidate): void {
    const { record, ranking, snapshot } = deadlineOf;
    const h = snapshot.regions.get(region);
    const i = regionIndex.get(region)!;
    const warmth = warmthOf(snapshot, sendsOf(record));
    const idle = warmth === undefined ? 0 : warmth.idle[i]! - takenSinceReport(record, region);
    const cold = warmth === undefined ? NaN : warmth.coldStartMs[i]!;
    into.rttMs = (distanceIn(ranking, region) / 100) * msPer100Km;
    into.coldStartMs = idle > 0 ? 0 : Number.isNaN(cold) ? defaultColdStartMs : cold;
    into.inFlight = Math.max(h?.inFlight ?? 0, localLoadAt?.(i) ?? 0);
    into.containers = h?.capacity.hard ?? 0;
    into.serviceMs = regionServiceMs(h);
  }

  /** Reorders `candidates` (readiness's fresh array) in place; with `estimates`, lists them too (explain). */
  function orderByWarmth(record: FunctionRecord, ranking: readonly RankedRegion[], candidates: RegionId[], belowSoft: number, snapshot: RegistrySnapshot, estimates?: AnswerEstimate[]): boolean {
    current.record = record;
    current.sends = sendsOf(record);
    current.ranking = ranking;
    current.warmth = warmthOf(snapshot, current.sends);
    estimateInput.candidates = candidates;
    estimateInput.reorderable = belowSoft;
    // No region reports the function (an unlisted one, or one with no container anywhere): no
    // region can have an idle warm container, so the estimate would keep readiness's order. Idle
    // left is reported idle (none) minus taken, and taken is never negative without a report: the
    // ledger frees at most as many as a report counted busy (container-ledger.ts), here none.
    // Skipped, that is ten region lookups and ledger reads less a request (about 2,000 instructions);
    // the ledger's counts are brought to the region's report when next read or written instead.
    if (current.warmth === undefined && estimates === undefined) return false;
    if (estimates === undefined) return reorderByExpectedAnswer(estimateInput, scratch);
    const ordered = orderByExpectedAnswer(estimateInput);
    estimates.push(...ordered.estimates);
    candidates.splice(0, candidates.length, ...ordered.candidates);
    return ordered.warm;
  }

  return {
    decide,
    finished,
    moved,
    alsoSent,
    resolveHost: (host, snapshot) => hosts.resolve(host, snapshot.domains),
  };
}
