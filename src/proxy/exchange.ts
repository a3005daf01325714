/**
 * One client request's journey through the regions: read (and, when small, buffer) the body,
 * wait for a slot at the first candidate's gate, stream the response back with backpressure, and
 * on a region failure move down the candidate list. Implements undici's core dispatch handler
 * directly (no stream objects, no Web Response, no parsed header object: upstream-control.ts): the
 * cheapest path undici offers, and it gives exact control over when a retry is still safe.
 *
 * Every resource the exchange holds — a queue place, a pool slot, an upstream connection — lives
 * only as long as its client: a socket close, an HTTP/2 stream reset, or the death of a pipelined
 * request's connection aborts the upstream request at once, and a request whose client left while
 * it was queued is never delivered. Nothing here owns a timer: the watchdog calls `check(now)`.
 *
 * Failover rule: a region that refuses/resets before answering, answers 502/503/504 itself, or
 * could not give a slot in time, is followed by the next candidate — for any method while nothing
 * was sent to it, for idempotent methods whose whole body was buffered otherwise; at most
 * `maxAttempts`; never back to a region already tried; each retry of a region that failed must be
 * granted by the retry budget.
 *
 * Cold-start hedging (a function's opt-in, replayable requests only): when routing says the pick
 * must cold-start while another region has an idle warm container, a second copy goes there if
 * the first has not answered after `hedge.afterMs`. The first answer wins and the other is
 * cancelled; the hedge takes a free gate slot only (it never queues) and a retry-budget token.
 */
import type { Dispatcher } from 'undici';
import { RESPONSE_DEADLINE, type RegionId, type RequestOutcome } from '../core/types.js';
import { monotonicNow } from '../core/monotonic-clock.js';
import type { UpstreamHeaders } from './headers.js';
import { downstreamResponseHeaders, downstreamTrailers, earlyHintLinks, foreignTransferCoding } from './headers.js';
import { tenantOfFailure, type OutlierDetector, type Ejection } from './outlier-detector.js';
import { UPSTREAM_SERVERNAME, type OrchestratorDispatchOptions, type UpstreamPools } from './pools.js';
import { ranLate, type Watched } from './exchange-watchdog.js';
import type { GateWaiter, RegionGates, TurnAway } from './region-gate.js';
import type { RetryBudget } from './retry-budget.js';
import { answeredByContainer, bodilessAnswerWhole, classifyAttemptError, classifyUpstreamError, isBodiless, isRetryableStatus, type UpstreamErrorCode } from './upstream-error.js';
import { HEDGE_LOST, HedgeLeg, type HedgeOwner } from './hedge-leg.js';
import { board, closesAfter, closingByRouter, type ConnectionRider, type RiddenSocket, type RouterAnswer, type Riders } from './connection-riders.js';
import { UpstreamControl } from './upstream-control.js';
import { serverTimingValue } from './server-timing.js';
import { applyStrictTransport, type StrictTransportPolicy } from './strict-transport.js';
import { confineCookies } from './cookie-scope.js';

/** The parts of Node's IncomingMessage / Http2ServerRequest the proxy uses. */
export interface ClientRequest extends AsyncIterable<Buffer> {
  readonly method?: string | undefined;
  /** The connection (HTTP/1) — its death ends every request it carried. */
  readonly socket: ClientSocket | null;
  /**
   * The client went away mid-request. An HTTP/2 request body whose stream was reset or whose
   * connection died ends like a complete one; only this tells them apart.
   */
  readonly aborted?: boolean;
  /** The body was read to its end (HTTP/1: by Node's parser), or there was none. */
  readonly complete?: boolean;
  destroy(error?: Error): unknown;
}

export type ClientSocket = RiddenSocket;

/** The parts of Node's ServerResponse / Http2ServerResponse the proxy uses. */
export interface ClientResponse {
  /**
   * HTTP/1: null while this response waits behind an earlier one on a pipelined connection;
   * Node assigns the connection (and emits 'socket') when the earlier one has finished.
   */
  readonly socket?: unknown;
  readonly headersSent: boolean;
  readonly writableEnded: boolean;
  readonly writableFinished: boolean;
  /** HTTP/1: false makes the head say `Connection: close`, and Node close the connection after the answer. */
  shouldKeepAlive?: boolean;
  /**
   * HTTP/1 (Node's own flag): the connection closes after this answer. Set as the head is written
   * when it says `Connection: close`, or by the drain on an answer already streaming (public-servers.ts).
   */
  readonly _last?: boolean;
  /** Headers flat, [name, value, …] (a name may repeat: each pair is one header line). */
  writeHead(status: number, headers: string[]): unknown;
  write(chunk: Buffer): boolean;
  end(): unknown;
  /** `100 Continue` (an interim HEADERS frame over HTTP/2), for a client that waits for it before sending its body (Expect: 100-continue). */
  writeContinue?(): unknown;
  /** `103 Early Hints` with these links (an interim HEADERS frame over HTTP/2); HTTP/1 may throw on a Link it cannot write. */
  writeEarlyHints?(hints: { link: string[] }): unknown;
  /** Trailer fields sent after the body (HTTP/1.1: only on a chunked response; HTTP/2: only when the client sent `TE: trailers`). */
  addTrailers(fields: Record<string, string>): unknown;
  once(event: 'drain' | 'close' | 'socket', listener: () => void): unknown;
  destroy(error?: Error): unknown;
}

/** Limits on what a client may make the router hold (nginx's client_body_timeout and send_timeout). */
export interface ClientPaceLimits {
  /** Longest pause between two body chunks → 408. */
  readonly bodyIdleTimeoutMs: number;
  /** Slowest average body rate, judged once the body has been arriving for `bodyIdleTimeoutMs` → 408 (0 = no minimum). */
  readonly bodyMinBytesPerSecond: number;
  /** Longest a response may wait for the client to read (backpressure) before the request is cut. */
  readonly sendTimeoutMs: number;
  /**
   * An HTTP/2 request's whole body must have arrived this long after its head → 408
   * `request_timeout` (--client-request-timeout; 0 or absent: no bound). Node bounds an HTTP/1
   * request so itself (public-servers.ts answerClientError); an HTTP/2 stream it does not bound at all.
   */
  readonly requestTimeoutMs?: number;
}

export interface ExchangeDeps<C = unknown> {
  readonly pools: UpstreamPools;
  readonly gates: RegionGates;
  readonly budget: RetryBudget;
  readonly outliers: OutlierDetector;
  readonly maxAttempts: number;
  /** Cap on response-header wait per attempt (the tier deadline may cut it shorter). */
  readonly headersTimeoutMs: number;
  /**
   * How long past the tier deadline a response may still stream before it is cut (RESPONSE_GRACE_MS
   * in production): the last bytes of an answer the function finished in time may still be in transit.
   */
  readonly responseGraceMs: number;
  /** How long a request may wait for a slot at one region before it moves on. */
  readonly queueTimeoutMs: number;
  /** Bodies up to this size are read whole before any region is called (and can be replayed). */
  readonly bodyBufferBytes: number;
  readonly pace: ClientPaceLimits;
  /** Live exchanges, for the watchdog's sweeps: each adds itself at start and leaves when done. */
  readonly live: { add(exchange: Watched): unknown; delete(exchange: Watched): unknown };
  /** May requests still go to this region (up, not drained, not ejected)? */
  readonly regionUsable: (region: RegionId, nowMs: number) => boolean;
  readonly onEjection: (ejection: Ejection) => void;
  /** Sends an error answer when no response byte went out yet; returns the status it stands for. */
  readonly respondError: (exchange: Exchange<C>, code: ExchangeErrorCode, message: string) => number;
  /** Called once when the exchange is over, whatever happened (access log, metrics). */
  readonly onDone: (exchange: Exchange<C>) => void;
  /** The request went on to another region than the one it was first sent to (a failover, a spill). */
  readonly onMoved?: (exchange: Exchange<C>, region: RegionId) => void;
  /**
   * A hedge went to `region` (`sent`); then either its answer was taken and the first attempt cut
   * (`adopted`: the request is the hedge's from now on), or it is over without that (`over`).
   * `alone`: the first attempt failed while the hedge races on (an error, or a 502/503/504 held,
   * paused, in case the hedge fails too): its region holds no container for the request, and the
   * hedge's count is the request's from now on whatever the hedge does (`adopted` or `over` may
   * still follow).
   */
  readonly onHedge?: (exchange: Exchange<C>, region: RegionId, event: 'sent' | 'alone' | 'adopted' | 'over') => void;
}

export type ExchangeErrorCode =
  | UpstreamErrorCode
  | 'payload_too_large'
  | 'bad_request'
  | 'request_timeout'
  | 'no_healthy_region'
  | 'capacity_exhausted'
  | 'shutting_down'
  | 'internal_error';


/** undici's fast timers tick every ~500 ms: its header timer is set this far past the deadline, which `check` keeps. */
const UNDICI_TIMER_SLACK_MS = 1_000;

/** Response bytes written to the client before the exchange lets the event loop serve others (see responseData). */
const RESPONSE_SLICE_BYTES = 256 * 1024;
/**
 * A first attempt's 502/503/504 held while its hedge races on is read into memory up to this much
 * (Exchange.held): a region's refusal is a few hundred bytes, read whole at once, and its
 * connection and gate slot go back to the region; past this the rest waits, paused, in the region.
 */
const HELD_BODY_LIMIT = 64 * 1024;

/** 103 Early Hints passed on per request: browsers act on the first; a region sending more gains nothing. */
const MAX_EARLY_HINTS = 2;

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** Reasons an exchange aborts its own upstream request (undici hands them back in onError). */
class Abort extends Error {
  constructor(readonly code: string) {
    super(code);
  }
}
const RETRY = new Abort('EDGE_RETRY');
const CLIENT_GONE = new Abort('EDGE_CLIENT_GONE');
const TOO_LARGE = new Abort('EDGE_PAYLOAD_TOO_LARGE');
const CUT = new Abort('EDGE_CUT');

/**
 * How a response past its deadline is cut off from its client. An Error, so that Node resets an
 * HTTP/2 stream with INTERNAL_ERROR (stream.destroy() without one sends NO_ERROR, which a client
 * may take for "the rest is not needed" rather than "the answer is broken"), as nginx resets a
 * stream whose upstream failed mid-body: the answer is incomplete through a failure on the
 * server's side. Not CANCEL: that says the stream is no longer wanted, which is what the router
 * sends a client that did not read in time (http2-stream-pair.ts) and gRPC reads as the caller's
 * own cancellation. HTTP/1.1: the connection closes, so a chunked answer lacks its last chunk and a
 * sized one its last bytes, and neither looks whole.
 */
const PAST_DEADLINE = new Error('the function was still sending its answer past its time limit');

/**
 * An HTTP/2 answer the router cuts for another reason (the drain's deadline, its own fault, a
 * client that stopped reading, a body that outgrew its limit mid-answer): reset with
 * INTERNAL_ERROR for the same reason. Destroyed without one, the stream was reset NO_ERROR, and
 * Node's HTTP/2 client, for one, ended the body as if whole: a truncated 200 that looked complete.
 * HTTP/1.1 cuts take no error (the connection's close says it), as before.
 */
const CUT_SHORT = new Error('the router cut the answer off before its end');

export interface ExchangeRequest<C = unknown> {
  readonly req: ClientRequest;
  readonly res: ClientResponse;
  /** 1 or 2: an HTTP/1 request may die with its connection while its response is still queued. */
  readonly httpVersionMajor: number;
  readonly method: string;
  readonly path: string;
  readonly headers: UpstreamHeaders;
  readonly candidates: readonly RegionId[];
  /** Whose request it is (the organisation): regions' slots are shared fairly between tenants (region-gate.ts). */
  readonly tenant: string;
  /** The route decision's reason; replaced when the exchange fails over. */
  readonly reason: string;
  /** Routing's hedge: where to send a second copy, and after how long without an answer. */
  readonly hedge?: { readonly region: RegionId; readonly afterMs: number } | undefined;
  /** The request carries a body (Content-Length > 0, chunked, or an HTTP/2 stream still open). */
  readonly hasBody: boolean;
  /**
   * `Expect: 100-continue` (HTTP/1.1 or HTTP/2), which Node left unanswered: the client waits for
   * 100 Continue before it sends the body, and gets it when the exchange starts reading it (not
   * with a refusal).
   */
  readonly expectsContinue?: boolean;
  /** The client takes interim answers (HTTP/1.1 or HTTP/2; RFC 9110 §15.2: never to HTTP/1.0): a region's 103 goes on to it. */
  readonly takesInterimAnswers?: boolean;
  readonly maxBodyBytes: number;
  /**
   * When response headers must have arrived (the function's tier), on monotonicNow()
   * (src/core/monotonic-clock.ts), not Date.now(); the whole response must be over
   * `responseGraceMs` later.
   */
  readonly deadlineAt: number;
  /**
   * Headers added to the region's answer, flat [name, value, …] as `writeHead` takes them (the
   * request id); the exchange adds x-edge-route, x-edge-region and Server-Timing itself.
   */
  readonly responseHeaders: readonly string[];
  /**
   * The router's Strict-Transport-Security and whether the function's own stands against it
   * (strict-transport.ts); absent or null: none added, the function's passes.
   */
  readonly strictTransport?: StrictTransportPolicy | null;
  /** The platform name the answer's cookies are confined to (cookie-scope.ts); undefined on a custom domain. */
  readonly cookieHost?: string | undefined;
  readonly routeMs: number;
  readonly startedAt: number;
  /** The caller's own facts about the request (e.g. for its access log), carried along untouched. */
  readonly context: C;
}

/** An ended exchange's facts, as the access log reads them (always with its final route). */
export type ExchangeResult = RequestOutcome & { readonly route: string; readonly hedgedTo: RegionId | null };

/** `turn`: a pipelined request waiting for the responses before it (HTTP/1 answers in order). */
type Phase = 'turn' | 'body' | 'queued' | 'upstream' | 'response' | 'done';

/** A first attempt's 502/503/504, kept while its hedge races on (Exchange.held); its attempt is still `this.controller`'s. */
interface HeldAnswer {
  readonly statusCode: number;
  readonly rawHeaders: readonly Buffer[];
  readonly upstreamMs: number;
  /** The exchange's outcome before this answer: the client gets it as an answer, not a failure. */
  readonly outcomeBefore: string | undefined;
  /** Its body so far, in order, and its length (HELD_BODY_LIMIT). */
  readonly chunks: Buffer[];
  bytes: number;
  ended: boolean;
  trailers: readonly (Buffer | string)[] | null;
}

export class Exchange<C = unknown> implements Dispatcher.DispatchHandler, GateWaiter, HedgeOwner, ConnectionRider {
  /** Regions tried, in order. */
  readonly tried: RegionId[] = [];
  status = 0;
  bytesIn = 0;
  bytesOut = 0;
  /** Why it ended badly, when it did (error code or upstream cause). */
  outcome: string | undefined;
  upstreamMs = 0;
  /** From the request's arrival to the end of the exchange. */
  totalMs = 0;
  /** x-edge-route: the decision's reason, or why the exchange moved on. */
  route: string;

  /** Watched: this exchange's place in the watchdog's LiveList. */
  watchSlot = -1;

  // GateWaiter
  readonly tenant: string;
  upload = false;
  readonly panic: boolean;
  gateDeadline = 0;
  gateQueued = false;

  private phase: Phase = 'body';
  /** The request's deadline, moved back by however long it waited for its turn on a pipelined connection. */
  private deadlineAt: number;
  private attemptStartedAt = 0;
  /** A slot is held at `tried[tried.length - 1]` (from admission until undici is done with it). */
  private holdingSlot = false;
  /** undici started writing this attempt's request: bytes may have reached the region. */
  private sent = false;
  /** undici read the first bytes of this attempt's answer (classifyAttemptError). */
  private answerBegun = false;
  /** The retry budget refused this request once: asking again (check's sweeps) is not counted as another refusal. */
  private budgetRefused = false;
  private controller: UpstreamControl | undefined;
  /** The whole body, when it fit in the buffer (replayable); null while unknown or too large. */
  private bufferedBody: Buffer | null = null;
  /** The start of a body too large to buffer, streamed ahead of the rest. */
  private bodyPrefix: Buffer[] = [];
  private bodyIterator: AsyncIterator<Buffer> | undefined;
  private bodyReading = false;
  private bodyStartedAt = 0;
  /** HTTP/2: when (monotonicNow()) the whole body must have arrived (pace.requestTimeoutMs); 0: no bound. */
  private bodyDueAt = 0;
  /**
   * A streamed upload: when (monotonicNow()) the router stopped reading it to find it a region (0:
   * reading, or nothing streams). The wait for a slot and a connection is the router's, not the
   * client's: it moves the body's due time on by as much.
   */
  private bodyHeldSince = 0;
  private bytesAtPaceStart = 0;
  private lastBodyAt = 0;
  /**
   * A streamed upload: since when (monotonicNow()) undici has not asked for the body's next chunk (0
   * while it is asking, or nothing streams). The region is not taking the body then, so its
   * client, held back by flow control, is not waiting on to be judged; the spell's time is left
   * out of the body's pace (unpulledMs), as a wait for a connection is.
   */
  private unpulledSince = 0;
  /** Time since the pace began during which undici was not asking for the body. */
  private unpulledMs = 0;
  /** When (monotonicNow()) the response paused for the client to read (0 = flowing). */
  private stalledSince = 0;
  /** How long, in all, the response waited for its client to take what it was sent (stalled writes). */
  private clientWaitMs = 0;
  /** Made on the first backpressure only: most responses never need it. */
  private onDrain: (() => void) | undefined;
  /** Response bytes written since the exchange last yielded the event loop. */
  private sliceBytes = 0;
  private yielding = false;
  private onYielded: (() => void) | undefined;
  /** The exchanges on this HTTP/1 connection, this one among them until it is over. */
  private riders: Riders | undefined;
  /** The hedge racing the first attempt, until one of them answers. */
  private hedgeLeg: HedgeLeg | undefined;
  private hedgeTimer: NodeJS.Timeout | undefined;
  /** 103 Early Hints passed on so far (at most MAX_EARLY_HINTS). */
  private earlyHints = 0;
  /** When the hedge's timer should fire (monotonicNow()). */
  private hedgeDueAt = 0;
  /** Where a hedge was sent (won or not), for the access log and metrics. */
  private hedgedTo: RegionId | null = null;
  /** A hedge's region that failed it: not tried again (it joins `tried` when the exchange moves on). */
  private failedHedge: RegionId | null = null;
  /** The current attempt is out of the race (it failed, or the hedge won): its late callbacks are ignored. */
  private attemptLost = false;
  /**
   * The first attempt or its hedge failed in a way that is never retried (a timeout: its function
   * may still be running). The other's failure then moves nowhere either: a hedged request had
   * been sent to a third region after two timeouts, where one without a hedge got its 504.
   */
  private legFailedForGood: UpstreamErrorCode | null = null;
  /**
   * The hedge won: every later callback of this exchange's own DispatchHandler methods comes from
   * the first attempt (the adopted hedge's arrive through hedgeData/hedgeEnd/hedgeError). That
   * attempt may still sit in undici, connecting, when the hedge wins: it keeps its gate slot
   * (`abandonedSlot`) until undici hands it back.
   */
  private firstAbandoned = false;
  private abandonedSlot: RegionId | null = null;
  /**
   * The first attempt answered 502/503/504 while its hedge races on: that answer, kept until the
   * hedge decides (its body read into memory up to HELD_BODY_LIMIT, so a refusal's few bytes give
   * the region its connection and gate slot back at once; a longer one waits, paused, holding
   * them). The hedge answers: this one is dropped. The hedge fails too and nothing may be tried
   * next: this is the client's answer, as it is when the two fail the other way round. (It was cut
   * at once, and the client got the router's 502.)
   */
  private held: HeldAnswer | undefined;
  /** Why the next retry happens, for x-edge-route: the region failed, or became unusable while we waited. */
  private retryCause: 'error' | 'unavailable' = 'error';

  constructor(
    readonly request: ExchangeRequest<C>,
    private readonly deps: ExchangeDeps<C>,
  ) {
    this.route = request.reason;
    this.tenant = request.tenant;
    this.deadlineAt = request.deadlineAt;
    this.panic = request.reason === 'panic';
  }

  start(): void {
    this.deps.budget.recordRequest();
    this.deps.live.add(this);
    // HTTP/1: watch the connection, not the response. A pipelined request's response waits behind
    // the ones before it and gets no `close` when the connection dies (nor does its request, once
    // its body was read); and a response's own `close` only ever follows the connection's or the
    // exchange's end. HTTP/2: the stream's `close` (a reset, or the connection's death).
    const socket = this.request.httpVersionMajor === 1 ? this.request.req.socket : null;
    if (socket !== null) this.riders = board(socket, this);
    else this.request.res.once('close', () => this.clientClosed());
    // Pipelined requests go to the regions one at a time, when their answer can be written, as
    // nginx and HAProxy forward them: a client that pipelines and reads nothing holds one upstream
    // request, not one per request it wrote.
    if (this.request.httpVersionMajor === 1 && this.request.res.socket === null) {
      this.phase = 'turn';
      const waitingSince = monotonicNow();
      this.request.res.once('socket', () => {
        if (this.phase !== 'turn') return;
        this.deadlineAt += monotonicNow() - waitingSince;
        this.phase = 'body';
        this.begin();
      });
      return;
    }
    this.begin();
  }

  private begin(): void {
    if (!this.request.hasBody) {
      this.bufferedBody = null;
      this.attempt();
      return;
    }
    // Answered when the body is wanted, as nginx does: a request refused before this (a
    // Content-Length over the limit, admission) told its client so without 100 Continue, which
    // had made it start an upload whose connection was then closed under it.
    if (this.request.expectsContinue === true) this.request.res.writeContinue?.();
    this.bodyStartedAt = this.lastBodyAt = monotonicNow();
    const requestTimeoutMs = this.deps.pace.requestTimeoutMs ?? 0;
    if (this.request.httpVersionMajor >= 2 && requestTimeoutMs > 0) this.bodyDueAt = this.bodyStartedAt + requestTimeoutMs;
    this.bodyIterator = this.request.req[Symbol.asyncIterator]();
    void this.bufferBody();
  }

  /** Answers with an error without calling any region (a limit known up front). */
  refuse(code: ExchangeErrorCode, message: string): void {
    this.deps.live.add(this);
    this.fail(code, message);
  }

  /**
   * A fault of the router's own (a throw where none was expected): the upstream side is cut, the
   * client gets a 500 (or, mid-response, loses the connection), and every slot, count and
   * listener is given back through the usual end, so the fault costs no resource.
   */
  fault(): void {
    if (this.phase === 'done') return;
    this.outcome = 'internal_error';
    // A place in a region's queue is given back by finish(), as for every other end.
    this.abortUpstream(CUT);
    this.releaseSlot();
    if (this.request.res.headersSent) {
      this.cutClient();
      this.finish(this.status);
      return;
    }
    this.fail('internal_error', 'internal error');
  }

  /** The region that answered (the last one tried), or null when none was tried. */
  get region(): RegionId | null {
    return this.tried[this.tried.length - 1] ?? null;
  }

  get error(): string | null {
    return this.outcome ?? null;
  }

  /**
   * What happened, copied when the exchange ended: the access log and metrics read this, never
   * the live exchange (whose fields a late event could still touch).
   */
  result(): ExchangeResult {
    return {
      region: this.region,
      tried: [...this.tried],
      status: this.status,
      error: this.error,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      upstreamMs: this.upstreamMs,
      totalMs: this.totalMs,
      route: this.route,
      hedgedTo: this.hedgedTo,
    };
  }

  /** The watchdog's periodic look: slow bodies, clients that stopped reading, requests past their deadline. */
  check(nowMs: number): void {
    const { pace } = this.deps;
    // The body's pace is the client's only while someone is reading it: before dispatch, or while
    // undici pulls a streamed upload — not while the request waits for a connection, nor while
    // the region is slow to take what was sent (undici not asking: a cold start, a function that
    // reads its body late), which had answered a client that sent everything at once 408.
    if (this.bodyReading && this.unpulledSince === 0 && (this.phase === 'body' || (this.phase === 'upstream' && this.sent))) {
      const idle = nowMs - this.lastBodyAt > pace.bodyIdleTimeoutMs;
      const elapsedMs = nowMs - this.bodyStartedAt - this.unpulledMs;
      const slow = pace.bodyMinBytesPerSecond > 0 && elapsedMs > pace.bodyIdleTimeoutMs && ((this.bytesIn - this.bytesAtPaceStart) * 1000) / elapsedMs < pace.bodyMinBytesPerSecond;
      // HTTP/2: the whole request past --client-request-timeout, as Node cuts an HTTP/1 one (and
      // logged the same: its code, `request_timeout`). Judged only while the body is the client's
      // to send, like its pace: a stream the router left waiting for a slot is not cut for it.
      const late = this.bodyDueAt !== 0 && nowMs - this.unpulledMs >= this.bodyDueAt;
      if (idle || slow || late) {
        this.outcome = idle ? 'body_idle_timeout' : slow ? 'body_too_slow' : 'request_timeout';
        const ownAnswer = !this.request.res.headersSent;
        this.abortUpstream(CUT);
        this.fail('request_timeout', 'the request body did not arrive in time');
        this.dropBody(ownAnswer);
        return;
      }
    }
    // A body still being read before dispatch when the function's time limit passes: no region was
    // asked, and none could answer in time now. Kept reading until the body was whole, the request
    // held the client and its buffer past the limit, then went out as a 504 "the function did not
    // answer" that no function was asked for. The client's slowness: 408, as its pace's.
    if (this.phase === 'body' && nowMs >= this.deadlineAt) {
      const ownAnswer = !this.request.res.headersSent;
      this.bodyPastDeadline();
      this.dropBody(ownAnswer);
      return;
    }
    // The tier deadline is kept here, by the clock: undici's header timer runs on its coarse fast
    // timers (they can fire hundreds of ms early or late) and has not even started while a request
    // waits in undici's own queue (a BalancedPool with one busy member). undici's timer stays as a
    // backstop past the deadline.
    if (this.phase === 'upstream' && nowMs >= this.deadlineAt) {
      // Late is the region still being waited for: the hedge's, once the first attempt failed.
      // A streamed upload still arriving is the client's slowness, not the region's: the region is
      // waiting for the body, so the passed deadline does not count towards its ejection. One the
      // region had stopped taking (undici not asking for more) is the region's.
      if (this.attemptLost && this.hedgeLeg !== undefined) this.legFailed(this.hedgeLeg.region, 'deadline');
      else if (this.controller !== undefined && (!this.bodyReading || this.unpulledSince !== 0)) this.regionFailed('deadline');
      this.abortUpstream(CUT);
      this.fail('upstream_timeout', 'the function did not answer within its time limit');
      return;
    }
    // Waiting for headers from a region that has since been declared down: an idempotent request
    // that can be sent again as it was need not wait for its deadline there. Not a failure of the
    // region: a drain is an operator's word, and a region down or ejected is known to be so already
    // (counted, an operator's drain of a region with five requests in flight ejected it). Nor in
    // panic, which sent it to a region known to be down: moved on, a slow GET was cut at each
    // region in turn and answered by the last one allowed.
    if (this.phase === 'upstream' && this.controller !== undefined && this.hedgeLeg === undefined && !this.panic && this.replayable() && !this.deps.regionUsable(this.region!, Date.now()) && this.canRetry()) {
      this.retryCause = 'unavailable';
      this.controller.abort(RETRY);
      return;
    }
    // The whole exchange, body included, is bounded by the tier (as Envoy's route timeout bounds
    // it): a function still sending past its limit has outrun the platform's own timeout. Kept on
    // this same clock rather than by a timer armed per response: the watchdog already visits every
    // live exchange, so the bound costs one comparison per visit and nothing per request. The time
    // the router waited for its client to take what it had (stalled writes, upstream paused) is
    // the client's, not the function's: the bound moves back by it, and while a write is stalled
    // only the send timeout applies. Counted whole, a slow client's large download, which the
    // function had finished in time (a Node function's end() does not wait for its client), was
    // cut and counted against the region.
    if (this.phase === 'response' && this.stalledSince === 0 && nowMs >= this.deadlineAt + this.deps.responseGraceMs + this.clientWaitMs) {
      this.outcome = RESPONSE_DEADLINE;
      this.abortUpstream(CUT);
      this.cutClient(PAST_DEADLINE);
      this.finish(this.status);
      return;
    }
    if (this.stalledSince !== 0 && nowMs - this.stalledSince > pace.sendTimeoutMs) {
      this.outcome = 'send_timeout';
      this.abortUpstream(CUT);
      this.cutClient();
      this.finish(this.status);
    }
  }

  // --- body ------------------------------------------------------------------------------------

  /** Reads the body until it ends (then it is replayable) or fills the buffer (then it streams). */
  private async bufferBody(): Promise<void> {
    const iterator = this.bodyIterator!;
    const chunks: Buffer[] = [];
    let size = 0;
    this.bodyReading = true;
    try {
      for (;;) {
        const next = await iterator.next();
        if (this.phase === 'done') return;
        if (next.done) {
          if (this.request.req.aborted === true) return this.clientClosed(); // a truncated body, not a whole one
          this.bodyReading = false;
          this.bufferedBody = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
          break;
        }
        this.lastBodyAt = monotonicNow();
        size += next.value.length;
        this.bytesIn = size;
        if (size > this.request.maxBodyBytes) return this.tooLarge();
        chunks.push(next.value);
        if (size > this.deps.bodyBufferBytes) {
          // Too large to hold: stream it, within the region's share for uploads.
          this.bodyPrefix = chunks;
          this.upload = true;
          this.bodyHeldSince = this.lastBodyAt;
          break;
        }
      }
    } catch (err) {
      if (this.phase === 'done') return;
      // Node's HTTP/1 parser names broken framing HPE_*; anything else is the client going away.
      if (String((err as { code?: unknown }).code).startsWith('HPE_')) this.fail('bad_request', 'the request body is not valid HTTP framing');
      else this.clientClosed();
      return;
    }
    this.attempt();
  }

  /** The rest of a streamed body, after its buffered start. */
  private async *streamBody(): AsyncGenerator<Buffer> {
    for (const chunk of this.bodyPrefix) {
      this.pullResumed();
      this.unpulledSince = monotonicNow();
      yield chunk;
    }
    this.bodyPrefix = [];
    const iterator = this.bodyIterator!;
    for (;;) {
      this.pullResumed();
      const next = await iterator.next();
      // undici cannot cancel this generator: one parked here when the exchange ended (an early
      // answer, a region's failure) takes the client's next chunk. Counted past the limit, it
      // destroyed the request, and the connection its answer went out on with it.
      if (this.phase === 'done') return;
      if (next.done) {
        // A truncated body must not reach the region as a whole one: abort instead of ending it.
        if (this.request.req.aborted === true) this.clientClosed();
        break;
      }
      this.lastBodyAt = monotonicNow();
      this.bytesIn += next.value.length;
      if (this.bytesIn > this.request.maxBodyBytes) {
        this.tooLarge(); // aborts this upstream request and answers 413
        return;
      }
      // Until undici asks for the next chunk (at once, unless the region's side is backed up).
      this.unpulledSince = this.lastBodyAt;
      yield next.value;
    }
    this.bodyReading = false;
  }

  /** undici asks for the body's next chunk: the time it did not is left out of the pace, and the client's idle clock starts again. */
  private pullResumed(): void {
    if (this.unpulledSince === 0) return;
    const now = monotonicNow();
    this.unpulledMs += now - this.unpulledSince;
    this.unpulledSince = 0;
    // Held back by flow control meanwhile, the client could send nothing: its silence was not its own.
    this.lastBodyAt = now;
  }

  private tooLarge(): void {
    const ownAnswer = !this.request.res.headersSent;
    this.abortUpstream(TOO_LARGE);
    this.fail('payload_too_large', `the request body is larger than ${this.request.maxBodyBytes} bytes`);
    this.dropBody(ownAnswer);
  }

  /**
   * The rest of a body refused mid-way. Answered by the router (`ownAnswer`, the 413 or 408 head
   * went out now), the body is left to what follows that answer. HTTP/1: the connection's close,
   * which lingers to take what the client still sends (lingering-close.ts), as after a
   * Content-Length refused at the head. Destroyed here, the socket closed with the client's unread
   * bytes in its receive buffer, the kernel sent a reset, and a client that reads only once it has
   * sent got ECONNRESET instead of the answer. HTTP/2: the stream's reset once the answer has gone
   * (http2-stream-pair.ts, dropUnreadBody). Destroyed here, inside the session's receive callback
   * when the body outgrew the limit, nghttp2 sent RST_STREAM before the answer's queued frames and
   * dropped them. An answer already under way is cut, as before.
   */
  private dropBody(ownAnswer: boolean): void {
    if (ownAnswer) return;
    this.request.req.destroy(this.cutShort());
  }

  /** What an answer cut mid-body is destroyed with: CUT_SHORT over HTTP/2, nothing over HTTP/1.1. */
  private cutShort(): Error | undefined {
    return this.request.httpVersionMajor >= 2 ? CUT_SHORT : undefined;
  }

  /** The function's time limit passed while its body was still the client's to send: 408, no region asked. */
  private bodyPastDeadline(): void {
    this.outcome = 'request_timeout';
    this.fail('request_timeout', "the request body did not arrive within the function's time limit");
  }

  // --- attempts --------------------------------------------------------------------------------

  /** Asks the next candidate's gate for a slot. */
  private attempt(): void {
    if (this.phase === 'done') return;
    // An earlier attempt's cause is in `tried` and the route; this attempt's end sets its own.
    this.outcome = undefined;
    const now = monotonicNow();
    if (now >= this.deadlineAt) {
      // No region asked yet: the body took the time (whole between two of the watchdog's looks).
      if (this.tried.length === 0 && this.request.hasBody) this.bodyPastDeadline();
      else this.fail('upstream_timeout', 'the function did not answer within its time limit');
      return;
    }
    const region = this.nextCandidate();
    this.tried.push(region);
    if (this.tried.length > 1) this.deps.onMoved?.(this, region);
    // The candidates were ranked at admission; a body read since, or an attempt that failed, may
    // have taken long enough for this one to be drained, ejected or down (a panic decision
    // ranked regions that were down already, knowingly).
    if (!this.panic && !this.deps.regionUsable(region, Date.now())) {
      this.moveOn(region, 'unavailable', 'no_healthy_region');
      return;
    }
    this.gateDeadline = Math.min(now + this.deps.queueTimeoutMs, this.deadlineAt);
    const entered = this.deps.gates.enter(region, this);
    if (entered === 'admitted') {
      this.holdingSlot = true;
      this.dispatch();
    } else if (entered === 'queued') {
      this.phase = 'queued';
    } else {
      this.moveOn(region, entered === 'over-share' ? 'tenant-share' : 'queue-full', 'capacity_exhausted');
    }
  }

  /** The first candidate not tried yet (a hedge that failed counts as tried). Callers checked there is one. */
  private nextCandidate(): RegionId {
    const { candidates } = this.request;
    for (let i = 0; i < candidates.length; i++) if (candidates[i] !== this.failedHedge && !this.tried.includes(candidates[i]!)) return candidates[i]!;
    return candidates[candidates.length - 1]!;
  }

  /** GateWaiter: a slot is ours. */
  admitted(): void {
    this.holdingSlot = true;
    if (this.phase === 'done') {
      this.releaseSlot();
      return;
    }
    this.dispatch();
  }

  /** GateWaiter: no slot at this region (it became unusable, or we waited too long). */
  turnedAway(reason: TurnAway): void {
    if (this.phase === 'done') return;
    if (monotonicNow() >= this.deadlineAt) {
      this.fail('upstream_timeout', 'the function did not answer within its time limit');
      return;
    }
    const region = this.region!;
    if (reason === 'region_unavailable') this.moveOn(region, 'unavailable', 'no_healthy_region');
    else this.moveOn(region, 'queue-timeout', 'capacity_exhausted');
  }

  /** Nothing was sent to `region`: the next candidate may take the request, whatever its method. */
  private moveOn(region: RegionId, cause: string, code: 'capacity_exhausted' | 'no_healthy_region'): void {
    this.outcome = code;
    if (this.attemptsUsed < this.deps.maxAttempts && this.attemptsUsed < this.request.candidates.length) {
      this.route = `${cause === 'unavailable' ? 'failover' : 'spill'}:${region}-${cause}`;
      this.attempt();
      return;
    }
    this.fail(code, code === 'capacity_exhausted' ? 'every region is at capacity; try again shortly' : 'no region could serve the request');
  }

  private dispatch(): void {
    const region = this.region!;
    const pool = this.deps.pools.get(region);
    const remainingMs = this.deadlineAt - monotonicNow();
    if (pool === undefined || remainingMs <= 0) {
      this.releaseSlot();
      this.fail('upstream_timeout', 'the function did not answer within its time limit');
      return;
    }
    this.phase = 'upstream';
    this.attemptStartedAt = performance.now();
    this.controller = undefined;
    this.sent = false;
    this.answerBegun = false;
    this.attemptLost = false;
    const hedge = this.request.hedge;
    // A hedge is a second attempt: not with --max-attempts 1.
    if (hedge !== undefined && this.tried.length === 1 && hedge.region !== region && this.deps.maxAttempts > 1 && this.replayable()) {
      this.hedgeDueAt = monotonicNow() + hedge.afterMs;
      this.hedgeTimer = setTimeout(() => this.hedgeDue(), hedge.afterMs);
    }
    const options: OrchestratorDispatchOptions = {
      path: this.request.path,
      method: this.request.method as Dispatcher.HttpMethod,
      headers: this.request.headers,
      body: this.body() as unknown as Dispatcher.DispatchOptions['body'],
      // The deadline runs from admission: queueing has already spent part of it.
      headersTimeout: Math.min(this.deps.headersTimeoutMs, remainingMs + UNDICI_TIMER_SLACK_MS),
      idempotent: false, // we decide about retries; undici must not replay on its own
      servername: UPSTREAM_SERVERNAME,
    };
    pool.dispatch(options, this);
  }

  /** This attempt's request body: the buffered copy (reusable), or the one live stream. */
  private body(): AsyncIterable<Buffer> | Buffer | null {
    if (!this.request.hasBody) return null;
    if (this.bufferedBody !== null) return this.bufferedBody;
    return this.streamBody();
  }

  // --- hedging ---------------------------------------------------------------------------------

  /**
   * The hedge's timer. Fired late (the event loop was stalled), it runs before the loop reads its
   * sockets, where the first attempt's answer may be waiting: it looks again after they are read
   * (the next poll phase, then immediates), and sendHedge sends nothing once an answer came.
   */
  private hedgeDue(): void {
    this.hedgeTimer = undefined;
    if (ranLate(this.hedgeDueAt, monotonicNow(), this.request.hedge!.afterMs)) setImmediate(() => this.sendHedge());
    else this.sendHedge();
  }

  /** The first attempt has not answered in time; race it from the warm region if one may be used now. */
  private sendHedge(): void {
    this.hedgeTimer = undefined;
    const region = this.request.hedge!.region;
    if (this.phase !== 'upstream' || this.attemptLost || this.tried.length !== 1) return;
    const now = monotonicNow();
    const pool = this.deps.pools.get(region);
    if (pool === undefined || now >= this.deadlineAt || !this.deps.regionUsable(region, Date.now())) return;
    if (!this.deps.gates.tryTake(region, this.tenant)) return;
    if (!this.deps.budget.tryAcquire(true, this.tenant)) {
      this.deps.gates.leave(region, this.tenant, false);
      return;
    }
    const leg = new HedgeLeg(this, region, (r, adopted) => {
      this.deps.gates.leave(r, this.tenant, false);
      if (!adopted) this.deps.onHedge?.(this, r, 'over');
    });
    this.hedgeLeg = leg;
    this.hedgedTo = region;
    const options: OrchestratorDispatchOptions = {
      path: this.request.path,
      method: this.request.method as Dispatcher.HttpMethod,
      headers: this.request.headers,
      body: this.bufferedBody,
      headersTimeout: Math.min(this.deps.headersTimeoutMs, this.deadlineAt - now + UNDICI_TIMER_SLACK_MS),
      idempotent: false,
      servername: UPSTREAM_SERVERNAME,
    };
    // Before the dispatch: a leg that fails at once reports `over` from inside it.
    this.deps.onHedge?.(this, region, 'sent');
    pool.dispatch(options, leg);
  }

  /** HedgeOwner: the hedge has its answer first — it becomes the exchange's response, and the first attempt is cancelled. */
  hedgeAnswered(leg: HedgeLeg, controller: UpstreamControl, statusCode: number, rawHeaders: readonly Buffer[]): boolean {
    if (leg !== this.hedgeLeg || this.phase !== 'upstream' || this.request.res.headersSent) return false;
    this.hedgeLeg = undefined;
    // The first attempt's held 502/503/504 loses to any answer of the hedge's (taken as after a failure).
    this.dropHeld();
    if (isRetryableStatus(statusCode) && !this.attemptLost) {
      // Not an answer worth taking while the first attempt carries on.
      if (!answeredByContainer(rawHeaders)) this.legFailed(leg.region, `status ${statusCode}`);
      this.failedHedge = leg.region;
      return false;
    }
    // The hedge's answer is taken. A 502/503/504 after the first attempt failed is the last answer
    // there is, taken like any attempt's (responseStarted): the next region if one may be tried,
    // else the region's own answer to the client, as without a hedge. (It was the router's 502
    // instead: the same two failures answered differently by which came first; seen in review.)
    const first = this.region!;
    leg.adopted();
    // A first attempt that already failed is over in undici (its onError came, or came at once
    // from dropHeld's abort above, or its held answer had come whole): none of its callbacks is
    // left to ignore. Marking it abandoned
    // anyway made the exchange's own handler methods ignore the *next* attempt, the one a 502/503/504
    // from the adopted hedge moves on to: it was cut as it connected and its gate slot never given back.
    const firstRunning = !this.attemptLost;
    this.attemptLost = true;
    const firstController = this.controller;
    if (firstRunning) {
      this.firstAbandoned = true;
      if (this.holdingSlot) {
        this.holdingSlot = false;
        this.abandonedSlot = first;
      }
    }
    this.controller = controller;
    this.tried.push(leg.region);
    this.deps.onHedge?.(this, leg.region, 'adopted');
    this.route = `hedged:${first}>${leg.region}`;
    this.attemptStartedAt = leg.startedAt;
    // Cut the first attempt (undici calls back at once; one still connecting is cut in onConnect).
    if (firstRunning) firstController?.abort(HEDGE_LOST);
    this.responseStarted(controller, statusCode, rawHeaders);
    return true;
  }

  /** HedgeOwner: the adopted hedge's response, passed through. */
  hedgeData(controller: UpstreamControl, chunk: Buffer): void {
    this.responseData(controller, chunk);
  }

  hedgeEnd(trailers: readonly (Buffer | string)[] | null): void {
    this.responseEnd(trailers);
  }

  hedgeError(err: Error): void {
    this.responseError(err);
  }

  /** The abandoned first attempt is over in undici: its gate slot goes back. */
  private releaseAbandoned(): void {
    if (this.abandonedSlot === null) return;
    this.deps.gates.leave(this.abandonedSlot, this.tenant, false);
    this.abandonedSlot = null;
  }

  /** The first attempt's 502/503/504 is kept while its hedge races on (see `held`). */
  private holdAnswer(statusCode: number, rawHeaders: readonly Buffer[]): void {
    // undici's head fields are views of the socket's read buffer: copied, as they outlive this call.
    const head = rawHeaders.map((field) => Buffer.from(field));
    this.held = { statusCode, rawHeaders: head, upstreamMs: performance.now() - this.attemptStartedAt, outcomeBefore: this.outcome, chunks: [], bytes: 0, ended: false, trailers: null };
    this.outcome = `status ${statusCode}`;
    this.firstOut();
  }

  /**
   * The held answer is not the one: its attempt is cut and its slot given back. undici calls back
   * at once with HEDGE_LOST, which responseError ignores; an answer that had come whole is over in
   * undici already (its slot went back at onComplete), and the abort does nothing.
   */
  private dropHeld(): void {
    const held = this.held;
    if (held === undefined) return;
    this.held = undefined;
    this.releaseSlot();
    this.controller?.abort(HEDGE_LOST);
  }

  /** The hedge failed too and nothing is left to try: the first attempt's own answer goes to the client. */
  private answerHeld(): void {
    const held = this.held!;
    this.held = undefined;
    this.attemptLost = false;
    this.outcome = held.outcomeBefore;
    this.upstreamMs = held.upstreamMs;
    this.forwardHead(held.statusCode, held.rawHeaders);
    if (this.phase !== 'response') return;
    const controller = this.controller!;
    for (const chunk of held.chunks) this.responseData(controller, chunk);
    if (held.ended) this.responseEnd(held.trailers);
    else if (controller.paused && this.stalledSince === 0 && !this.yielding) controller.resume();
  }

  /** HedgeOwner: the hedge failed before answering. */
  hedgeFailed(leg: HedgeLeg, err: Error): void {
    if (leg !== this.hedgeLeg) return;
    this.hedgeLeg = undefined;
    const failure = classifyAttemptError(err, leg.answerBegun);
    this.legFailed(leg.region, failure.cause);
    this.failedHedge = leg.region;
    if (!failure.retryable) this.legFailedForGood = worse(this.legFailedForGood, failure.code);
    if (this.attemptLost) this.bothFailed(failure.code, failure.cause);
  }

  /** The first attempt and its hedge both failed: the next candidate, if the rules allow one. */
  private bothFailed(code: UpstreamErrorCode, cause: string): void {
    if (this.phase !== 'upstream') return;
    if (this.canRetry()) {
      this.dropHeld();
      this.outcome = cause;
      this.retry();
      return;
    }
    if (this.held !== undefined) {
      // As when the hedge fails first: the region that answered is the one the client hears from.
      this.answerHeld();
      return;
    }
    this.noteFailedHedge();
    this.outcome = cause;
    // The answer a leg that failed for good would have had alone (a timeout's 504), whichever came last.
    const answer = worse(this.legFailedForGood, code);
    this.fail(answer, answer === 'upstream_timeout' ? 'the function did not answer within its time limit' : 'no region could serve the request');
  }

  /** A failed hedge's region joins `tried` (after the attempt it raced), once the exchange moves on. */
  private noteFailedHedge(): void {
    if (this.failedHedge === null) return;
    this.tried.push(this.failedHedge);
    this.failedHedge = null;
  }

  /** Regions used up: tried, plus a hedge's region that failed. */
  private get attemptsUsed(): number {
    return this.tried.length + (this.failedHedge === null ? 0 : 1);
  }

  /** The first attempt is out of the race while the hedge races on: its region holds no container for the request now (a held answer is not one). */
  private firstOut(): void {
    this.attemptLost = true;
    this.deps.onHedge?.(this, this.hedgeLeg!.region, 'alone');
  }

  private legFailed(region: RegionId, cause: string): void {
    const ejection = this.deps.outliers.failure(region, cause, tenantOfFailure(cause, this.tenant));
    if (ejection !== undefined) this.deps.onEjection(ejection);
  }

  private stopHedging(): void {
    if (this.hedgeTimer !== undefined) {
      clearTimeout(this.hedgeTimer);
      this.hedgeTimer = undefined;
    }
    this.hedgeLeg?.cancel();
    this.hedgeLeg = undefined;
  }

  private releaseSlot(): void {
    if (!this.holdingSlot) return;
    this.holdingSlot = false;
    this.deps.gates.leave(this.region!, this.tenant, this.upload);
  }

  private canRetry(): boolean {
    if (this.attemptsUsed >= this.deps.maxAttempts || this.attemptsUsed >= this.request.candidates.length) return false;
    // Whatever moves it on (the other leg's failure or 503, its region drained meanwhile).
    if (this.legFailedForGood !== null) return false;
    if (this.request.res.headersSent || this.phase === 'done') return false;
    // Nothing reached the region, or an idempotent request we can send again as it was. A
    // bodiless POST that was written may have run: it is not sent twice.
    const safe = !this.sent || this.replayable();
    if (!safe) return false;
    if (this.deps.budget.tryAcquire(!this.budgetRefused, this.tenant)) return true;
    this.budgetRefused = true;
    return false;
  }

  /** Idempotent, and its whole body (if any) is in hand: sending it again is what the client asked for. */
  private replayable(): boolean {
    return IDEMPOTENT.has(this.request.method) && (!this.request.hasBody || this.bufferedBody !== null);
  }

  private regionFailed(cause: string): void {
    this.legFailed(this.region!, cause);
  }

  private retry(): void {
    this.route = `failover:${this.region!}-${this.retryCause}`;
    this.retryCause = 'error';
    this.noteFailedHedge();
    this.attempt();
  }

  // --- the client ------------------------------------------------------------------------------

  /**
   * The drain's deadline passed with this request still in progress: the router ends it, and its
   * access line says `shutdown` rather than blaming the client. One not answered yet gets 503
   * `shutting_down` (with Retry-After: another router can take it); one mid-response is cut.
   */
  shutdown(): void {
    if (this.phase === 'done') return;
    this.outcome = 'shutdown';
    this.abortUpstream(CUT);
    if (!this.request.res.headersSent) return this.fail('shutting_down', 'this router is shutting down; try again');
    this.cutClient();
    this.finish(this.status);
  }

  /** ConnectionRider: the HTTP/1 connection this exchange came on is gone. */
  connectionClosed(byRouter: boolean, answered?: RouterAnswer): void {
    if (answered?.response === this.request.res) this.answeredOutside(answered);
    else if (byRouter) this.routerClosed();
    else this.clientClosed();
  }

  /**
   * The router answered this request itself, outside the exchange, and closed its connection: Node's
   * --client-request-timeout ran out while the body was still coming (408), or the body broke its
   * framing (400); public-servers.ts answerClientError. Logged with what the client got, not as a
   * client that left (it was logged 499 `client_closed`, its client holding a 408). Whatever the
   * region was sent is cut, as for the exchange's own body timeouts. An answer whose head had gone
   * out already was cut instead: its status stays, the code says why.
   */
  private answeredOutside(answer: RouterAnswer): void {
    if (this.phase === 'done') return;
    this.outcome = answer.code;
    this.abortUpstream(CUT);
    this.finish(this.request.res.headersSent ? this.status : answer.status);
  }

  /**
   * The router closed this request's HTTP/1.1 connection itself: it cut the answer before this
   * one (its deadline, the send timeout, its region failing mid-body), or that answer was the last
   * on its connection (the drain), or the client took none of what waited for it. Such a request
   * was pipelined behind that answer and never had its turn. Its client did not leave, so not 499
   * `client_closed` (which would blame the client for the router's cut); it got no answer, so no
   * status either: 0, with `router_closed`.
   */
  private routerClosed(): void {
    if (this.phase === 'done') return;
    this.outcome = 'router_closed';
    this.abortUpstream(CUT);
    this.finish(this.request.res.headersSent ? this.status : 0);
  }

  /**
   * Cuts the client's answer off: an HTTP/2 stream is reset; an HTTP/1.1 connection closes, and
   * the requests pipelined behind this one are told that the router closed it, not their client.
   */
  private cutClient(error?: Error): void {
    this.routerCloses();
    this.request.res.destroy(error ?? this.cutShort());
  }

  /** HTTP/1: this exchange's connection is about to be closed by the router (see routerClosed). */
  private routerCloses(): void {
    const socket = this.riders === undefined ? null : this.request.req.socket;
    if (socket !== null) closingByRouter(socket);
  }

  private clientClosed(): void {
    // Not `res.writableFinished`: an HTTP/2 stream the client reset reads as finished too.
    // The exchange is 'done' as soon as it ended the response itself, before any 'close'.
    if (this.phase === 'done') return;
    if (this.phase === 'response' && this.request.httpVersionMajor >= 2 && isBodiless(this.status)) {
      // HTTP/2 ends a 204's, 205's or 304's stream with its head: this close is the answer delivered
      // whole, not the client leaving (it came first when undici was still to report a stated
      // Content-Length it never read, and was logged 499 client_closed).
      this.abortUpstream(CUT);
      this.finish(this.status);
      return;
    }
    this.outcome ??= 'client_closed';
    this.abortUpstream(CLIENT_GONE);
    this.finish(499);
  }

  private abortUpstream(reason: Abort): void {
    if (this.phase === 'upstream' || this.phase === 'response') {
      // Before onConnect there is no controller yet; onConnect aborts then.
      this.controller?.abort(reason);
    }
  }

  // --- undici's core handler interface (see upstream-control.ts) ------------------------------
  // After the hedge won (firstAbandoned), these callbacks come from the first attempt, which was
  // aborted: they are ignored but for giving its slot back.

  onConnect(abort: (reason?: Error) => void): void {
    const controller = new UpstreamControl(abort);
    if (this.firstAbandoned || this.attemptLost) {
      controller.abort(HEDGE_LOST);
      return;
    }
    this.controller = controller;
    this.sent = true;
    if (this.bodyReading) {
      // A streamed upload resumes now: its pace is judged from here, not across the wait for a slot.
      const now = monotonicNow();
      if (this.bodyDueAt !== 0 && this.bodyHeldSince !== 0) this.bodyDueAt += now - this.bodyHeldSince;
      this.bodyHeldSince = 0;
      this.lastBodyAt = this.bodyStartedAt = now;
      this.bytesAtPaceStart = this.bytesIn;
      this.unpulledSince = 0;
      this.unpulledMs = 0;
    }
    if (this.phase === 'done') controller.abort(CLIENT_GONE);
  }

  onResponseStarted(): void {
    if (!this.firstAbandoned) this.answerBegun = true;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    const controller = this.controller;
    if (this.firstAbandoned || controller === undefined) return true;
    controller.headArrived(resume);
    this.responseStarted(controller, statusCode, rawHeaders);
    return !controller.paused;
  }

  private responseStarted(controller: UpstreamControl, statusCode: number, rawHeaders: readonly Buffer[]): void {
    if (statusCode < 200) {
      // 100 is the router's own to give (writeContinue) and 101 an upgrade's (upgrade-handler.ts).
      if (statusCode === 103) this.passEarlyHints(rawHeaders);
      return;
    }
    if (isRetryableStatus(statusCode)) {
      // Another region may do better (the next attempt, for a request that can be sent again), but
      // only the region's own refusal counts towards its ejection, not a function's answer.
      if (!answeredByContainer(rawHeaders)) this.regionFailed(`status ${statusCode}`);
      if (this.hedgeLeg?.pending === true) {
        // The hedge is already on it: wait for its answer rather than start a third attempt.
        this.holdAnswer(statusCode, rawHeaders);
        return;
      }
      if (this.canRetry()) {
        controller.abort(RETRY);
        return;
      }
    } else {
      this.deps.outliers.success(this.region!);
    }
    // This answer is the one: a hedge still racing loses.
    if (this.hedgeLeg !== undefined || this.hedgeTimer !== undefined) this.stopHedging();
    this.upstreamMs = performance.now() - this.attemptStartedAt;
    this.forwardHead(statusCode, rawHeaders);
  }

  /**
   * A region's 103 Early Hints, passed on before its answer (RFC 9110 §15.2: a proxy forwards the
   * 1xx it did not ask for), as Cloudflare does: the client's browser starts fetching the linked
   * resources during the function's work. Advice only: dropped where it cannot go at once (the
   * answer's head already out, an HTTP/1 answer still queued behind a pipelined one; a link Node's
   * HTTP/1 writer will not write is left out of it), and a hedge's are not passed on. Bounded: a
   * region sending 103s without end gets MAX_EARLY_HINTS of them through.
   */
  private passEarlyHints(rawHeaders: readonly Buffer[]): void {
    const res = this.request.res;
    if (this.request.takesInterimAnswers !== true || res.writeEarlyHints === undefined || res.headersSent || res.socket === null) return;
    if (this.earlyHints >= MAX_EARLY_HINTS) return;
    const link = earlyHintLinks(rawHeaders, this.request.httpVersionMajor === 1);
    if (link.length === 0) return;
    try {
      res.writeEarlyHints({ link });
      this.earlyHints++;
    } catch {
      // A value the writer refuses after all (node:http2's own checks), or a stream already gone: the answer follows without it.
    }
  }

  /** The answer taken: its head goes to the client (or, where the client's protocol cannot carry it, the router's error). */
  private forwardHead(statusCode: number, rawHeaders: readonly Buffer[]): void {
    const controller = this.controller!;
    this.phase = 'response';
    if (!isRetryableStatus(statusCode)) this.outcome = undefined; // earlier failed attempts are in `tried`
    if (statusCode > 599 && this.request.httpVersionMajor >= 2) {
      // HTTP/1 carries any three digits; HTTP/2 (and Node's stream) only 1xx–5xx.
      this.outcome = `status ${statusCode}`;
      controller.abort(CUT);
      this.fail('upstream_unavailable', `the function answered with status ${statusCode}, which HTTP/2 cannot carry`);
      return;
    }
    // (An answer without a body, to HEAD or a 204 or 304, carries no coded bytes whatever it says.)
    const coding = isBodiless(statusCode) || this.request.method === 'HEAD' ? undefined : foreignTransferCoding(rawHeaders);
    if (coding !== undefined) {
      // The function's answer, not the region's failure: not retried, not counted towards ejection.
      this.outcome = 'transfer_coding';
      controller.abort(CUT);
      this.fail('upstream_unavailable', `the function answered with transfer coding "${coding}", which the router does not pass on`);
      return;
    }
    this.status = statusCode;
    const out = downstreamResponseHeaders(rawHeaders, statusCode);
    applyStrictTransport(out, this.request.strictTransport ?? null);
    if (this.request.cookieHost !== undefined) confineCookies(out, this.request.cookieHost);
    const extra = this.request.responseHeaders;
    for (let i = 0; i < extra.length; i += 2) out.push(extra[i]!, extra[i + 1]!);
    out.push(
      'x-edge-route',
      this.route,
      'x-edge-region',
      this.region!,
      'server-timing',
      serverTimingValue(this.request.routeMs, this.upstreamMs),
    );
    if (this.request.httpVersionMajor === 1 && this.request.req.complete === false) {
      // An answer before the whole body (a function refusing an upload early): once it is over,
      // nobody reads the rest (Node discards the body of a request no one began to read, not of
      // one the exchange was streaming), so the connection could not carry another request. It
      // promised keep-alive, and sat until --client-request-timeout with a keep-alive client's next
      // request unanswered (seen in review). Closed after the answer, as respondError's are; a
      // function streaming its answer while it reads loses only keep-alive. (HTTP/2: the stream is
      // reset instead, http2-stream-pair.ts dropUnreadBody.)
      this.request.res.shouldKeepAlive = false;
    }
    try {
      this.request.res.writeHead(statusCode, out);
    } catch {
      // A head the client's protocol refused (none is known to remain): a fault of ours, answered 500.
      this.fault();
    }
  }

  onData(chunk: Buffer): boolean {
    const controller = this.controller;
    if (this.firstAbandoned || controller === undefined) return true;
    const held = this.held;
    if (held !== undefined) {
      // Kept for the client, in case it is the answer; past the limit the rest waits in the region.
      held.chunks.push(chunk);
      held.bytes += chunk.length;
      if (held.bytes >= HELD_BODY_LIMIT) controller.pause();
      return !controller.paused;
    }
    this.responseData(controller, chunk);
    return !controller.paused;
  }

  private responseData(controller: UpstreamControl, chunk: Buffer): void {
    this.bytesOut += chunk.length;
    if (!this.request.res.write(chunk)) {
      // undici may deliver data it already holds after a pause: wait for one drain at a time.
      if (this.stalledSince === 0) {
        controller.pause();
        this.stalledSince = monotonicNow();
        this.request.res.once('drain', (this.onDrain ??= () => this.drained()));
      }
      return;
    }
    // The client's kernel buffer takes megabytes before it pushes back, and a fast region delivers
    // them in one read: without a pause here one response holds the event loop for tens of
    // milliseconds (encrypting), and every other client waits. It yields a turn after each slice.
    this.sliceBytes += chunk.length;
    if (this.sliceBytes >= RESPONSE_SLICE_BYTES && !this.yielding) {
      this.sliceBytes = 0;
      this.yielding = true;
      controller.pause();
      setImmediate((this.onYielded ??= () => this.yielded()));
    }
  }

  private yielded(): void {
    this.yielding = false;
    if (this.phase === 'response' && this.stalledSince === 0) this.controller?.resume();
  }

  private drained(): void {
    this.clientWaitMs += monotonicNow() - this.stalledSince;
    this.stalledSince = 0;
    // 'drain' can fire inside a write made from onData (a pipelined response being
    // flushed), i.e. inside undici's parser, which must not be resumed re-entrantly.
    // Nor resumed if a write since stalled again (it paused, and waits for the next 'drain').
    queueMicrotask(() => {
      if (this.phase === 'response' && !this.yielding && this.stalledSince === 0) this.controller?.resume();
    });
  }

  onComplete(trailers: readonly (Buffer | string)[] | null): void {
    if (this.firstAbandoned) {
      this.releaseAbandoned();
      return;
    }
    if (this.held !== undefined) {
      // The held answer came whole: undici is done with its attempt.
      this.held.ended = true;
      this.held.trailers = trailers;
      this.releaseSlot();
      return;
    }
    this.responseEnd(trailers);
  }

  private responseEnd(trailers: readonly (Buffer | string)[] | null): void {
    this.releaseSlot();
    if (trailers !== null && trailers.length !== 0) this.forwardTrailers(trailers);
    this.request.res.end();
    this.closesAfterAnswer();
    this.finish(this.status);
  }

  /**
   * An HTTP/1 answer after which Node closes the connection (`Connection: close`, or made the last
   * by the drain while it streamed): what was pipelined behind it is dropped by the router, not by
   * its client. One still queued behind another (a waiting request answered at the drain's
   * deadline) says so when its turn comes, if it comes (connection-riders.ts closesAfter).
   */
  private closesAfterAnswer(): void {
    closesAfter(this.request.res);
  }

  /** The region's trailer fields, those an edge may pass on (headers.ts), go after the body. */
  private forwardTrailers(raw: readonly (Buffer | string)[]): void {
    const fields = downstreamTrailers(raw);
    if (fields === undefined) return;
    try {
      this.request.res.addTrailers(fields);
    } catch {
      // A value Node refuses to write (a control character, say): the trailers go, the response stays whole.
    }
  }

  onError(err: Error): void {
    if (this.firstAbandoned) {
      // The first attempt, cut or failed after its hedge won: only its slot is left to give back.
      this.releaseAbandoned();
      return;
    }
    if (this.held !== undefined) {
      // The held answer was cut (the deadline, the client gone) or broke off: the first attempt is
      // out of the race already, and counted; what the hedge does decides.
      this.held = undefined;
      this.releaseSlot();
      return;
    }
    this.responseError(err);
  }

  private responseError(err: Error): void {
    this.releaseSlot();
    if (err === HEDGE_LOST) return; // an attempt that lost to its hedge, or failed while the hedge raced on
    if (err === RETRY) {
      this.retry();
      return;
    }
    if (err instanceof Abort) return; // we cut it ourselves and have answered already
    if (this.phase === 'done') return;
    if (this.request.res.headersSent) {
      if (bodilessAnswerWhole(this.status, err)) {
        // The answer is whole: ended. Cut, the client got nothing at all (its head was still unsent).
        this.responseEnd(null);
        return;
      }
      // Mid-response: nothing to retry and nothing to say; cut the client off so it knows.
      this.outcome = classifyUpstreamError(err).cause;
      this.cutClient(err);
      this.finish(this.status);
      return;
    }
    const failure = classifyAttemptError(err, this.answerBegun);
    this.outcome = failure.cause;
    if (this.hedgeLeg?.pending === true) {
      // The hedge races on: it may still answer. If it fails too, bothFailed moves on.
      this.regionFailed(failure.cause);
      if (!failure.retryable) this.legFailedForGood = worse(this.legFailedForGood, failure.code);
      this.firstOut();
      return;
    }
    if (failure.retryable) {
      this.regionFailed(failure.cause);
      if (this.canRetry()) {
        this.retry();
        return;
      }
      if (!this.sent && this.legFailedForGood === null) {
        // Every region we could try refused before taking the request: the service is unavailable.
        this.fail('no_healthy_region', 'no region could serve the request');
        return;
      }
    }
    const answer = worse(this.legFailedForGood, failure.code);
    this.fail(answer, answer === 'upstream_timeout' ? 'the function did not answer within its time limit' : 'no region could serve the request');
  }

  private fail(code: ExchangeErrorCode, message: string): void {
    if (this.phase === 'done') return;
    this.outcome ??= code;
    const status = this.deps.respondError(this, code, message);
    this.closesAfterAnswer();
    this.finish(this.status !== 0 && this.request.res.headersSent ? this.status : status);
  }

  private finish(status: number): void {
    if (this.phase === 'done') return;
    if (this.phase === 'queued') this.deps.gates.cancel(this.region!, this);
    if (this.hedgeLeg !== undefined || this.hedgeTimer !== undefined) this.stopHedging();
    this.phase = 'done';
    this.bodyReading = false;
    this.stalledSince = 0;
    this.status = status;
    this.totalMs = performance.now() - this.request.startedAt;
    this.riders?.delete(this);
    this.deps.live.delete(this);
    this.deps.onDone(this);
  }
}

/** Of two legs' failures, the answer: a timeout's (504: a function may still be running) over any other. */
function worse(earlier: UpstreamErrorCode | null, now: UpstreamErrorCode): UpstreamErrorCode {
  return earlier === 'upstream_timeout' ? earlier : now;
}
