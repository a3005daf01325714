/**
 * Making room at `--max-connections` by closing idle connections, as nginx reuses its keep-alive
 * connections when it runs out of free ones. Without it, a listener full of connections that carry
 * nothing (keep-alive clients between requests, HTTP/2 connections without a stream, clients that
 * connected and sent nothing) drops every new connection until one of them times out: a few
 * thousand addresses holding idle connections shut everyone else out, and the keep-alive and idle
 * timeouts (5 s, 1 min) are all that stands between them and the rest.
 *
 * Pure policy: when to look and which to close. What counts as idle, and the closing, belong to the
 * listeners (idle-connections.ts, public-servers.ts).
 */

/** A connection carrying nothing now, which could be closed to make room. */
export interface ReclaimCandidate {
  /** When it last carried a byte (or was accepted, if it never did), on the clock `nowMs` is read from. */
  readonly idleSinceMs: number;
  /** Closes it: at once for an HTTP/1 connection, with a GOAWAY for an HTTP/2 one. */
  reclaim(): void;
}

export interface ReclaimOptions {
  /**
   * A connection quiet for less than this is kept: its client is likely to use it again at once,
   * and a new connection's first request may be on its way. Also the earliest a connection that
   * has sent nothing yet may go.
   */
  readonly minIdleMs: number;
  /**
   * The most of one core the looks may take: each walks every connection of the listener, so
   * after a walk that took w ms the next waits w / share. A walk is rare, so its code runs cold:
   * 11–18 ms over 9,000 HTTP/2 connections in the router (0.2 µs a connection once warm), then a
   * look every 0.2–0.4 s at most; the reserve (1/64 of the cap) takes the new connections between.
   */
  readonly maxCoreShare: number;
}

export const DEFAULT_RECLAIM_OPTIONS: ReclaimOptions = { minIdleMs: 1_000, maxCoreShare: 0.05 };

/**
 * How many connections to close on a listener holding `open` of at most `cap`: none while it is
 * more than a reserve below the cap (1/64 of it, at least one); near the cap, enough to get back to
 * twice the reserve below it. Starting before the cap leaves room for the connections that arrive
 * while the closed ones are still going (Node counts a connection until its close has completed),
 * and taking a batch makes each walk over the connections serve many new ones.
 */
export function reclaimWanted(open: number, cap: number): number {
  if (cap <= 0) return 0;
  const reserve = Math.max(1, Math.ceil(cap / 64));
  if (open < cap - reserve) return 0;
  return open - Math.max(0, cap - 2 * reserve);
}

/**
 * The `count` candidates quiet for longest, each quiet for at least `minIdleMs` at `nowMs`, least
 * recently used first: a connection a client uses often (a busy browser, a trusted proxy's pool)
 * is the last to go, whatever its age.
 */
export function leastRecentlyUsed(candidates: readonly ReclaimCandidate[], count: number, nowMs: number, minIdleMs: number): ReclaimCandidate[] {
  if (count <= 0) return [];
  const quietSince = nowMs - minIdleMs;
  const eligible = candidates.filter((c) => c.idleSinceMs <= quietSince);
  eligible.sort((a, b) => a.idleSinceMs - b.idleSinceMs);
  return eligible.length > count ? eligible.slice(0, count) : eligible;
}

/** What a listener tells its reclaimer. */
export interface ReclaimedListener {
  /** Connections open on it now, those being closed included. */
  open(): number;
  /** Its `--max-connections` (0: none). */
  cap(): number;
  /** Its connections carrying nothing now: walked only when some are to be closed. */
  candidates(): ReclaimCandidate[];
}

/** The reclaimer's clock and its one timer (a stand-in in tests). */
export interface ReclaimClock {
  now(): number;
  /** Runs `job` once after `ms`; must not keep the process alive. */
  later(job: () => void, ms: number): void;
}

const REAL_CLOCK: ReclaimClock = {
  now: () => performance.now(),
  later: (job, ms) => void setTimeout(job, ms).unref(),
};

/**
 * One listener's reclaiming: told of each connection it accepts or drops at its cap, it looks
 * whenever the listener is near its cap, as often as the looks' share of a core allows. A look that
 * wanted more than it found quiet enough looks again once those it saw have had time to become
 * so: a listener filled in a burst makes room by itself a second later, rather than at the cost
 * of the next client, whom Node would drop at the cap before any look.
 */
export class IdleReclaimer {
  #nextLookMs = Number.NEGATIVE_INFINITY;
  #lookAgain = false;
  /** Connections closed to make room, since the start. */
  reclaimed = 0;

  constructor(
    private readonly listener: ReclaimedListener,
    private readonly options: ReclaimOptions = DEFAULT_RECLAIM_OPTIONS,
    private readonly clock: ReclaimClock = REAL_CLOCK,
  ) {}

  /** After an accept (or a drop at the cap): closes idle connections if the listener is near its cap; how many. */
  check(): number {
    const wanted = reclaimWanted(this.listener.open(), this.listener.cap());
    if (wanted === 0) return 0;
    const startMs = this.clock.now();
    if (startMs < this.#nextLookMs) return 0;
    const chosen = leastRecentlyUsed(this.listener.candidates(), wanted, startMs, this.options.minIdleMs);
    // Paced by the walk alone: closing the chosen is work their idle timeouts would have done anyway.
    const walkedMs = this.clock.now();
    this.#nextLookMs = walkedMs + (walkedMs - startMs) / this.options.maxCoreShare;
    for (const candidate of chosen) candidate.reclaim();
    this.reclaimed += chosen.length;
    if (chosen.length < wanted && !this.#lookAgain) {
      this.#lookAgain = true;
      this.clock.later(() => {
        this.#lookAgain = false;
        this.check();
      }, this.options.minIdleMs);
    }
    return chosen.length;
  }
}
