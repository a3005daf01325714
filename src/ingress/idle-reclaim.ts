/**
 * Making room at `--max-connections` by closing idle connections, as nginx reuses its keep-alive
 * connections when it runs out of free ones. Without it, a listener full of connections that carry
 * nothing (keep-alive clients between requests, HTTP/2 connections without a stream, clients that
 * connected and sent nothing) drops every new connection until one of them times out: a few
 * thousand addresses holding idle connections shut everyone else out, and the keep-alive, idle and
 * handshake timeouts (5 s, 1 min, 10 s) are all that stands between them and the rest.
 *
 * Pure policy: when to look and which to close. What counts as idle, and the closing, belong to the
 * listeners (idle-connections.ts, connection-cap.ts).
 */

/** A connection carrying nothing now, which could be closed to make room. */
export interface ReclaimCandidate<C> {
  /** When it last carried a byte (or was accepted, if it never did), on the clock `now()` reads. */
  readonly idleSinceMs: number;
  readonly connection: C;
}

export interface ReclaimOptions {
  /**
   * A connection quiet for less than this is kept: its client is likely to use it again at once,
   * and a new connection's first bytes may be on their way. Also the earliest a connection that
   * has sent nothing yet may go.
   */
  readonly minIdleMs: number;
  /**
   * The most of one core the looks may take: each walks every connection of the listener, so
   * after a walk that took w ms of CPU the next waits w / share. A walk is rare, so its code runs cold:
   * 11–18 ms over 9,000 HTTP/2 connections in the router (0.2 µs a connection once warm), then a
   * look every 0.2–0.4 s at most; the reserve (1/64 of the cap) takes the new connections between.
   */
  readonly maxCoreShare: number;
}

export const DEFAULT_RECLAIM_OPTIONS: ReclaimOptions = { minIdleMs: 1_000, maxCoreShare: 0.05 };

/** The places kept free below a listener's cap: 1/64 of it, at least one. */
export const reserveOf = (cap: number): number => Math.max(1, Math.ceil(cap / 64));

/**
 * How many connections to close on a listener holding `open` of at most `cap`: none while it is
 * more than a reserve below the cap (1/64 of it, at least one); near the cap, enough to get back to
 * twice the reserve below it. Starting before the cap leaves room for the connections that arrive
 * while the closed ones are still going (Node counts a connection until its close has completed),
 * and taking a batch makes each walk over the connections serve many new ones.
 */
export function reclaimWanted(open: number, cap: number): number {
  if (cap <= 0) return 0;
  const reserve = reserveOf(cap);
  if (open < cap - reserve) return 0;
  return open - Math.max(0, cap - 2 * reserve);
}

/**
 * The candidates quiet for at least `minIdleMs` at `nowMs`, least recently used first: a connection
 * a client uses often (a busy browser, a trusted proxy's pool) is the last to go, whatever its age.
 */
export function leastRecentlyUsed<C>(candidates: readonly ReclaimCandidate<C>[], nowMs: number, minIdleMs: number): ReclaimCandidate<C>[] {
  const quietSince = nowMs - minIdleMs;
  const eligible = candidates.filter((c) => c.idleSinceMs <= quietSince);
  return eligible.sort((a, b) => a.idleSinceMs - b.idleSinceMs);
}

/** However few addresses share a listener, one holding no more than this many connections counts as light. */
export const LIGHT_ADDRESS_CONNECTIONS = 16;

/**
 * How a new connection's address stands near a full listener (idle-reclaim's reserve):
 * - light: it holds no more than half an equal share of the cap among the addresses holding any,
 *   or no more than LIGHT_ADDRESS_CONNECTIONS (a browser opens six a host name, an office behind
 *   one address more): idle connections are closed to make room for it, at once if need be;
 * - heavy: it holds more: refused within the reserve, without a look. Half a share, so that a few
 *   addresses holding the whole listener between them are all heavy, however evenly;
 * - unknown: it is a trusted proxy's (many clients behind one address), or addresses are not
 *   counted (--max-conns-per-ip 0): the looks make room for it, but it takes no place at once.
 *   (Behind the PROXY protocol a connection is judged once its header names the client.)
 * Without it, addresses that open a new connection the moment one of theirs is closed would take
 * every place made, each pushing out an idle one, until no connection stayed quiet long enough to
 * be closed and everyone else was turned away.
 */
export type Standing = 'light' | 'heavy' | 'unknown';

/** The standing of an address holding `held` connections (itself included), `addresses` holding any. */
export function standingOf(held: number, cap: number, addresses: number): Standing {
  return held <= Math.max(LIGHT_ADDRESS_CONNECTIONS, Math.floor(cap / (2 * Math.max(1, addresses)))) ? 'light' : 'heavy';
}

/** The most spares a look keeps, in reserves of the cap: more than the places a look's pause can be asked for. */
const SPARE_RESERVES = 4;
/** Below the cap by this many reserves, the spares are dropped: far enough that the next look will make new ones. */
const SPARES_DROPPED_RESERVES_BELOW_CAP = 4;

/** What a listener tells its reclaimer. */
export interface ReclaimedListener<C> {
  /** Connections open on it now, those being closed included. */
  open(): number;
  /** Its `--max-connections` (0: none). */
  cap(): number;
  /** Its connections carrying nothing now: walked only when some are to be closed. */
  candidates(): ReclaimCandidate<C>[];
  /**
   * Whether a candidate an earlier walk found is as it was then: open, carrying nothing, and no
   * byte read or written on it since (checked for one connection, without a walk).
   */
  stillIdle(candidate: ReclaimCandidate<C>): boolean;
  /**
   * Whether closing it leaves the count at once (a socket), rather than once its client has
   * closed too (an HTTP/2 session asked to go): only those are kept as spares.
   */
  leavesAtOnce(connection: C): boolean;
  /** Closes one of them. */
  reclaim(connection: C): void;
}

/** The reclaimer's clocks and its one timer (stand-ins in tests). */
export interface ReclaimClock {
  now(): number;
  /**
   * The process's CPU time in ms: a walk's cost is what it took of the CPU, not of the wall clock,
   * which on a shared host also counts the time other processes had the core (a walk taken for 20
   * times longer than it cost paced the next one past the reserve: new clients dropped under load).
   */
  cpuMs(): number;
  /** Runs `job` once after `ms`; must not keep the process alive. */
  later(job: () => void, ms: number): void;
}

const REAL_CLOCK: ReclaimClock = {
  now: () => performance.now(),
  cpuMs: () => {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1_000;
  },
  later: (job, ms) => void setTimeout(job, ms).unref(),
};

/**
 * One listener's reclaiming, asked at each connection it accepts: it looks whenever the listener
 * is near its cap, as often as the looks' share of a core allows. Near the cap, a look that cannot
 * happen yet, or that found fewer than it wanted quiet for long enough, leaves a timer to look
 * again (when allowed; a quiet period later): a listener filled in a burst makes room by itself,
 * rather than by closing the clients that come meanwhile past its cap.
 *
 * Between two looks, a connection that finds the listener full may take the place of the least
 * recently used of the last look's other idle connections whose closing leaves the count at once
 * (its spares: sockets, each checked idle still; an HTTP/2 session asked to go stays counted until
 * its client closes, so only looks close those), as nginx frees a keep-alive connection for each
 * one it accepts when it has none left; which new connections may is the listener's choice
 * (Standing). Without it, clients that open a new connection the moment one of theirs is closed
 * take the room a look made within milliseconds, and everyone else who comes before the next
 * look is turned away.
 */
export class IdleReclaimer<C> {
  #nextLookMs = Number.NEGATIVE_INFINITY;
  #timerSet = false;
  /**
   * The last look's idle connections it did not close whose closing leaves the count at once,
   * least recently used first, from `#nextSpare` on.
   */
  #spares: ReclaimCandidate<C>[] = [];
  #nextSpare = 0;
  /** Connections closed to make room, since the start. */
  reclaimed = 0;

  constructor(
    private readonly listener: ReclaimedListener<C>,
    private readonly options: ReclaimOptions = DEFAULT_RECLAIM_OPTIONS,
    private readonly clock: ReclaimClock = REAL_CLOCK,
  ) {}

  /** After an accept: closes idle connections if the listener is near its cap; how many. */
  check(): number {
    const cap = this.listener.cap();
    const open = this.listener.open();
    const wanted = reclaimWanted(open, cap);
    if (wanted === 0) {
      // Well away from the cap the spares are old news: let their connections be collected. Just
      // below it (after a look, say) they are what the next connection to find it full will use.
      if (this.#spares.length !== 0 && open < cap - SPARES_DROPPED_RESERVES_BELOW_CAP * reserveOf(cap)) this.dropSpares();
      return 0;
    }
    const startMs = this.clock.now();
    if (startMs < this.#nextLookMs) {
      this.lookAgainIn(this.#nextLookMs - startMs);
      return 0;
    }
    const cpuBeforeMs = this.clock.cpuMs();
    const eligible = leastRecentlyUsed(this.listener.candidates(), startMs, this.options.minIdleMs);
    // Paced by the walk alone: closing the chosen is work their idle timeouts would have done anyway.
    const walkedMs = this.clock.now();
    this.#nextLookMs = walkedMs + (this.clock.cpuMs() - cpuBeforeMs) / this.options.maxCoreShare;
    const closing = Math.min(wanted, eligible.length);
    for (let i = 0; i < closing; i++) this.listener.reclaim(eligible[i]!.connection);
    this.reclaimed += closing;
    // Only those that leave the count at once make room for the connection that asks; a few
    // reserves of them, the least recently used (the list pins its connections until the next look).
    const keep = SPARE_RESERVES * reserveOf(cap);
    const spares: ReclaimCandidate<C>[] = [];
    for (let i = closing; i < eligible.length && spares.length < keep; i++) {
      if (this.listener.leavesAtOnce(eligible[i]!.connection)) spares.push(eligible[i]!);
    }
    this.#spares = spares;
    this.#nextSpare = 0;
    if (closing < wanted) this.lookAgainIn(Math.max(this.options.minIdleMs, this.#nextLookMs - walkedMs));
    return closing;
  }

  /**
   * For a new connection that finds the listener past its cap after `check()`: closes the least
   * recently used of the last look's spares still idle, which takes the listener back within its
   * cap; whether there was one.
   */
  makeRoom(): boolean {
    while (this.#nextSpare < this.#spares.length) {
      const spare = this.#spares[this.#nextSpare++]!;
      if (!this.listener.stillIdle(spare)) continue;
      this.listener.reclaim(spare.connection);
      this.reclaimed++;
      if (this.#nextSpare === this.#spares.length) this.dropSpares();
      return true;
    }
    if (this.#spares.length !== 0) this.dropSpares();
    return false;
  }

  private dropSpares(): void {
    this.#spares = [];
    this.#nextSpare = 0;
  }

  /** One timer at most: the look it runs sets the next one if it is still needed. */
  private lookAgainIn(ms: number): void {
    if (this.#timerSet) return;
    this.#timerSet = true;
    this.clock.later(() => {
      this.#timerSet = false;
      this.check();
    }, ms);
  }
}
