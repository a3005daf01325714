/**
 * HTTP/2 rapid-reset defence (CVE-2023-44487): a client that opens streams and resets them at
 * once makes the server do the work of each request while the client pays almost nothing, and
 * the concurrent-stream limit never trips because every stream is already gone. Like Envoy's
 * premature-reset check, a connection whose streams are mostly reset by the client, once it has
 * opened enough of them to judge, is told GOAWAY (ENHANCE_YOUR_CALM) and closed.
 * It judges whole connections only; it never touches a stream that completed normally.
 * A stream the router refused because the client's address had too many requests in progress
 * (429) counts like a reset, when the connection itself holds at least half of what the address is
 * allowed: a client that opens streams faster than it is allowed to have them is flooding as surely
 * as one that resets them (reportRefusedStream). A connection refused because others hold the
 * address's allowance (other hosts behind one NAT address or in one IPv6 /64) is not judged for it,
 * nor a trusted proxy's connection, whose streams are many clients' (sharedByClients).
 * A WebSocket tunnel (RFC 8441) that was answered and then reset by its client does not count
 * (reportEstablishedTunnel): resetting is how a client drops a WebSocket it no longer wants.
 */
import { constants, type Http2Session, type ServerHttp2Stream } from 'node:http2';
import { whenAborted, whenClosed } from './http2-stream-hooks.js';
import type { AddressResets } from './reset-tally.js';

export interface ResetFloodOptions {
  /**
   * New streams one connection may open within one turn of the event loop (default 256, twice the
   * concurrent-stream limit, as nginx bounds it): more means the client opens streams faster than
   * any of them could be served, and each costs the router a request's work.
   */
  readonly maxStreamsPerTurn?: number;
  /** Streams a connection must have opened before it is judged (default 100). */
  readonly minStreams?: number;
  /** Share of those the client may have reset (default 0.5). */
  readonly maxResetShare?: number;
  /**
   * The client address's streams and resets over its recent connections (reset-tally.ts), judged
   * by the same rule as the connection's own: a client that opens a new connection before one is
   * judged is judged all the same. Absent for a trusted proxy, which carries many clients.
   */
  readonly address?: AddressResets;
  /**
   * The connection carries many clients (a trusted proxy's): its 429s are not counted as resets.
   * The allowance they are refused for is each forwarded client's, while the connection holds
   * everyone's streams, so one client past its own allowance made the whole connection look like
   * a flood, and its GOAWAY cut every other client's requests on it (seen in review). Resets still
   * count.
   */
  readonly sharedByClients?: boolean;
  /** Told once when a connection is closed for it (logs, metrics). */
  readonly onFlood?: (streams: number, resets: number) => void;
}

/** The guard's hooks per session, for the request handler's quota decided elsewhere. */
interface QuotaHooks {
  /** A stream took a slot of the address's quota: it holds it until it closes. */
  admitted(stream: ServerHttp2Stream): void;
  /** A stream was refused for the address's quota of `limit` requests in progress. */
  refused(limit: number): void;
}
const quotaHooks = new WeakMap<Http2Session, QuotaHooks>();

/**
 * Streams that became WebSocket tunnels (RFC 8441): a client that closes one by resetting it has
 * had its answer and held the stream as long as it liked, which is not a rapid reset. A page that
 * opens and drops WebSockets on one connection (reconnecting, navigating) must not be judged a flood.
 */
const tunnels = new WeakSet<ServerHttp2Stream>();

/**
 * Streams the router reset itself (an answer cut on a failure or past its deadline, a body
 * refused): not the client's resets. Told by the stream, not by the reset's code: skipping every
 * INTERNAL_ERROR, the code of the router's own cuts, let a client that resets with it flood
 * without ever being counted (seen in review: 2,700 streams, no GOAWAY, no penalty).
 */
const routerResets = new WeakSet<ServerHttp2Stream>();

/** The router is about to reset `stream` itself (http2-stream-pair.ts). */
export function reportRouterReset(stream: ServerHttp2Stream): void {
  routerResets.add(stream);
}

/** Tells the guard that `stream` is an established tunnel: its reset does not count. */
export function reportEstablishedTunnel(stream: ServerHttp2Stream): void {
  tunnels.add(stream);
}

/** Tells the stream's guard that it took a slot of its address's quota. */
export function reportAdmittedStream(stream: ServerHttp2Stream): void {
  const session = stream.session;
  if (session !== undefined) quotaHooks.get(session)?.admitted(stream);
}

/** Tells the session's guard that one of its streams was refused for the address's quota of `limit` requests in progress. */
export function reportRefusedStream(session: Http2Session | undefined, limit: number): void {
  if (session !== undefined) quotaHooks.get(session)?.refused(limit);
}

export function guardAgainstResetFloods(session: Http2Session, options: ResetFloodOptions = {}): void {
  const minStreams = options.minStreams ?? 100;
  const maxShare = options.maxResetShare ?? 0.5;
  const maxPerTurn = options.maxStreamsPerTurn ?? 256;
  let streams = 0;
  /** Streams of this connection holding a slot of the address's quota (until they close). */
  let holding = 0;
  let resets = 0;
  let thisTurn = 0;
  let tripped = false;
  // When the connection itself dies, Node aborts every open stream (CANCEL) before it marks the
  // session closed: only the socket says so by then.
  const over = () => tripped || session.closed || session.destroyed || session.socket?.destroyed !== false;
  const trip = () => {
    tripped = true;
    options.onFlood?.(streams, resets);
    // GOAWAY makes nghttp2 refuse the streams it has not handed over yet. The session is destroyed
    // on the next turn: destroying it from inside nghttp2's own callbacks (a 'stream' event) can
    // abort the process.
    session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM);
    setImmediate(() => session.destroy());
  };
  const newTurn = () => (thisTurn = 0);
  // 'aborted': the stream ended before its response did. A connection that is going away aborts
  // all its streams at once (not the client's doing stream by stream), and the router's own cuts
  // (routerResets) are not the client's; neither counts. Whatever code the client resets with
  // (CANCEL, NO_ERROR or INTERNAL_ERROR to slip past a naive check) does.
  const address = options.address;
  const judge = () => {
    if (streams >= minStreams && resets > streams * maxShare) trip();
    else if (address !== undefined && address.streams >= minStreams && address.resets > address.streams * maxShare) trip();
  };
  // The reset count and the quota slot's return are jobs on the stream's one 'aborted' and one
  // 'close' listener, shared with the stream pair's (http2-stream-hooks.ts): as listeners of their
  // own they cost about 1,000 instructions each a request. The count still runs before the pair's
  // destroy of an aborted stream, as when it was a listener registered first.
  const onStreamAborted = (stream: ServerHttp2Stream) => {
    if (over() || routerResets.has(stream) || tunnels.has(stream)) return;
    resets++;
    if (address !== undefined) address.resets++;
    judge();
  };
  const onHeldStreamClosed = () => holding--;
  if (options.sharedByClients !== true) quotaHooks.set(session, {
    admitted(stream) {
      holding++;
      whenClosed(stream, onHeldStreamClosed);
    },
    refused(limit) {
      if (over() || holding * 2 < limit) return;
      resets++;
      judge();
    },
  });
  // Prepended: it must run before the server turns the stream into a request.
  session.prependListener('stream', (stream: ServerHttp2Stream) => {
    if (over()) return;
    streams++;
    if (address !== undefined) address.streams++;
    if (thisTurn++ === 0) setImmediate(newTurn);
    whenAborted(stream, onStreamAborted);
    if (thisTurn > maxPerTurn) trip();
  });
}

/**
 * The session errors by which Node and nghttp2 close a connection for flooding with frames that
 * cost the client a few bytes and the server a reply or a callback each. nghttp2 ends the session
 * itself; the router only learns why from the error, and treats the address as it treats a rapid
 * reset (penalty box, its other connections closed).
 * - NGHTTP2_ERR_FLOODED (-904): replies queued and never read — a PING or SETTINGS flood
 *   (CVE-2019-9512, CVE-2019-9515), or a peer that never reads what it provokes;
 * - NGHTTP2_ERR_TOO_MANY_CONTINUATIONS (-905): one header block sent as endless CONTINUATION
 *   frames (the 2024 CONTINUATION flood, CVE-2024-28182);
 * - ERR_HTTP2_TOO_MANY_INVALID_FRAMES: more than `maxSessionInvalidFrames` frames Node judged
 *   invalid, such as empty DATA frames that do not end the stream (CVE-2019-9518).
 */
export type FrameFloodKind = 'reply_flood' | 'continuation_flood' | 'invalid_frames';

export function frameFloodOf(err: unknown): FrameFloodKind | null {
  const { errno, code } = (err ?? {}) as { errno?: unknown; code?: unknown };
  if (code === 'ERR_HTTP2_TOO_MANY_INVALID_FRAMES') return 'invalid_frames';
  if (errno === -904) return 'reply_flood';
  if (errno === -905) return 'continuation_flood';
  return null;
}

