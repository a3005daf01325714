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
 * JavaScript cannot see that nghttp2 has ended a session, nor when, so at each look every session
 * quiet for a second is asked to read again (its TLS socket's handle, `readStart`): one already
 * reading is unchanged (the call is a no-op), an ended one now reads the client's close (Node then
 * destroys it, and its streams with it) and whatever else the client sends, which nghttp2 drops.
 * Asked at every look, not once per quiet spell: nghttp2 may end a session already asked, on a
 * frame that reaches no JavaScript and so refreshes no activity (a header block it cannot decode
 * after two quiet seconds went unnoticed when each spell was asked once: seen in review).
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

/** How often the sessions are looked at, and how long one must have been quiet to be asked. */
export const ENDED_SESSION_LOOK_MS = 1_000;

export interface EndedSessionsSource<S> {
  /** The sessions open now. */
  sessions(): Iterable<S>;
  /** When the session last read or wrote, on the clock `now()` reads; undefined once it is destroyed. */
  quietSince(session: S): number | undefined;
  /** Asks it to read again, unless its socket has bytes waiting to be written; whether it was asked. */
  readAgain(session: S): boolean;
}

/** The looks, one a second. */
export class EndedSessionSweep<S> {
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly source: EndedSessionsSource<S>,
    private readonly now: () => number = () => performance.now(),
  ) {}

  start(): void {
    this.#timer ??= setInterval(() => this.look(), ENDED_SESSION_LOOK_MS).unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One look over every session; how many were asked to read again. */
  look(): number {
    const quietBefore = this.now() - ENDED_SESSION_LOOK_MS;
    let asked = 0;
    for (const session of this.source.sessions()) {
      const since = this.source.quietSince(session);
      if (since === undefined || since > quietBefore) continue;
      if (this.source.readAgain(session)) asked++;
    }
    return asked;
  }
}
