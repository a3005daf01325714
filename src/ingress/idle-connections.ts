/**
 * Which of a listener's connections carry nothing right now (idle-reclaim.ts closes some of them
 * when the listener nears `--max-connections`), read from Node's own bookkeeping so that no request
 * pays for it: the walk happens only near the cap.
 *
 * Node 20 internals relied on, each exercised by test/ingress/idle-connections.test.ts:
 * - An HTTP/1 server's connection list (`Symbol(http.server.connections)`, what
 *   `closeIdleConnections()` uses): `idle()` gives the parsers between two requests, `active()`
 *   those with a request under way, a connection that has sent nothing yet included; each parser
 *   names its `socket`. An upgraded (WebSocket) connection has left the list.
 * - A socket's or an HTTP/2 session's inactivity timer (`Symbol(timeout)`, refreshed by every read
 *   and write) keeps in `_idleStart` when it was last refreshed: libuv's loop time less the
 *   environment's timer base, which is taken a little before `performance.now()`'s origin and read
 *   at the start of a loop turn, so it runs behind `performance.now()` by a few milliseconds and a
 *   turn at most. Against the second of quiet asked of a connection that is immaterial, and it
 *   errs on the side of keeping one. Node sets it on a keep-alive connection once its answer ends,
 *   and the router on every HTTP/2 session (--http2-idle-timeout).
 * - An HTTP/2 session's state (`Symbol(state)`) holds its open streams in `streams` (a request
 *   waiting for its turn, http2-after-read.ts, and a WebSocket, extended-connect.ts, are streams).
 * - An HTTP/2 session's `socket` proxy passes `_handle` on: the TLS socket's handle, whose
 *   `readStart` has a session nghttp2 ended read its client's close, and whose `writeQueueSize`
 *   says whether its writes are backed up (readSessionAgain).
 * A Node without one of them gives no candidate of that kind: nothing is reclaimed, as before.
 */
import type { Http2Session } from 'node:http2';
import { Socket } from 'node:net';
import { privateField } from '../core/private-field.js';
import type { ReclaimCandidate } from './idle-reclaim.js';

/** A connection a listener may close to make room: an accepted (or TLS) socket, or an HTTP/2 session. */
export type IdleConnection = Socket | Http2Session;

interface Parser {
  readonly socket?: Socket | null;
}

interface ConnectionList {
  idle(): Parser[];
  active(): Parser[];
}

type HttpSocket = Socket & { readonly _httpMessage?: object | null; readonly parser?: object | null };

/** What the router knows of its connections that Node does not. */
export interface ConnectionFacts {
  /** When it was accepted (performance.now()); undefined: not one of the router's connections. */
  acceptedAtMs(socket: Socket): number | undefined;
  /** Whether no byte of HTTP has come on it yet (a PROXY protocol header, a TLS handshake are not HTTP). */
  sentNothing(socket: Socket): boolean;
}

/** When `object` (a socket, an HTTP/2 session) last read or wrote, by its inactivity timer; undefined without one. */
function lastActivityMs(object: object): number | undefined {
  const start = privateField<{ _idleStart?: unknown } | null>(object, 'timeout')?._idleStart;
  return typeof start === 'number' ? start : undefined;
}

/**
 * An HTTP/1 connection that can go without losing anything: no answer in progress (a request
 * whose body is still being read has one too) or still in its buffer, not closing already (a
 * lingering one has ended its side).
 */
function quiet(socket: HttpSocket): boolean {
  return !socket.destroyed && socket.writable && socket.writableLength === 0 && (socket._httpMessage ?? null) === null;
}

/**
 * The HTTP/1 connections of `server` (http, or the HTTPS one's HTTP/1.1 side) carrying nothing:
 * between requests, or through with their TLS handshake (or PROXY header) without a byte of HTTP
 * since. A connection in the middle of a request's head is not one (its head timeout bounds it).
 */
export function idleHttp1Connections(server: object, facts: ConnectionFacts, into: ReclaimCandidate<IdleConnection>[]): void {
  const list = privateField<ConnectionList>(server, 'http.server.connections');
  if (list === undefined || typeof list.idle !== 'function') return;
  for (const parser of list.idle()) {
    const socket = parser.socket;
    if (socket === null || socket === undefined || !quiet(socket)) continue;
    const since = lastActivityMs(socket) ?? facts.acceptedAtMs(socket);
    if (since !== undefined) into.push({ idleSinceMs: since, connection: socket });
  }
  for (const parser of list.active()) {
    const socket = parser.socket;
    if (socket === null || socket === undefined || !quiet(socket) || !facts.sentNothing(socket)) continue;
    const since = facts.acceptedAtMs(socket);
    if (since !== undefined) into.push({ idleSinceMs: since, connection: socket });
  }
}

/**
 * Accepted connections on which nothing at all has come (no TLS ClientHello, no PROXY protocol
 * header, no byte of HTTP) and that no HTTP parser holds (those are idleHttp1Connections'): what a
 * client that only connects leaves. One whose handshake has begun is not among them: the
 * handshake timeout bounds it.
 */
export function silentConnections(accepted: Iterable<Socket>, ofListener: object, facts: ConnectionFacts, into: ReclaimCandidate<IdleConnection>[]): void {
  for (const socket of accepted) {
    if (socket.bytesRead !== 0 || socket.destroyed || (socket as Socket & { server?: object }).server !== ofListener || ((socket as HttpSocket).parser ?? null) !== null) continue;
    const since = facts.acceptedAtMs(socket);
    if (since !== undefined) into.push({ idleSinceMs: since, connection: socket });
  }
}

/** The HTTP/2 sessions without a stream, not closing already. */
export function idleHttp2Sessions(sessions: Iterable<Http2Session>, into: ReclaimCandidate<IdleConnection>[]): void {
  for (const session of sessions) {
    const since = sessionIdleSince(session);
    if (since !== undefined) into.push({ idleSinceMs: since, connection: session });
  }
}

/** When an HTTP/2 session, closing or not, with streams or not, last read or wrote; undefined once it is destroyed. */
export function sessionQuietSince(session: Http2Session): number | undefined {
  return session.destroyed ? undefined : lastActivityMs(session);
}

/** When an HTTP/2 session without a stream, not closing already, last read or wrote; undefined for any other. */
function sessionIdleSince(session: Http2Session): number | undefined {
  if (session.closed || session.destroyed) return undefined;
  const streams = privateField<{ streams?: { size?: unknown } }>(session, 'state')?.streams?.size;
  return streams === 0 ? lastActivityMs(session) : undefined;
}

/** A TLS socket's handle, as an HTTP/2 session's socket proxy passes it on. */
interface TlsHandle {
  readonly writeQueueSize?: number;
  readStart?(): number;
}

/**
 * Each session's TLS handle, found once: through the session's socket proxy (a Proxy whose every
 * read is a trap) it cost about 1.2 µs a session, 12 ms a look over 10,000 idle ones (measured).
 */
const tlsHandles = new WeakMap<Http2Session, TlsHandle | null>();

function tlsHandleOf(session: Http2Session): TlsHandle | null {
  let handle = tlsHandles.get(session);
  if (handle === undefined) {
    try {
      handle = (session.socket as unknown as { _handle?: TlsHandle | null } | undefined)?._handle ?? null;
    } catch {
      handle = null; // the session lost its socket meanwhile (Node's proxy throws then)
    }
    tlsHandles.set(session, handle);
  }
  return handle;
}

/**
 * Has an HTTP/2 session's TLS socket read again (http2-ended-sessions.ts), unless bytes wait to be
 * written on it (then Node's pause of its reading is the client's backpressure, and the write's
 * end restarts it); whether it was asked. Through its handle, reached by the session's socket
 * proxy, which passes `_handle` on: `writeQueueSize` (what is left to write, kept by Node for
 * every stream handle) and `readStart`, a no-op on a socket already reading.
 */
export function readSessionAgain(session: Http2Session): boolean {
  const handle = tlsHandleOf(session);
  if (handle === null || handle.writeQueueSize !== 0 || typeof handle.readStart !== 'function') return false;
  handle.readStart();
  return true;
}

/**
 * Whether a connection a walk found idle is idle still, as it was: not closed, nothing begun on
 * it, and no byte read or written since (its inactivity timer not refreshed), so that nothing a
 * client sent since can be lost by closing it. One that came without a timer (it has sent no byte
 * of HTTP, or nothing at all) must still have sent nothing.
 */
export function stillIdle(candidate: ReclaimCandidate<IdleConnection>, facts: ConnectionFacts): boolean {
  const connection = candidate.connection;
  if (!(connection instanceof Socket)) return sessionIdleSince(connection) === candidate.idleSinceMs;
  const socket = connection as HttpSocket;
  if ((socket.parser ?? null) === null) return !socket.destroyed && socket.bytesRead === 0; // silent: no HTTP parser yet
  if (!quiet(socket)) return false;
  return facts.sentNothing(socket) || lastActivityMs(socket) === candidate.idleSinceMs;
}

/**
 * Closes an idle connection: a socket at once (nothing is owed on it), an HTTP/2 session with a
 * GOAWAY. Node then ends the socket (a FIN after the GOAWAY) and reads on until the client closes,
 * so a request the client sent meanwhile meets no reset that could take the GOAWAY from its
 * buffer: the client learns the request was not processed and may send it again elsewhere.
 */
export function closeIdle(connection: IdleConnection): void {
  reclaimed.add(connection);
  if (connection instanceof Socket) connection.destroy();
  else connection.close();
}

/** Connections closed to make room, until collected: counted as such, not as the client's failure. */
const reclaimed = new WeakSet<object>();

/**
 * Whether `socket` was closed to make room: a TLS connection that never sent its ClientHello, so
 * closed, fails its handshake, and was taken for one its client aborted.
 */
export function wasReclaimed(socket: object): boolean {
  return reclaimed.has(socket);
}
