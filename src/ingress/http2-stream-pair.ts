/**
 * An HTTP/2 stream seen as the request and response the edge handler works with, without Node's
 * compatibility layer. `Http2ServerRequest` and `Http2ServerResponse` are full Readable and
 * Writable streams wired to the HTTP/2 stream with about ten listeners each; a proxy that reads
 * headers and forwards bytes needs none of it. Measured with the bare Node proxy in front of the
 * same origin (h2load, 10 connections × 5 streams): about 75 µs of CPU per request through the
 * stream API against about 100 µs through the compatibility layer.
 *
 * Only what the edge handler, admission and Exchange use is here; what the compatibility layer
 * did for free that still matters is done by `serveHttp2Stream`: an 'error' listener on every
 * stream (an HTTP/2 stream error must not take the process down), 417 for an expectation other
 * than 100-continue, and 405 for CONNECT. The 100 itself is the exchange's (writeContinue).
 */
import { constants, type Http2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { destroyWhenAborted, whenClosed } from './http2-stream-hooks.js';
import { watchStranded } from './http2-stranded-streams.js';
import { peerOfSocket } from './proxy-protocol/listener.js';
import { reportRouterReset } from './reset-flood-guard.js';

/** What a request needs to know of its connection, read once per session while it is sure to work. */
interface ConnectionFacts {
  /** The peer address (PROXY protocol's announced source when there was one), unmapped. */
  readonly peer: string;
  /** The SNI name the client asked for ('' when none). */
  readonly servername: string;
}
const FACTS = Symbol('edge.connectionFacts');
type FactfulSession = Http2Session & { [FACTS]?: ConnectionFacts };

/**
 * A session's `socket` is a proxy that throws (ERR_HTTP2_SOCKET_UNBOUND) on any read once the
 * session has let go of its socket; a stream still waiting its turn when its connection died
 * would then throw from wherever it asked. So the facts are read when the first stream arrives
 * (the socket is bound: the stream's HEADERS came through it) and kept on the session; later
 * streams of the connection skip the proxy's traps altogether.
 */
function factsOf(session: FactfulSession | undefined): ConnectionFacts {
  if (session === undefined) return NO_FACTS;
  let facts = session[FACTS];
  if (facts === undefined) {
    try {
      const socket = session.socket as unknown as TLSSocket;
      const servername = socket.servername;
      facts = { peer: peerOfSocket(socket), servername: typeof servername === 'string' ? servername : '' };
    } catch {
      facts = NO_FACTS; // unbound already: the stream is as good as gone, and is logged as such
    }
    session[FACTS] = facts;
  }
  return facts;
}
const NO_FACTS: ConnectionFacts = { peer: '', servername: '' };

export class Http2StreamRequest {
  readonly httpVersionMajor = 2;
  readonly httpVersionMinor = 0;
  readonly httpVersion = '2.0';
  readonly method: string;
  readonly url: string;
  /**
   * The connection's socket, a proxy that throws once the session lets go of it: read `peer` and
   * `servername` instead. A stream's own end is `stream`.
   */
  readonly socket: Socket;
  /** The connection's peer address, unmapped (PROXY protocol's source when there was one). */
  readonly peer: string;
  /** The SNI name of the connection ('' when none). */
  readonly servername: string;

  constructor(
    readonly stream: ServerHttp2Stream,
    readonly headers: IncomingHttpHeaders,
    /** Flat [name, value, …], pseudo-headers included, as Node hands them over. */
    readonly rawHeaders: string[],
  ) {
    this.method = headers[':method'] ?? 'GET';
    this.url = headers[':path'] ?? '';
    this.socket = stream.session?.socket as Socket;
    const facts = factsOf(stream.session);
    this.peer = facts.peer;
    this.servername = facts.servername;
  }

  /** The body was read to its end (or there was none). */
  get complete(): boolean {
    return this.stream.readableEnded;
  }

  /** The client reset the stream before its body ended. */
  get aborted(): boolean {
    return this.stream.aborted;
  }

  destroy(error?: Error): void {
    reportRouterReset(this.stream);
    this.stream.destroy(error);
  }

  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    return this.stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }
}

export class Http2StreamResponse {
  /** Set once a head went out (or could no longer go out: the stream is gone). */
  private responded = false;
  /** The region's trailer fields, sent when the stream asks for them. */
  private trailers: OutgoingHttpHeaders | undefined;
  /** The head said trailers follow the body: the answer is out only once they are (dropUnreadBody). */
  private trailersDue = false;
  /** The answer ended with its request body unread, and trailers still due: sendTrailers drops the body after them. */
  private dropAfterTrailers = false;

  constructor(
    readonly stream: ServerHttp2Stream,
    /**
     * The client sent `TE: trailers` (RFC 9110 §10.1.4: it will not throw trailer fields away;
     * gRPC clients do). Only then does the head wait for trailers: waiting costs every response an
     * extra frame to end the stream, and a client that did not ask may drop them anyway.
     */
    private readonly acceptsTrailers = false,
    /** How long an ended answer may wait for its client to take the rest (0 = no limit); see limitUnsent. */
    private readonly unsentTimeoutMs = 0,
  ) {}

  get headersSent(): boolean {
    return this.responded || this.stream.headersSent;
  }

  get writableEnded(): boolean {
    return this.stream.writableEnded;
  }

  get writableFinished(): boolean {
    return this.stream.writableFinished;
  }

  /** A stream that closed, or was reset, takes nothing more: its writes are dropped, not thrown. */
  private get gone(): boolean {
    return this.stream.destroyed || this.stream.closed;
  }

  /**
   * `100 Continue` for a client that sent `Expect: 100-continue`, when its body is wanted (the
   * exchange's begin): as over HTTP/1.1, a request refused before that (413 by Content-Length,
   * 421, 429, …) is answered without it. Node's http2 core never sends a 100 on its own (only its
   * compatibility layer did, which the stream API does not go through).
   */
  writeContinue(): void {
    if (this.headersSent || this.gone) return;
    this.stream.additionalHeaders({ ':status': 100 });
  }

  /** `103 Early Hints` with these links: an interim HEADERS frame, before the answer's. */
  writeEarlyHints(hints: { link: string[] }): void {
    if (this.headersSent || this.gone) return;
    this.stream.additionalHeaders({ ':status': 103, link: hints.link });
  }

  /** Headers as an object, or flat [name, value, …] (lower-case names; a repeated name becomes a list). */
  writeHead(status: number, headers: OutgoingHttpHeaders | readonly string[]): this {
    if (this.headersSent) return this;
    if (this.gone) {
      this.responded = true;
      return this;
    }
    // Node ends the stream itself after the head of a HEAD answer, a 204, a 205 or a 304. Marked
    // sent only once `respond` took the head: a head it refused can still be followed by an error answer.
    const head = isFlat(headers) ? headersObjectOf(status, headers) : { ...headers, ':status': status };
    if (this.acceptsTrailers) {
      this.stream.respond(head, WAIT_FOR_TRAILERS);
      // After `respond` took the head: a head it refused is followed by an error answer, whose own
      // listener must be the only one ('wantTrailers' is never emitted synchronously). A head that
      // ended the stream (HEAD, 204, 304) asks for no trailers.
      this.trailersDue = !this.stream.writableEnded;
      this.stream.once('wantTrailers', () => this.sendTrailers());
    } else {
      this.stream.respond(head);
    }
    this.responded = true;
    return this;
  }

  /** Kept for the end of the stream; dropped unless the client accepts trailers. */
  addTrailers(fields: Record<string, string>): void {
    if (this.acceptsTrailers) this.trailers = fields;
  }

  /** After the last DATA frame: the region's trailers, or none (Node then ends the stream with an empty DATA frame). */
  private sendTrailers(): void {
    this.trailersDue = false;
    // Runs from an event: a throw here would take the process down.
    try {
      this.stream.sendTrailers(this.trailers ?? {});
    } catch {
      // Fields node:http2 refuses to send: the stream still ends, without them (or, failing that, is reset).
      try {
        this.stream.sendTrailers({});
      } catch {
        this.stream.destroy();
      }
    }
    // 'wantTrailers' comes from inside nghttp2's send loop, after 'finish': a reset made before
    // that loop has written the trailers out overtakes them (nghttp2 sends RST_STREAM first).
    if (this.dropAfterTrailers) setImmediate(dropIfUnread.bind(this.stream));
  }

  write(chunk: Buffer): boolean {
    if (this.gone || this.stream.writableEnded) return true;
    return this.stream.write(chunk);
  }

  end(body?: string | Buffer): this {
    if (!this.headersSent) this.writeHead(200, {});
    // A head that ends the stream (HEAD, 204, 205, 304) has already ended its writable side.
    if (this.gone) return this;
    if (!this.stream.writableEnded) {
      if (body === undefined) this.stream.end();
      else this.stream.end(body);
      this.limitUnsent();
    }
    this.dropUnreadBody();
    return this;
  }

  /**
   * A complete answer ends the request too (RFC 9113 §8.1: the server may then reset the stream
   * with NO_ERROR). A request body not read to its end when the answer has gone out (a function
   * that answered an upload early, an error answer mid-body) is nobody's any more, yet Node keeps
   * it: a client still sending kept the stream open for as long as it liked (up to a window of
   * body held, no request counted for it, a drain's GOAWAY waiting on it), and one whose body had
   * all arrived left a stream closed on the wire but never destroyed, its unread body held until
   * the connection went (seen in review). Destroyed once the answer is out, the stream sends its
   * last frames, then RST_STREAM NO_ERROR if still open, and lets go of what it held. A request
   * that ended with its HEADERS has no body to leave (Node closes its stream itself).
   */
  private dropUnreadBody(): void {
    const stream = this.stream;
    if (stream.endAfterHeaders || stream.destroyed) return;
    if (this.trailersDue) {
      this.dropAfterTrailers = true;
      // A client's reset before 'wantTrailers' leaves the stream undestroyed, its body unread.
      watchStranded(stream);
    }
    else if (stream.writableFinished) dropIfUnread.call(stream);
    else stream.once('finish', dropIfUnread);
  }

  /**
   * Ended is not delivered: what the stream's window did not let out yet waits in the router. An
   * answer smaller than the write buffer never pushes back, so whoever ended it (an exchange,
   * whose send timeout watches backpressure, or an error answer) is already done with it, and a
   * client that never opens its window kept the stream and the rest of the answer for as long as
   * it kept the connection (the idle timeout only asks such a session to close). The stream's own
   * inactivity timer, refreshed by every write that leaves, bounds that wait; a stream that
   * closes clears it (finished is not enough: see armUnsentLimits).
   *
   * Armed a turn later, and only for a stream still open then: nghttp2 sends what an ended answer
   * holds within the turn (its write runs from a native immediate, before the JavaScript ones), so
   * almost every stream has closed by then and needs no timer. A timer per stream
   * cost about 4,500 instructions a request (setStreamTimeout's bound function, Timeout and
   * 'timeout' listener, their refreshes and clearing; docs/performance-notes.md). The limit then
   * counts from the turn after the end, at most one turn later than from the end itself.
   */
  private limitUnsent(): void {
    if (this.unsentTimeoutMs > 0 && !this.stream.closed && !this.gone) limitUnsentAfterTurn(this.stream, this.unsentTimeoutMs);
  }

  /**
   * 'socket' is HTTP/1's (a pipelined response waiting its turn): it never comes here.
   *
   * Whoever waits for 'close' has the stream destroyed when it aborts. A stream the client reset
   * while writes were held back (its window full, it had stopped reading) is aborted but not
   * closed: Node keeps it for the data it can no longer send, and its 'close' waits for a 'finish'
   * that never comes. With RST_STREAM CANCEL it closes anyway; with NO_ERROR (a client saying it
   * has read enough) it did not, and the exchange held its upstream request, its gate slot and its
   * client's quota until the send timeout, then blamed that (seen in review). Destroyed on
   * 'aborted', it closes now, and whoever waits for 'close' learns the client left. Both jobs ride
   * on the stream's one 'aborted' and one 'close' listener, shared with the flood guard's
   * (http2-stream-hooks.ts): a listener of their own each cost about 1,000 instructions a request.
   */
  once(event: 'drain' | 'close' | 'socket', listener: () => void): this {
    if (event === 'socket') return this;
    if (event === 'close') {
      destroyWhenAborted(this.stream);
      whenClosed(this.stream, listener);
    } else this.stream.once(event, listener);
    return this;
  }

  destroy(error?: Error): void {
    reportRouterReset(this.stream);
    this.stream.destroy(error);
  }
}

function isFlat(headers: OutgoingHttpHeaders | readonly string[]): headers is readonly string[] {
  return Array.isArray(headers);
}

/**
 * node:http2's `respond` takes an object: flat pairs folded into one, repeats into lists — except
 * for the fields HTTP/2 allows once (Node refuses a list of them, and the stream with it): there
 * the first value stands, as most HTTP/1 clients would read a repeated one anyway.
 */
export function headersObjectOf(status: number, flat: readonly string[]): OutgoingHttpHeaders {
  const out: Record<string, string | string[] | number> = { ':status': status };
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i]!;
    const value = flat[i + 1]!;
    // Own properties only: a field named `constructor` found Object's and became "function
    // Object() { [native code] }, a", and one named `__proto__` set the prototype (and was lost).
    const earlier = Object.hasOwn(out, name) ? out[name] : undefined;
    if (earlier === undefined) {
      if (name === '__proto__') Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
      else out[name] = value;
    } else if (SINGLE_VALUE_FIELDS.has(name)) continue;
    else if (Array.isArray(earlier)) earlier.push(value);
    else out[name] = [String(earlier), value];
  }
  return out;
}

/** The response fields node:http2 accepts once only (its `kSingleValueHeaders`, response side). */
const SINGLE_VALUE_FIELDS = new Set([
  'access-control-allow-credentials',
  'access-control-max-age',
  'access-control-request-method',
  'age',
  'authorization',
  'content-encoding',
  'content-language',
  'content-length',
  'content-location',
  'content-md5',
  'content-range',
  'content-type',
  'date',
  'dnt',
  'etag',
  'expires',
  'from',
  'host',
  'if-match',
  'if-modified-since',
  'if-none-match',
  'if-range',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'range',
  'referer',
  'retry-after',
  'tk',
  'upgrade-insecure-requests',
  'user-agent',
  'x-content-type-options',
]);

const ignore = () => undefined;
const WAIT_FOR_TRAILERS = Object.freeze({ waitForTrailers: true });

/**
 * One HTTP/2 stream to `handle`, as the compatibility layer would have delivered it, except
 * CONNECT: an extended CONNECT (RFC 8441: it names a `:protocol`) goes to `connect` when the
 * listener offers it (405 otherwise); a plain one goes to `handle`, whose admission refuses it (405, logged, as an
 * HTTP/1 CONNECT is: nothing here tunnels TCP). `Expect:
 * 100-continue` is left to the handler (answered once the body is wanted: writeContinue), any other
 * expectation fails (417). Errors on the stream (a reset, a
 * protocol error) end it; the exchange learns of it from 'close', so they need no handling beyond
 * not being thrown.
 */
export function serveHttp2Stream(
  handle: (req: Http2StreamRequest, res: Http2StreamResponse) => void,
  connect: ((stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[]) => void) | undefined,
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  rawHeaders: string[],
  /** How long an ended answer may wait for the client to read the rest (--send-timeout; 0 = no limit). */
  unsentTimeoutMs = 0,
): void {
  stream.on('error', ignore);
  if (headers[':method'] === 'CONNECT' && headers[':protocol'] !== undefined) {
    // nghttp2 refuses a `:protocol` the listener did not announce, so without `connect` this is not expected.
    return connect === undefined ? refuse(stream, 405) : connect(stream, headers, rawHeaders);
  }
  handle(new Http2StreamRequest(stream, headers, rawHeaders), new Http2StreamResponse(stream, asksForTrailers(headers.te), unsentTimeoutMs));
}

/**
 * `TE: trailers`, the only TE an HTTP/2 request may carry (nghttp2 resets any other), in any case
 * (RFC 9110 §10.1.4: tokens are case-insensitive) and however often: `TE: Trailers` got no trailers.
 */
export function asksForTrailers(te: string | string[] | undefined): boolean {
  return typeof te === 'string' && TRAILERS_ONLY.test(te);
}
const TRAILERS_ONLY = /^[ \t]*trailers[ \t]*(?:,[ \t]*trailers[ \t]*)*$/i;

function refuse(stream: ServerHttp2Stream, status: number): void {
  if (stream.destroyed || stream.closed) return;
  stream.respond({ ':status': status }, { endStream: true });
}

/** The answer is out: a request body not read to its end goes with the stream (dropUnreadBody). */
function dropIfUnread(this: ServerHttp2Stream): void {
  if (!this.destroyed && !this.readableEnded) this.destroy();
}

/**
 * Ended streams whose answer had not all gone out, with their limits, flat [stream, ms, …] in the
 * order they ended: looked at once per turn, however many streams ended in it (limitUnsent).
 */
let unsentThisTurn: Array<ServerHttp2Stream | number> = [];

function limitUnsentAfterTurn(stream: ServerHttp2Stream, timeoutMs: number): void {
  if (unsentThisTurn.length === 0) setImmediate(armUnsentLimits);
  unsentThisTurn.push(stream, timeoutMs);
}

/**
 * A stream that closed meanwhile needs no timer: its answer went, or the client closed it and it
 * can never send the rest, so it is destroyed (Node would not, http2-stranded-streams.ts). The
 * others get their timer, and are watched for a close that clears it. Finished is not closed:
 * 'finish' comes once the last bytes are handed to nghttp2, which holds back even an empty
 * END_STREAM frame (or the read that asks for trailers) while the stream's window is 0. A client
 * that let exactly the answer's bytes through and no more kept such a stream open, and with it its
 * session past the idle timeout's GOAWAY and its connection's places, for as long as it liked
 * (seen in review).
 */
function armUnsentLimits(): void {
  const batch = unsentThisTurn;
  unsentThisTurn = [];
  for (let i = 0; i < batch.length; i += 2) {
    const stream = batch[i] as ServerHttp2Stream;
    if (stream.destroyed) continue;
    if (stream.closed) {
      stream.destroy();
      continue;
    }
    stream.setTimeout(batch[i + 1] as number, cancelThisStream);
    watchStranded(stream);
  }
}

/**
 * RST_STREAM CANCEL: the client did not take the answer in time. Destroyed as well: `close` alone
 * waits for nghttp2 to send the reset, and a session nghttp2 has ended on its own (GOAWAY for a
 * connection error, such as DATA on a stream the client had closed) sends nothing more and tells
 * Node nothing, so the stream never closed and the idle timeout's graceful close of its session
 * waited for it for ever (seen in review). Node still sends the reset with CANCEL where it can.
 */
function cancelThisStream(this: ServerHttp2Stream): void {
  if (this.destroyed) return;
  this.close(constants.NGHTTP2_CANCEL);
  this.destroy();
}
