/**
 * The public request pipeline: admission (target, SNI, client, route) → limits → forward.
 * Written against node:http's (req, res) directly rather than through Hono: the proxy path
 * measured ~2× cheaper without the Web Request/Response conversion (docs/performance-notes.md), and
 * it needs raw headers anyway. Hono serves the admin API, where convenience matters more.
 */
import { monotonicNow } from '../core/monotonic-clock.js';
import type { ServerResponse } from 'node:http';
import type { Http2ServerResponse, ServerHttp2Stream } from 'node:http2';
import type { Http2StreamResponse } from './http2-stream-pair.js';
import type { TimeoutTier } from '../core/types.js';
import { upstreamRequestHeaders } from '../proxy/headers.js';
import { routerAnswerHeaders, routerAnswerHeadersFor, strictTransportFor, strictTransportPolicies, type StrictTransportPolicy } from '../proxy/strict-transport.js';
import { Exchange, type ExchangeDeps } from '../proxy/exchange.js';
import { closesAfter } from '../proxy/connection-riders.js';
import { admitRequest, peerOf, routedHostOf, type Admission, type AdmissionDeps, type AnyRequest } from './admission.js';
import { handleHttp2AfterRead } from './http2-after-read.js';
import { reportAdmittedStream, reportRefusedStream } from './reset-flood-guard.js';
import type { AddressQuota } from './address-quota.js';
import type { InFlight } from './in-flight.js';
import type { Prewarm } from '../proxy/prewarm.js';
import { sendError } from './error-response.js';
import { guardRequests } from './fault-guard.js';
import { goneBeforeHandled, routedContext, unroutedContext, unroutedPathOf } from './request-context.js';
import { portOf } from './request-target.js';
import type { AccessContext, AccessOutcome, AccessRecord } from '../observability/access-log.js';
import type { RouteDecision } from '../routing/route-decider.js';
import { cookieHostOf } from '../proxy/cookie-scope.js';

export type { AnyRequest };
export type AnyResponse = ServerResponse | Http2StreamResponse | Http2ServerResponse;

export type { AccessRecord };

export interface EdgeHandlerOptions extends AdmissionDeps {
  readonly proto: 'https' | 'http';
  /**
   * Strict-Transport-Security value for HTTPS answers (null = none). On a forwarded answer it
   * replaces the function's own under `zone` and gives way to it on a custom domain; the router's
   * own answers carry it under `zone` and not on a custom domain (strict-transport.ts).
   */
  readonly hsts: string | null;
  /** The platform's zone: its names are the platform's, whatever a function says about HSTS. */
  readonly zone: string;
  readonly tierTimeoutMs: Readonly<Record<TimeoutTier, number>>;
  readonly maxBodyBytes: Readonly<Record<TimeoutTier, number>>;
  readonly exchange: Omit<ExchangeDeps, 'respondError' | 'onDone'>;
  /** While draining, HTTP/1 answers carry `Connection: close`. */
  readonly draining: () => boolean;
  /** Called once per request when it is over (access log, metrics), with the context admission built and the final outcome. */
  readonly onAccess: (context: AccessContext, outcome: AccessOutcome) => void;
  /** Counts forwarded requests in flight (the drain waits for zero). */
  readonly inFlight: InFlight;
  /** Requests in progress per client address (→ 429 past it). */
  readonly perClient: AddressQuota;
  /** Asks a cold region for a container when latency routing passed it over (absent: off). */
  readonly prewarm?: Prewarm;
  /** A throw where none was expected, caught so that one request cannot take the process down (logged). */
  /** A fault of the router's own; with the id of the request it cost, when one did. */
  readonly onFault: (err: unknown, requestId?: string) => void;
}

export function createEdgeHandler(options: EdgeHandlerOptions): (req: AnyRequest, res: AnyResponse) => void {
  const { proto, hsts, zone } = options;
  const strictTransport = strictTransportPolicies(hsts);

  // Decisions latency routing counted against a region, by their request's context, so the count
  // is taken back when the request ends (a WeakMap: nothing to forget on any exit path).
  const counted = new WeakMap<AccessContext, Extract<RouteDecision, { ok: true }>>();
  const hedgeCounted = new WeakMap<AccessContext, Extract<RouteDecision, { ok: true }>>();
  const release = (context: AccessContext) => {
    const decision = counted.get(context);
    if (decision !== undefined) options.decider.finished(decision, options.snapshot(), Date.now());
  };

  const exchangeDeps: ExchangeDeps<AccessContext> = {
    ...options.exchange,
    respondError: (exchange, code, message) => {
      const res = exchange.request.res as ServerResponse;
      // A body we will not read must not hold the connection: close it after the answer.
      if (res.req?.complete === false) res.shouldKeepAlive = false;
      const headers = { ...routerAnswerHeaders(exchange.request.strictTransport ?? null), 'x-edge-route': exchange.route };
      return sendError(res, code, message, exchange.request.context.requestId, headers, exchange.request.context.traceId ?? undefined);
    },
    // Latency routing's count follows the request to the region that now holds it.
    onMoved: (exchange, region) => {
      const decision = counted.get(exchange.request.context);
      if (decision !== undefined) counted.set(exchange.request.context, options.decider.moved(decision, region, options.snapshot(), Date.now()));
    },
    // A hedge holds a container of its own while it races; adopted, it is the request's.
    onHedge: (exchange, region, event) => {
      const context = exchange.request.context;
      if (event === 'sent') {
        const decision = counted.get(context);
        if (decision !== undefined) hedgeCounted.set(context, options.decider.alsoSent(decision, region, options.snapshot(), Date.now()));
        return;
      }
      const hedge = hedgeCounted.get(context);
      if (hedge === undefined) return;
      hedgeCounted.delete(context);
      if (event === 'over') return options.decider.finished(hedge, options.snapshot(), Date.now());
      release(context); // adopted, or alone: the first attempt was cut or failed
      counted.set(context, hedge);
    },
    onDone: (exchange) => {
      options.inFlight.leave();
      options.perClient.release(exchange.request.context.clientIp);
      release(exchange.request.context);
      options.onAccess(exchange.request.context, exchange.result());
    },
  };

  /** The access-log line of a request answered (or abandoned) before it had a route. */
  const logUnrouted = (req: AnyRequest, requestId: string, traceId: string | null, host: string, clientIp: string, status: number, error: string, startedAt: number, path = '') =>
    options.onAccess(unroutedContext(req, { requestId, traceId, host, clientIp, path }), {
      region: null,
      tried: [],
      status,
      error,
      bytesIn: 0,
      bytesOut: 0,
      upstreamMs: 0,
      totalMs: performance.now() - startedAt,
    });

  // Reset before it was looked at (rapid reset): one access line, nothing else.
  const logResetBeforeHandled = (req: AnyRequest) => {
    const { context, outcome } = goneBeforeHandled(req, options);
    options.onAccess(context, outcome);
  };

  // A fault's answer is rare: its name is resolved again for it rather than remembered per request.
  const faultHeaders = (req: AnyRequest) => routerAnswerHeadersFor(strictTransport, routedHostOf(req, options), zone);
  // Its access line: nothing of the request was trusted (the fault may be in reading it), so the host is as sent.
  const logFaultAnswer = (req: AnyRequest, requestId: string, status: number) => {
    const host = req.headers[':authority'] ?? req.headers.host;
    logUnrouted(req, requestId, null, typeof host === 'string' ? host : '', peerOf(req), status, 'internal_error', performance.now(), unroutedPathOf(req.url ?? ''));
  };
  const guarded = (handle: (req: AnyRequest, res: AnyResponse) => void) => guardRequests(handle, options.onFault, faultHeaders, logFaultAnswer);

  return handleHttp2AfterRead(guarded(function handleEdgeRequest(req: AnyRequest, res: AnyResponse) {
    const admission = admitRequest(req, options);
    if (options.draining() && req.httpVersionMajor === 1) (res as ServerResponse).shouldKeepAlive = false;

    if (!admission.ok) {
      const routerHeaders = routerAnswerHeadersFor(strictTransport, admission.routedHost, zone);
      const headers = admission.retryAfterS === undefined ? routerHeaders : { ...routerHeaders, 'retry-after': String(admission.retryAfterS) };
      // Whatever body the client was sending is not wanted; do not let it sit in the socket. Before
      // the head: Node decides `Connection` as it writes it, and the close (a lingering one) follows.
      if (bodyMayBeUnread(req)) (res as ServerResponse).shouldKeepAlive = false;
      const status = sendError(res as ServerResponse, admission.code, admission.message, admission.requestId, headers, admission.trace.traceId);
      // An answer that closes its connection (the drain's, or one before an unread body) drops what
      // was pipelined behind it: the router's doing, logged router_closed, not the client's 499.
      closesAfter(res as ServerResponse);
      logUnrouted(req, admission.requestId, admission.trace.traceId, admission.host, admission.clientIp, status, admission.code, admission.startedAt);
      return;
    }
    const { decision, requestId } = admission;
    if (decision.prewarm !== undefined) options.prewarm?.(decision.prewarm, decision.fn, decision.org);
    // Whose HSTS this name's answers carry, the function's and the router's own alike: one of two prebuilt policies.
    const hostStrictTransport = strictTransportFor(strictTransport, decision.host, zone);

    // Limits known before reading the body.
    const tier = decision.fnRecord.tier;
    const maxBody = options.maxBodyBytes[tier];
    const cl = req.headers['content-length'];
    const contentLength = cl === undefined ? 0 : Number(cl);
    const context = routedContext(req, admission);
    if (decision.sent !== undefined) counted.set(context, decision);
    if (!options.perClient.tryTake(admission.clientIp)) {
      release(context);
      if (req.httpVersionMajor >= 2) reportRefusedStream((req as { stream: ServerHttp2Stream }).stream.session, options.perClient.limit);
      if (bodyMayBeUnread(req)) (res as ServerResponse).shouldKeepAlive = false; // before the head, as above
      const status = sendError(res as ServerResponse, 'too_many_requests', 'too many requests in progress from this address', requestId, routerAnswerHeaders(hostStrictTransport), admission.trace.traceId);
      closesAfter(res as ServerResponse);
      options.onAccess(context, { region: null, tried: [], status, error: 'too_many_requests', bytesIn: 0, bytesOut: 0, upstreamMs: 0, totalMs: performance.now() - admission.startedAt });
      return;
    }
    if (req.httpVersionMajor >= 2 && options.perClient.limit > 0) reportAdmittedStream((req as { stream: ServerHttp2Stream }).stream);
    let exchange: Exchange<AccessContext>;
    try {
      exchange = forwardAdmitted(req, res, admission, context, cl, contentLength, maxBody, tier, hostStrictTransport);
    } catch (err) {
      // Nothing took the slot and the count over yet: give them back, then the guard answers.
      options.perClient.release(admission.clientIp);
      release(context);
      throw err;
    }
    options.inFlight.enter();
    try {
      if (contentLength > maxBody) {
        // Answered through the exchange so the access log and in-flight count stay in one place.
        exchange.refuse('payload_too_large', `the request body is larger than ${maxBody} bytes`);
        return;
      }
      exchange.start();
    } catch (err) {
      options.onFault(err, requestId);
      exchange.fault();
    }
  }), guarded(logResetBeforeHandled));

  /** The exchange for an admitted request: upstream headers, body framing, deadline. */
  function forwardAdmitted(
    req: AnyRequest,
    res: AnyResponse,
    admission: Extract<Admission, { ok: true }>,
    context: AccessContext,
    cl: string | undefined,
    contentLength: number,
    maxBody: number,
    tier: TimeoutTier,
    strictTransportPolicy: StrictTransportPolicy | null,
  ): Exchange<AccessContext> {
    const { decision, requestId } = admission;
    const method = req.method ?? 'GET';
    const responseHeaders = ['x-request-id', requestId];
    // HTTP/2: a stream left open after its HEADERS carries a body, announced or not (RFC 9113 §8.1:
    // content-length is optional there); only an explicit `content-length: 0` says it is empty.
    const hasBody =
      req.httpVersionMajor >= 2
        ? !(req as { stream: ServerHttp2Stream }).stream.endAfterHeaders && (cl === undefined || contentLength !== 0)
        : contentLength > 0 || req.headers['transfer-encoding'] !== undefined;

    return new Exchange<AccessContext>(
      {
        req,
        res: res as ServerResponse,
        httpVersionMajor: req.httpVersionMajor,
        reason: decision.reason,
        method,
        path: admission.path,
        headers: upstreamRequestHeaders(req.rawHeaders, {
          peerIp: admission.peer,
          clientIp: admission.clientIp,
          peerTrusted: admission.peerTrusted,
          trustedChain: options.clientAddressHeader,
          proto,
          // What routing saw is what the region sees: the normalised name (and the client's port).
          host: decision.host + portOf(admission.host),
          requestId,
          trace: admission.trace,
          fn: decision.fn,
          org: decision.org,
        }),
        candidates: decision.candidates,
        tenant: decision.org,
        hedge: decision.hedge,
        hasBody,
        expectsContinue: hasBody && expectsContinue(req),
        takesInterimAnswers: takesInterimAnswers(req),
        maxBodyBytes: maxBody,
        deadlineAt: monotonicNow() + options.tierTimeoutMs[tier],
        responseHeaders,
        strictTransport: strictTransportPolicy,
        cookieHost: cookieHostOf(decision.host, zone),
        routeMs: admission.routeMs,
        startedAt: admission.startedAt,
        context,
      },
      exchangeDeps,
    );
  }
}

/**
 * An HTTP/1 request answered from inside Node's parser callback whose body may still be coming.
 * Not `!req.complete` alone: a request without a body is not complete yet either while its head is
 * handled (Node marks it so right after), and closing after every refused GET would cost keep-alive
 * for nothing. One whose transfer coding was refused may look complete to Node and is not.
 */
function bodyMayBeUnread(req: AnyRequest): boolean {
  if (req.httpVersionMajor !== 1) return false;
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const length = req.headers['content-length'];
  return !req.complete && length !== undefined && length !== '0';
}

/**
 * Node's test for an HTTP/1.1 `Expect: 100-continue` (its `continueExpression`): with a
 * 'checkContinue' listener (public-servers.ts) it leaves such a request's 100 to the handler.
 * An HTTP/2 stream reaches the handler only with `100-continue` or no expectation at all
 * (serveHttp2Stream answers any other 417), and its 100 is the handler's too.
 */
const CONTINUE_EXPECTATION = /(?:^|\W)100-continue(?:$|\W)/i;
function expectsContinue(req: AnyRequest): boolean {
  const expect = req.headers.expect;
  if (expect === undefined) return false;
  return takesInterimAnswers(req) && CONTINUE_EXPECTATION.test(expect);
}

/** HTTP/1.1 or HTTP/2: a client that may be sent 1xx answers (RFC 9110 §15.2: an HTTP/1.0 one may not). */
function takesInterimAnswers(req: AnyRequest): boolean {
  return req.httpVersionMajor >= 2 || (req.httpVersionMajor === 1 && req.httpVersionMinor === 1);
}
