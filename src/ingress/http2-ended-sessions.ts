/**
 * HTTP/2 connections that nghttp2 ended on its own, let go of once their clients leave.
 *
 * For many connection errors (a header block it cannot decode, a frame longer than allowed, a
 * stream id a client may not use, DATA on stream 0), nghttp2 sends GOAWAY and wants to read no
 * more, and Node, told nothing, stops reading the socket and keeps the session. A socket nobody
 * reads never sees its client's FIN or reset: such a connection, its per-address slot and its
 * place under --max-connections were held until the idle timeout (60 s), long after the client
 * had gone (found by test/hostile/fuzzed-input.test.ts: 144 of 240 mutated HTTP/2 connections
 * still counted open 60 s after their clients closed). RFC 9113 §5.4.1 has the endpoint that sent
 * such a GOAWAY close the connection; nothing in Node does.
 *
 * JavaScript cannot see that nghttp2 has ended a session, nor when, so a session that has gone
 * quiet is asked to read again (its TLS socket's handle, `readStart`) after 1, 2, 4, 8, 16, 32 s
 * of quiet, then every 32 s: one already reading is unchanged, an ended one now reads the client's close (Node then
 * destroys it, and its streams with it) and whatever else the client sends, which nghttp2 drops;
 * once asked, it reads on, and sees its client leave whenever it does. Asked more than once a
 * quiet spell because nghttp2 may end a session already asked, on a frame that reaches no
 * JavaScript and so refreshes no activity (a header block it cannot decode after two quiet seconds
 * went unnoticed when each spell was asked once: seen in review); ended that way after q seconds
 * of quiet, it is asked again within another q (32 s at most), plus a look's second or two.
 * Not every second: `readStart` on a TLS socket costs about 1.5 µs, 15 ms a second over 10,000
 * idle sessions (measured), where the doubling asks each every 32 s once it has been long idle.
 * Streams count for nothing here: an ended session's streams can neither hear from their client
 * nor answer it, and held their requests to the regions until the tier deadline and the send
 * timeout had passed. A closing session is asked too: an ended one whose close (a drain's, the
 * idle timeout's) is waiting for its client would otherwise wait for the drain's end.
 *
 * Never asked: a session whose socket has bytes waiting to be written. Node stops reading one
 * whose write is backed up, and that pause is the only bound on what its client can make it hold:
 * made to read then, Node copies whatever the client sends behind DATA it cannot process yet,
 * without a limit (its pause flag stays set, so nothing stops the reading again until the write
 * is done). Asked once the write is done, it reads on its own anyway.
 *
 * Pure policy here, the sessions and the asking passed in: public-servers.ts gives both.
 */

/** How long a session must have been quiet to be asked, and how often each one is looked at. */
export const ENDED_SESSION_LOOK_MS = 1_000;
/**
 * A look is spread over this many ticks, each taking its share of the sessions: one pass over
 * 10,000 idle sessions took 3.5–4 ms of the event loop (measured), which a request arriving then
 * waits for.
 */
export const LOOK_SLICES = 4;
/**
 * The longest between two asks of a quiet session: the doubling stops here, so that under a long
 * `--http2-idle-timeout` (up to an hour) a session ended late in its quiet is still asked soon.
 */
export const MOST_BETWEEN_ASKS_MS = 32_000;

export interface EndedSessionsSource<S> {
  /** The sessions open now, in an array of the caller's that is not changed afterwards. */
  sessions(): readonly S[];
  /** When the session last read or wrote, on the clock `now()` reads; undefined once it is destroyed. */
  quietSince(session: S): number | undefined;
  /** Asks it to read again, unless its socket has bytes waiting to be written; whether it was asked. */
  readAgain(session: S): boolean;
}

/** When a session was last active, and how long it must be quiet before it is asked next. */
interface Asking {
  readonly since: number;
  nextQuietMs: number;
}

/** The looks: each session once a look (ENDED_SESSION_LOOK_MS), a slice of them at each tick. */
export class EndedSessionSweep<S extends object> {
  #timer: NodeJS.Timeout | undefined;
  readonly #asking = new WeakMap<S, Asking>();
  /** The sessions of the look under way, taken at its start; the next to look at. */
  #round: readonly S[] = [];
  #next = 0;

  constructor(
    private readonly source: EndedSessionsSource<S>,
    private readonly now: () => number = () => performance.now(),
  ) {}

  start(): void {
    this.#timer ??= setInterval(() => this.tick(), ENDED_SESSION_LOOK_MS / LOOK_SLICES).unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#round = [];
  }

  /** One tick: the next slice of the look under way (a new look begins once one is over); how many were asked. */
  tick(): number {
    if (this.#next >= this.#round.length) {
      this.#round = this.source.sessions();
      this.#next = 0;
    }
    const end = Math.min(this.#round.length, this.#next + Math.ceil(this.#round.length / LOOK_SLICES));
    const asked = this.lookAt(this.#round, this.#next, end);
    this.#next = end;
    if (end === this.#round.length) this.#round = []; // nothing held between looks
    return asked;
  }

  /** A whole look at once; how many were asked. */
  look(): number {
    const all = this.source.sessions();
    return this.lookAt(all, 0, all.length);
  }

  private lookAt(sessions: readonly S[], from: number, to: number): number {
    const now = this.now();
    let asked = 0;
    for (let i = from; i < to; i++) {
      const session = sessions[i]!;
      const since = this.source.quietSince(session);
      if (since === undefined) continue;
      const quietMs = now - since;
      if (quietMs < ENDED_SESSION_LOOK_MS) continue;
      let asking = this.#asking.get(session);
      if (asking === undefined || asking.since !== since) this.#asking.set(session, (asking = { since, nextQuietMs: ENDED_SESSION_LOOK_MS }));
      if (quietMs < asking.nextQuietMs) continue;
      // One whose writes are backed up is not asked, and is looked at again next time.
      if (!this.source.readAgain(session)) continue;
      asking.nextQuietMs = quietMs + Math.min(quietMs, MOST_BETWEEN_ASKS_MS);
      asked++;
    }
    return asked;
  }
}
