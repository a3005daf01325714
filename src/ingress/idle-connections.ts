/**
 * Which of a listener's connections carry nothing right now (idle-reclaim.ts closes some of them
 * when the listener nears `--max-connections`), read from Node's own bookkeeping so that no request
 * pays for it: the walk happens only near the cap.
 *
 * Node 20 internals relied on, each checked by test/ingress/idle-reclaim.test.ts:
 * - An HTTP/1 server's connection list (`Symbol(http.server.connections)`, what
 *   `closeIdleConnections()` uses): `idle()` gives the parsers between two requests, `active()`
 *   those with a request under way, a connection that has sent nothing yet included; each parser
 *   names its `socket`.
 * - A socket's or an HTTP/2 session's inactivity timer (`Symbol(timeout)`, refreshed by every read
 *   and write) keeps in `_idleStart` when it was last refreshed, on libuv's loop clock, which runs
 *   within milliseconds of `performance.now()`. Node sets it on a keep-alive connection once its
 *   answer ends, and the router on every HTTP/2 session (--http2-idle-timeout).
 * - An HTTP/2 session's state (`Symbol(state)`) holds its open streams in `streams`.
 * A Node without one of them gives no candidate of that kind: nothing is reclaimed, as before.
 */
import type { Http2Session } from 'node:http2';
import type { Socket } from 'node:net';
import type { ReclaimCandidate } from './idle-reclaim.js';

interface Parser {
  readonly socket?: Socket | null;
}

interface ConnectionList {
  idle(): Parser[];
  active(): Parser[];
}

interface AnswerOnSocket {
  readonly _httpMessage?: object | null;
}

/** What the router knows of an HTTP/1 connection that Node does not. */
export interface Http1Facts {
  /** When it was accepted (performance.now()); undefined: not one of the router's connections. */
  acceptedAtMs(socket: Socket): number | undefined;
  /** Whether no byte of HTTP has come on it yet. */
  sentNothing(socket: Socket): boolean;
}

const symbolCache = new Map<string, symbol | null>();

/** The symbol Node keys a private field with, found by its description on `object` (once per description). */
function privateKey(object: object, description: string): symbol | undefined {
  const known = symbolCache.get(description);
  if (known !== undefined) return known ?? undefined;
  const found = Object.getOwnPropertySymbols(object).find((s) => s.description === description);
  if (found !== undefined) symbolCache.set(description, found);
  return found;
}

function privateField<T>(object: object, description: string): T | undefined {
  const key = privateKey(object, description);
  return key === undefined ? undefined : ((object as Record<symbol, T | undefined>)[key] ?? undefined);
}

/** When `object` (a socket, an HTTP/2 session) last read or wrote, by its inactivity timer; undefined without one. */
function lastActivityMs(object: object): number | undefined {
  const timer = privateField<{ _idleStart?: unknown } | null>(object, 'timeout');
  const start = timer?._idleStart;
  return typeof start === 'number' ? start : undefined;
}

/**
 * An HTTP/1 connection that can go without losing anything: no answer in progress or still in its
 * buffer, not closing already (a lingering one has ended its side), its next request not begun.
 */
function quiet(socket: Socket): boolean {
  return !socket.destroyed && socket.writable && socket.writableLength === 0 && ((socket as Socket & AnswerOnSocket)._httpMessage ?? null) === null;
}

/**
 * The HTTP/1 connections of `server` (http, or the HTTPS one's HTTP/1.1 side) carrying nothing:
 * between requests, or connected without sending a byte. A connection in the middle of a request's
 * head is not one (its head timeout bounds it), nor one whose TLS handshake is under way.
 */
export function idleHttp1Connections(server: object, facts: Http1Facts): ReclaimCandidate[] {
  const list = privateField<ConnectionList>(server, 'http.server.connections');
  if (list === undefined || typeof list.idle !== 'function') return [];
  const found: ReclaimCandidate[] = [];
  for (const parser of list.idle()) {
    const socket = parser.socket;
    if (socket === null || socket === undefined || !quiet(socket)) continue;
    const since = lastActivityMs(socket) ?? facts.acceptedAtMs(socket);
    if (since !== undefined) found.push(closing(socket, since));
  }
  for (const parser of list.active()) {
    const socket = parser.socket;
    if (socket === null || socket === undefined || !quiet(socket) || !facts.sentNothing(socket)) continue;
    const since = facts.acceptedAtMs(socket);
    if (since !== undefined) found.push(closing(socket, since));
  }
  return found;
}

function closing(socket: Socket, idleSinceMs: number): ReclaimCandidate {
  return { idleSinceMs, reclaim: () => socket.destroy() };
}

/**
 * The HTTP/2 sessions without a stream (a WebSocket over HTTP/2 is one: `holdsTunnels` need not be
 * asked), not closing already. Closed with a GOAWAY: a request the client sent meanwhile is one
 * the GOAWAY tells it was not processed, which it may send again on a new connection.
 */
export function idleHttp2Sessions(sessions: Iterable<Http2Session>): ReclaimCandidate[] {
  const found: ReclaimCandidate[] = [];
  for (const session of sessions) {
    if (session.closed || session.destroyed) continue;
    const streams = privateField<{ streams?: { size?: unknown } }>(session, 'state')?.streams?.size;
    if (streams !== 0) continue;
    const since = lastActivityMs(session);
    if (since !== undefined) found.push({ idleSinceMs: since, reclaim: () => session.close() });
  }
  return found;
}
