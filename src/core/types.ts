/**
 * Plain data types shared by every layer: regions, client locations, functions and the
 * registry snapshot the router routes from. No behaviour and no imports, so any module may use them.
 */

/** A region id from regions.json, e.g. `atl`. */
export type RegionId = string;

export interface Capacity {
  /** At or above this many in-flight requests, traffic spills to the next-nearest region. */
  readonly soft: number;
  /** At or above this many in-flight requests, the region takes nothing unless every region is full. */
  readonly hard: number;
}

/**
 * The most of anything a region counts (requests in flight, containers, a capacity limit) that a
 * heartbeat may carry. regions.json's capacity is held to it too: a region configured past it
 * reported heartbeats every registry refused, and never came up.
 */
export const MAX_REGION_COUNT = 10_000_000;

/** A region as configured in regions.json (static for the life of the process). */
export interface RegionConfig {
  readonly id: RegionId;
  readonly name: string;
  readonly lat: number;
  readonly lon: number;
  /** Base URLs of the region's orchestrator(s), e.g. `http://127.0.0.1:7001`. */
  readonly orchestrators: readonly string[];
  readonly capacity: Capacity;
  /** Proximity weight: a region with weight 2 ranks as if it were half as far. 0 = last resort. */
  readonly weight: number;
}

/** Which organisation's which function a request is for. */
export interface FunctionRef {
  readonly fn: string;
  readonly org: string;
}

/** How the client's location was found (stable strings, shown by `explain`). */
export type LocationSource =
  | 'geoip' // the database gave coordinates
  | 'geoip-country' // the database knew the country only
  | 'unknown' // a public address the database does not know
  | 'private' // RFC 1918 / ULA / link-local / CGNAT
  | 'loopback'
  | 'no-database'; // running without a GeoIP database

/** Where a client is, as far as GeoIP can tell. Cached and shared: never mutate. */
export interface ClientLocation {
  readonly ip: string;
  readonly country: string | null;
  readonly city: string | null;
  readonly lat: number | null;
  readonly lon: number | null;
  readonly source: LocationSource;
}

/** One function's containers in a region, as its orchestrator last reported them. */
export interface FunctionLoad {
  /** Warm containers free for the next request. */
  readonly idle: number;
  /** Containers serving a request or starting. */
  readonly busy: number;
  /** The region's recent median cold start for the function; null when it has none to go by. */
  readonly coldStartMs: number | null;
}

/** What is known of a request when it is over: the access log's and the metrics' input. */
export interface RequestOutcome {
  /** The region that answered (the last one tried); null when none was. */
  readonly region: RegionId | null;
  readonly tried: readonly RegionId[];
  readonly status: number;
  readonly error: string | null;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly upstreamMs: number;
  readonly totalMs: number;
  /** The final route reason when it changed on the way (failover, spill); else the context's. */
  readonly route?: string | null;
  /** Where a cold-start hedge was sent (it won when it is also `region`); null or absent: none. */
  readonly hedgedTo?: RegionId | null;
}

/**
 * `RequestOutcome.error` of a response cut because the function was still sending it past its tier
 * deadline and grace (proxy/exchange.ts); the metrics count these apart.
 */
export const RESPONSE_DEADLINE = 'response_deadline';

/** Region status as seen by heartbeats and probes. Operator drain is kept apart (`drained`). */
export type RegionStatus = 'up' | 'degraded' | 'draining' | 'down';

/** One region's live state in a registry snapshot. */
export interface RegionHealth {
  readonly status: RegionStatus;
  /** Epoch ms of the last heartbeat or successful probe; null when never seen. */
  readonly heartbeatAt: number | null;
  readonly inFlight: number;
  /** Effective limits: what the region reports, else regions.json. */
  readonly capacity: Capacity;
  readonly warmContainers: number;
  /** Of the requests the region served, from their arrival there to the answer's end (queue wait included). */
  readonly latencyMs: { readonly p50: number; readonly p99: number };
  /**
   * The region's median service time (ms): how long a request holds a container, from the moment
   * it is given one (or a slot one starts in for it) to the answer's end, the queue wait left out.
   * Absent when the region reports none (an orchestrator of an earlier version).
   */
  readonly serviceMs?: number;
  /** Fraction of failed requests over the reporting window, 0..1. */
  readonly errorRate: number;
  /** `org/fn` keys of functions with a warm container in this region. */
  readonly warmFunctions: ReadonlySet<string>;
  /**
   * Per `org/fn`, the containers the region reported (its most recently used functions, up to a
   * bound); a function not listed has no container there. Empty when the region reports none.
   */
  readonly functionLoads: ReadonlyMap<string, FunctionLoad>;
  /** Operator drain: takes no new traffic (in-flight requests finish). */
  readonly drained: boolean;
  /** Effective weight: operator override, else regions.json. */
  readonly weight: number;
  /** Epoch ms until which passive outlier detection keeps the region out; 0 when not ejected. */
  readonly ejectedUntil: number;
}

export type TimeoutTier = 'standard' | 'extended';

/**
 * The longest a passive-outlier ejection lasts (outlier-detector.ts), and so the longest any
 * router takes another's shared ejection to last from when it first reads it (registry-watcher.ts).
 */
export const MAX_EJECTION_MS = 300_000;

/** The platform's time limits per tier (ms): what the router enforces and orchestrators apply unless told otherwise. */
export const DEFAULT_TIER_TIMEOUT_MS: Readonly<Record<TimeoutTier, number>> = { standard: 30_000, extended: 60_000 };

/**
 * The margin past the tier deadline that a response still streaming is given (the drain timeout's
 * default has the same: router-command.ts drainCovering). A function still sending after its
 * limit has outrun the platform's own timeout, but bytes it wrote just before may still be on
 * their way through the orchestrator; 5 s covers that without letting a runaway stream on.
 */
export const RESPONSE_GRACE_MS = 5_000;

/** A cluster worker's place among its siblings: slot 0..of-1 (of ≥ 2). */
export interface WorkerSlot {
  readonly slot: number;
  readonly of: number;
}

/** A deployed function, from the function directory. */
export interface FunctionRecord extends FunctionRef {
  /** Regions where it is deployed; null means every region. */
  readonly regions: ReadonlySet<RegionId> | null;
  readonly tier: TimeoutTier;
  readonly enabled: boolean;
  /**
   * Cold-start hedging (opt-in): when the pick must cold-start and another region has an idle
   * warm container, a replayable request is raced from there too. Absent = off.
   */
  readonly hedge?: boolean;
}

/**
 * Everything the request path reads about the live system, replaced whole on every change
 * (readers never see a half-applied update).
 */
export interface RegistrySnapshot {
  /** Increases with every change; lets caches keyed on the snapshot notice staleness. */
  readonly version: number;
  readonly regions: ReadonlyMap<RegionId, RegionHealth>;
  /** org → fn → record. Nested so a lookup builds no `org/fn` string. */
  readonly functions: ReadonlyMap<string, ReadonlyMap<string, FunctionRecord>>;
  /** org → regions it may be served from (data residency); absent = anywhere. */
  readonly residency: ReadonlyMap<string, ReadonlySet<RegionId>>;
  /** Custom domain (lower-case, no trailing dot) → function. */
  readonly domains: ReadonlyMap<string, FunctionRef>;
  /**
   * The directory (functions, domains, residency) has not been read from the registry yet (a
   * router that started while Redis was unreachable): a function missing from it may well exist.
   */
  readonly directoryUnread?: true;
}

/**
 * TLS towards https orchestrators beyond the system's defaults, as PEM texts for undici's connector
 * and node:tls: a private CA their certificates chain to, and the router's client certificate and
 * key for those that require one (read and checked by config/orchestrator-tls.ts).
 */
export interface OrchestratorTls {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}
