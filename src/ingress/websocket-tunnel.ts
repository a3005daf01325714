/**
 * A WebSocket through the edge, whichever way the client asked for it: an HTTP/1.1 Upgrade
 * (upgrade-handler.ts) or an HTTP/2 extended CONNECT (RFC 8441, extended-connect.ts). Both are
 * made to the region the same way, as an HTTP/1.1 upgrade through its pool; only how the client
 * is answered differs, and that is the `TunnelClient` each side supplies.
 *
 * The same admission as any request, then the upgrade is made to the first region that accepts
 * it, and bytes are relayed both ways until either side closes. Like a forwarded request, a
 * tunnel is one access-log line and one observation in the metrics (the established status when
 * the tunnel closes, with the bytes relayed), a region that fails it counts towards its outlier
 * ejection, and moving on to the next region draws on the retry budget. A region that answers
 * without switching protocols answers the client: its 502/503/504 moves the upgrade to the next
 * region like any failure; any other status (the function refusing WebSockets, or this client)
 * is relayed as it is, body included. Whichever answer the client gets carries HSTS as a
 * forwarded answer does, by who owns the name (`answerFields`, strict-transport.ts); the router's
 * own refusals carry its HSTS under the zone and none on a custom domain, as its other answers do.
 * A WebSocket counts as a request in progress for its client address, for as long as it is open:
 * the per-address limit bounds tunnels as it bounds requests. Until the region answers, the
 * upgrade waits like a request: for a slot of the region's gate (it holds one of the pool's
 * connections), within the queue timeout, then for the head within the tier deadline; a client
 * that closes or half-closes meanwhile gives back the slot and cuts the upstream request (over
 * HTTP/2, a reset does; an END_STREAM is not seen before the tunnel exists, and the region's answer
 * then ends it). An established tunnel has left undici's pool, and holds no slot. The work on the
 * region's answer runs under `onFault`: a throw there costs the tunnel, not the process. On
 * shutdown, a drain waits for upgrades in progress as it does for requests; at its deadline an
 * upgrade still waiting is answered 503 and a tunnel is cut (upgrades-in-progress.ts).
 */
import { monotonicNow } from '../core/monotonic-clock.js';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { RegionId } from '../core/types.js';
import type { AccessContext, AccessOutcome } from '../observability/access-log.js';
import { downstreamResponseHeaders, foreignTransferCoding, upstreamRequestHeaders } from '../proxy/headers.js';
import { applyStrictTransport, routerAnswerHeaders, routerAnswerHeadersFor, strictTransportFor, strictTransportPolicies, type RouterAnswerFields, type StrictTransportPolicy } from '../proxy/strict-transport.js';
import { tenantOfFailure, type Ejection, type OutlierDetector } from '../proxy/outlier-detector.js';
import type { UpstreamPools } from '../proxy/pools.js';
import type { RetryBudget } from '../proxy/retry-budget.js';
import type { Prewarm } from '../proxy/prewarm.js';
import { answeredByContainer, classifyAttemptError, isBodiless, isRetryableStatus, type UpstreamFailure } from '../proxy/upstream-error.js';
import { requestUpgrade, type PendingUpgrade, type UpgradeResult } from '../proxy/upgrade-request.js';
import type { GateWaiter, RegionGates } from '../proxy/region-gate.js';
import type { TimeoutTier } from '../core/types.js';
import { errors as undiciErrors } from 'undici';
import type { AddressQuota } from './address-quota.js';
import { admitRequest, type AdmissionDeps, type AnyRequest } from './admission.js';
import { statusOf, type EdgeErrorCode } from './error-response.js';
import { goneBeforeHandled, routedContext, unroutedContext } from './request-context.js';
import { portOf } from './request-target.js';
import { closedAsStalled } from './send-stall-watch.js';
import type { UpgradesInProgress } from './upgrades-in-progress.js';
import { confineCookies, cookieHostOf } from '../proxy/cookie-scope.js';

export type RegionAnswer = Extract<UpgradeResult, { kind: 'answered' }>;
export type UpstreamHeadersRecord = Readonly<Record<string, string | string[] | undefined>>;

/** What the router adds to a region's answer to an upgrade (its 101, or one that refuses). */
export interface EdgeFields {
  /** x-edge-region, x-edge-route, x-request-id: flat [name, value, …], after the function's fields. */
  readonly headers: readonly string[];
  /** Whose Strict-Transport-Security the answer carries (strict-transport.ts); null: the function's, as it is. */
  readonly strictTransport: StrictTransportPolicy | null;
  /** The platform name the answer's cookies are confined to (cookie-scope.ts); undefined on a custom domain. */
  readonly cookieHost: string | undefined;
}

/**
 * A region's answer fields (flat, lower-case, changed in place) as the client gets them: HSTS by
 * who owns the name, as on a forwarded answer (exchange.ts), then the edge's own fields. Both
 * client sides write their answers through it, so a 101, an HTTP/2 tunnel's 200 and a refusal
 * follow the one rule.
 */
export function answerFields(fields: string[], edge: EdgeFields): string[] {
  applyStrictTransport(fields, edge.strictTransport);
  if (edge.cookieHost !== undefined) confineCookies(fields, edge.cookieHost);
  for (let i = 0; i < edge.headers.length; i++) fields.push(edge.headers[i]!);
  return fields;
}

/** The client's side of a tunnel: what differs between an HTTP/1.1 Upgrade and an HTTP/2 extended CONNECT. */
export interface TunnelClient {
  /** Bytes both ways once the tunnel is up: the upgraded socket, or the HTTP/2 stream. */
  readonly duplex: Duplex;
  /** The protocol the client asked to switch to, lower-cased ('' when it named none). */
  readonly protocol: string;
  /** Why this request cannot open a tunnel, when its own protocol's rules tell (HTTP/1.1: not a GET, a body, no Sec-WebSocket-Key); absent: it can. */
  readonly malformed?: string;
  /**
   * Bytes the client sent after its head, before the tunnel existed (HTTP/1.1: `head` and what
   * came after it, early-bytes.ts), taken once when the tunnel is up, before it reads the client's side.
   */
  takeEarly(): Buffer;
  /** The status the client sees when the tunnel is up (101 over HTTP/1.1, 200 over HTTP/2): logged. */
  readonly establishedStatus: number;
  /** The forwarded headers completed for the region (HTTP/2: a Sec-WebSocket-Key of the router's own). */
  upstreamHeaders(forwarded: string[]): string[];
  /** Whether the region's 101 completes this client's handshake: its Sec-WebSocket-Accept answers the key sent (the client's, or over HTTP/2 the router's). */
  acceptsSwitch(headers: UpstreamHeadersRecord): boolean;
  /**
   * An edge error answer, with `routerHeaders` (its HSTS as on the router's other own answers: the
   * router's under the zone, none on a custom domain); then the client's side closes for good.
   */
  refuse(code: EdgeErrorCode, message: string, requestId: string, routerHeaders: RouterAnswerFields): void;
  /**
   * The region's answer that is not a switch, as the client's answer (its fields through
   * `answerFields`); then the client's side closes. Returns the status the client got (HTTP/2
   * cannot carry every answer as it is: then the router's own refusal, its fields by
   * `edge.strictTransport` as every router answer's).
   */
  relayAnswer(answer: RegionAnswer, edge: EdgeFields, requestId: string): number;
  /** The head that tells the client the tunnel is up (the region's 101 headers, as this protocol carries them, through `answerFields`). */
  established(headers: UpstreamHeadersRecord, edge: EdgeFields): void;
  /** The region's end was reset: the client's side is reset too (RST over TCP, RST_STREAM CANCEL over HTTP/2). */
  reset(): void;
  /** The tunnel took a slot of the address's requests in progress (HTTP/2: for the rapid-reset verdict). */
  quotaTaken?(): void;
  /** The tunnel was refused for the address's `limit` requests in progress. */
  quotaRefused?(limit: number): void;
}

/**
 * How tunnels are opened: `open` takes a request to a region; `goneBeforeHandled` logs one never
 * looked at, its client gone (499), or `byRouter`, its connection closed by the router first (0
 * router_closed).
 */
export interface WebSocketTunnels {
  open(req: AnyRequest, client: TunnelClient): void;
  goneBeforeHandled(req: AnyRequest, byRouter?: boolean): void;
}

export interface WebSocketTunnelOptions extends AdmissionDeps {
  readonly proto: 'https' | 'http';
  /**
   * The router's Strict-Transport-Security (null = none: a plain-HTTP listener, or none
   * configured). Placed on an upgrade's answers as on forwarded ones: by who owns the name.
   */
  readonly hsts: string | null;
  /** The platform's zone: on its names the router's HSTS alone (strict-transport.ts). */
  readonly zone: string;
  readonly pools: UpstreamPools;
  readonly maxAttempts: number;
  /** Requests in progress per client address (→ 429 past it); shared with plain requests. */
  readonly perClient: AddressQuota;
  /** Shared with forwarded requests: failing over is a retry. */
  readonly budget: RetryBudget;
  /** Shared with forwarded requests: a region that fails upgrades is ejected like one that fails requests. */
  readonly outliers: OutlierDetector;
  readonly onEjection: (ejection: Ejection) => void;
  /** Asks a cold region for a container when latency routing passed it over (absent: off). */
  readonly prewarm?: Prewarm;
  /** Called once per upgrade when it is over (refused, failed, or its tunnel closed): access log and metrics. */
  readonly onAccess: (context: AccessContext, outcome: AccessOutcome) => void;
  /** Shared with forwarded requests: a pending upgrade holds one of its region's slots, as a request does. */
  readonly gates: RegionGates;
  /** Whether a region may be sent to now (not drained, ejected or down); absent: every candidate is. */
  readonly regionUsable?: (region: RegionId, nowMs: number) => boolean;
  /** How long an upgrade may wait for a slot (--queue-timeout). */
  readonly queueTimeoutMs: number;
  /** The tier deadline bounds the wait for the region's head, as for any request. */
  readonly tierTimeoutMs: Readonly<Record<TimeoutTier, number>>;
  /** Cap on waiting for the region's head (--headers-timeout). */
  readonly headersTimeoutMs: number;
  /**
   * --send-timeout (0 or absent: no limit): how long an HTTP/2 answer that does not open a tunnel
   * may wait, once ended, for its client to read it, and how long an open tunnel's client may take
   * none of what the function sends.
   */
  readonly sendTimeoutMs?: number;
  /** An established tunnel that carries no byte either way this long is closed (0 or absent: never). */
  readonly idleTimeoutMs?: number;
  /** A throw where none was expected: the connection is closed and the fault logged. */
  readonly onFault: (err: unknown) => void;
  /** Told +1 when a tunnel is established and -1 when it closes (the open-tunnels gauge). */
  readonly onTunnel?: (delta: 1 | -1) => void;
  /** Where a drain finds the upgrades it waits for, and the tunnels it cuts at its deadline (absent: not tracked). */
  readonly inProgress?: UpgradesInProgress;
  /** Whether the router is draining: a new tunnel is then refused (below). */
  readonly draining?: () => boolean;
}

/**
 * When the region closes its end after a clean finish, what was already written to the client
 * (a WebSocket close frame, say) still has this long to leave before the client's side is cut;
 * and after either side's FIN (a half-close), the other side has this long to finish its own.
 */
export const FLUSH_GRACE_MS = 5_000;

export function createWebSocketTunnels(options: WebSocketTunnelOptions): WebSocketTunnels {
  const strictTransport = strictTransportPolicies(options.hsts);
  return {
    open,
    goneBeforeHandled(req, byRouter = false) {
      const { context, outcome } = goneBeforeHandled(req, options, byRouter);
      options.onAccess(context, outcome);
    },
  };

  function open(req: AnyRequest, client: TunnelClient): void {
    const { duplex } = client;
    duplex.on('error', () => duplex.destroy());
    const admission = admitRequest(req, options);
    const outcome = (status: number, error: string | null, region: RegionId | null = null, tried: readonly RegionId[] = []): AccessOutcome => ({
      region,
      tried,
      status,
      error,
      bytesIn: 0,
      bytesOut: 0,
      upstreamMs: 0,
      totalMs: performance.now() - admission.startedAt,
    });
    if (!admission.ok) {
      client.refuse(admission.code, admission.message, admission.requestId, routerAnswerHeadersFor(strictTransport, admission.routedHost, options.zone));
      const context = unroutedContext(req, { requestId: admission.requestId, traceId: admission.trace.traceId, host: admission.host, clientIp: admission.clientIp });
      options.onAccess(context, outcome(statusOf(admission.code), admission.code));
      return;
    }
    const context = routedContext(req, admission);
    const { decision } = admission;
    const hostStrictTransport = strictTransportFor(strictTransport, decision.host, options.zone);
    const cookieHost = cookieHostOf(decision.host, options.zone);
    // The router's own answers on this name: its HSTS under the zone, none on a custom domain.
    const routerHeaders = routerAnswerHeaders(hostStrictTransport);
    // However the upgrade ends, it ends once: then latency routing's count for its region is taken
    // back, and a drain stops waiting for it (see `over` below). The count follows the upgrade to
    // each region it goes on to (`counted`).
    let counted = decision;
    let countEnded = false;
    const endCount = () => {
      if (countEnded) return;
      countEnded = true;
      options.decider.finished(counted, options.snapshot(), Date.now());
    };
    let over: (() => void) | undefined;
    let forgetShutdown: (() => void) | undefined;
    const onAccess = (ctx: AccessContext, out: AccessOutcome) => {
      over?.();
      forgetShutdown?.();
      endCount();
      options.onAccess(ctx, out);
    };
    if (decision.prewarm !== undefined) options.prewarm?.(decision.prewarm, decision.fn, decision.org);
    const refuse = (code: EdgeErrorCode, message: string) => {
      client.refuse(code, message, admission.requestId, routerHeaders);
      onAccess(context, outcome(statusOf(code), code));
    };
    if (client.protocol !== 'websocket') return refuse('bad_request', 'only the websocket upgrade is supported');
    if (client.malformed !== undefined) return refuse('bad_request', client.malformed);
    // A connection whose TLS handshake (or PROXY header) straddled the drain's start reaches here
    // with the listeners already closed. A tunnel opened now would hold the drain to its deadline
    // and be cut there; refused 503 with Retry-After, the client reconnects to another router at
    // once. (A request is still served: it ends.)
    if (options.draining?.() === true) return refuse('shutting_down', 'this router is shutting down; try again');
    if (!options.perClient.tryTake(admission.clientIp)) {
      client.quotaRefused?.(options.perClient.limit);
      return refuse('too_many_requests', 'too many requests in progress from this address');
    }
    if (options.perClient.limit > 0) client.quotaTaken?.();
    // Given back when the client's side closes, however the upgrade went.
    duplex.once('close', () => options.perClient.release(admission.clientIp));
    options.budget.recordRequest();
    const headers = client.upstreamHeaders(
      upstreamRequestHeaders(req.rawHeaders, {
        peerIp: admission.peer,
        clientIp: admission.clientIp,
        peerTrusted: admission.peerTrusted,
        trustedChain: options.clientAddressHeader,
        proto: options.proto,
        host: admission.decision.host + portOf(admission.host),
        requestId: admission.requestId,
        trace: admission.trace,
        fn: admission.decision.fn,
        org: admission.decision.org,
      }),
    );
    const candidates = admission.decision.candidates.slice(0, options.maxAttempts);
    const tried: RegionId[] = [];
    /** Why the upgrade left the candidate before the one it is at (x-edge-route). */
    let movedBecause: 'error' | 'unavailable' = 'error';
    const deadlineAt = monotonicNow() + options.tierTimeoutMs[decision.fnRecord.tier];

    // Until the tunnel is up, the upgrade waits for a gate slot, then for the region's head. A
    // client that leaves meanwhile, by closing or by half-closing (it can send nothing more), is
    // gone: its place in the queue, its upstream request and its per-address slot go with it.
    let waiting: { region: RegionId; waiter: GateWaiter } | undefined;
    let inFlight: PendingUpgrade | undefined;
    let settled = false;
    /** Set once the tunnel is up: how the drain's deadline ends it. */
    let cutTunnel: (() => void) | undefined;
    const clientLeft = () => {
      if (settled) return;
      settled = true;
      if (waiting?.waiter.gateQueued === true) {
        options.gates.cancel(waiting.region, waiting.waiter);
        onAccess(context, outcome(499, 'client_closed', waiting.region, tried));
      }
      inFlight?.abort(CLIENT_LEFT); // its attempt logs the 499 and gives the slot back
      duplex.destroy();
    };
    duplex.once('end', clientLeft);
    duplex.once('close', clientLeft);
    const giveUp = (code: 'capacity_exhausted' | 'no_healthy_region', region: RegionId) => {
      settled = true;
      client.refuse(code, code === 'capacity_exhausted' ? 'every region is at capacity; try again shortly' : 'no region could serve the request', admission.requestId, routerHeaders);
      onAccess(context, outcome(statusOf(code), code, region, tried));
    };

    /** Leaves the index-th candidate for the next. */
    const moveOn = (index: number, because: typeof movedBecause): void => {
      movedBecause = because;
      tryRegion(index + 1);
    };

    /** Queues for a slot of the index-th candidate; admitted, it asks the region. */
    const tryRegion = (index: number): void => {
      const region = candidates[index]!;
      tried.push(region);
      // A region ranked at admission may have been drained, ejected or marked down while an earlier
      // one failed (a connect timeout takes seconds): the next is asked instead, as a request does
      // (exchange.ts). Not in panic, which chose regions known to be down.
      if (index > 0 && decision.reason !== 'panic' && options.regionUsable?.(region, Date.now()) === false) {
        if (index + 1 < candidates.length) return moveOn(index, 'unavailable');
        return giveUp('no_healthy_region', region);
      }
      if (index > 0 && !countEnded) counted = options.decider.moved(counted, region, options.snapshot(), Date.now());
      const waiter: GateWaiter = {
        tenant: decision.org,
        upload: false,
        // Routed in panic, to regions known to be down: keep the place (region-gate.ts).
        panic: decision.reason === 'panic',
        gateDeadline: Math.min(monotonicNow() + options.queueTimeoutMs, deadlineAt),
        gateQueued: false,
        admitted: () => ask(index, region),
        turnedAway: (reason) => {
          if (settled) return;
          // Nothing was sent: the next candidate may take it (no retry budget, as for requests).
          if (index + 1 < candidates.length) return moveOn(index, 'error');
          giveUp(reason === 'queue_timeout' ? 'capacity_exhausted' : 'no_healthy_region', region);
        },
      };
      waiting = { region, waiter };
      const entered = options.gates.enter(region, waiter);
      if (entered === 'admitted') ask(index, region);
      else if (entered !== 'queued') waiter.turnedAway('queue_timeout');
    };

    /** The region failed this upgrade: count it, then the next candidate or an answer. */
    const failed = (index: number, region: RegionId, failure: UpstreamFailure): void => {
      const ejection = options.outliers.failure(region, failure.cause, tenantOfFailure(failure.cause, decision.org));
      if (ejection !== undefined) options.onEjection(ejection);
      if (failure.retryable && index + 1 < candidates.length && options.budget.tryAcquire(true, admission.decision.org)) return moveOn(index, 'error');
      settled = true;
      client.refuse(failure.code, failure.code === 'upstream_timeout' ? 'the function did not answer in time' : 'no region accepted the upgrade', admission.requestId, routerHeaders);
      onAccess(context, outcome(failure.status, failure.cause, region, tried));
    };

    /** askRegion, whose throw where none was expected costs this tunnel (a fault), not the process. */
    const ask = (index: number, region: RegionId): void => {
      askRegion(index, region).catch((err: unknown) => {
        options.onFault(err);
        duplex.destroy();
        // The fault may have come before any access line: a drain must not wait for it, latency
        // routing's count must not stay taken, and its shutdown cut (which holds the request and
        // its client's side) must not stay in the router's list of them for as long as it runs.
        over?.();
        forgetShutdown?.();
        endCount();
      });
    };

    /** Holds a slot of `region` until its answer (a 101 takes the connection out of the pool). */
    const askRegion = async (index: number, region: RegionId): Promise<void> => {
      const pool = options.pools.get(region)!;
      const attemptStartedAt = performance.now();
      const route = index === 0 ? admission.decision.reason : `failover:${candidates[index - 1]!}-${movedBecause}`;
      const remainingMs = deadlineAt - monotonicNow();
      let result: UpgradeResult;
      try {
        if (settled) throw CLIENT_LEFT; // left between admission to the slot and now
        if (remainingMs <= 0) throw new HeadersTimeoutError();
        inFlight = requestUpgrade(pool, { path: admission.path, headers, protocol: 'websocket', headersTimeoutMs: Math.min(options.headersTimeoutMs, remainingMs), answerTimeoutMs: remainingMs });
        result = await inFlight.result;
      } catch (err) {
        options.gates.leave(region, decision.org, false);
        const answerBegun = inFlight?.answerBegun === true;
        inFlight = undefined;
        if (err === SHUTTING_DOWN) return; // the drain's deadline answered the client and logged it
        if (err === CLIENT_LEFT || duplex.destroyed) {
          onAccess(context, outcome(499, 'client_closed', region, tried));
          return;
        }
        return failed(index, region, classifyAttemptError(err, answerBegun));
      }
      options.gates.leave(region, decision.org, false);
      inFlight = undefined;
      const upstreamMs = performance.now() - attemptStartedAt;
      const edge: EdgeFields = { headers: ['x-edge-region', region, 'x-edge-route', route, 'x-request-id', admission.requestId], strictTransport: hostStrictTransport, cookieHost };
      if (result.kind === 'answered') {
        // The region answered without switching protocols. 502/503/504 moves the upgrade to the
        // next region, as for any request, and counts against this one when the region itself
        // refused (at capacity, say), not a function's container. Anything else is the function's
        // answer (it refuses WebSockets, or this client): the client gets it.
        if (isRetryableStatus(result.statusCode)) {
          const ejection = answeredByContainer(result.headers) ? undefined : options.outliers.failure(region, `status ${result.statusCode}`);
          if (ejection !== undefined) options.onEjection(ejection);
          if (!duplex.destroyed && index + 1 < candidates.length && options.budget.tryAcquire(true, admission.decision.org)) return moveOn(index, 'error');
        } else {
          options.outliers.success(region);
        }
        settled = true;
        if (isGone(duplex)) return onAccess(context, { ...outcome(499, 'client_closed', region, tried), upstreamMs });
        // A refusal in a transfer coding the router does not pass on (`gzip, chunked`): undici took
        // the chunked framing off and left the rest, and its bytes reached the client as the content
        // itself. A 502, as the request path answers it: the function's answer, not retried (its
        // status counted for the region above as any refusal's is).
        const coding = isBodiless(result.statusCode) ? undefined : foreignTransferCoding(flatPairsOf(result.headers));
        if (coding !== undefined) {
          client.refuse('upstream_unavailable', `the function answered with transfer coding "${coding}", which the router does not pass on`, admission.requestId, routerHeaders);
          onAccess(context, { ...outcome(statusOf('upstream_unavailable'), 'transfer_coding', region, tried), upstreamMs, route });
          return;
        }
        const sent = client.relayAnswer(result, edge, admission.requestId);
        const error = sent !== result.statusCode ? `region answered ${result.statusCode}` : sent >= 500 ? `status ${sent}` : null;
        onAccess(context, { ...outcome(sent, error, region, tried), bytesOut: result.body.length, upstreamMs, route });
        return;
      }
      const upstream = result.socket;
      if (!client.acceptsSwitch(result.headers)) {
        // A 101 that does not answer the key the region was sent: not a WebSocket server that
        // read this request. Nothing reached the client, so this is a region failing, as a reset is.
        upstream.destroy();
        if (settled || isGone(duplex)) return onAccess(context, { ...outcome(499, 'client_closed', region, tried), upstreamMs });
        return failed(index, region, { code: 'upstream_unavailable', status: statusOf('upstream_unavailable'), retryable: true, cause: 'bad_websocket_accept' });
      }
      options.outliers.success(region);
      settled = true;
      duplex.removeListener('end', clientLeft);
      duplex.removeListener('close', clientLeft);
      // A half-close is relayed, not taken for a close (as nginx and HAProxy relay them): each
      // side's FIN ends the other's writing only, through pipe(). Neither socket allows that by
      // default: undici connects without allowHalfOpen, and so does the TLS listener, so a
      // region's FIN shut the client's way in (its next bytes were lost), and an HTTPS client's
      // FIN shut the region's way out (what it sent after was lost). Node reads the flag when the
      // FIN arrives. The idle timeout still ends a tunnel left half-open.
      duplex.allowHalfOpen = true;
      upstream.allowHalfOpen = true;
      if (isGone(duplex)) {
        upstream.destroy();
        onAccess(context, { ...outcome(499, 'client_closed', region, tried), upstreamMs });
        return;
      }
      try {
        client.established(result.headers, edge);
      } catch (err) {
        // Nothing holds the region's socket yet (undici let go of it): it goes, and the upgrade is logged, before ask() reports the fault.
        upstream.destroy();
        onAccess(context, { ...outcome(statusOf('internal_error'), 'internal_error', region, tried), upstreamMs });
        throw err;
      }
      options.onTunnel?.(1);
      const early = client.takeEarly();
      if (early.length > 0) upstream.write(early);
      // Counted for the access line written when the tunnel closes.
      let bytesIn = early.length;
      let bytesOut = 0;
      let closedBy: string | null = null;
      duplex.on('data', (chunk: Buffer) => (bytesIn += chunk.length));
      upstream.on('data', (chunk: Buffer) => (bytesOut += chunk.length));
      upstream.on('error', () => client.reset());
      // Every byte either way passes through the region's socket, so its own timer (refreshed by
      // each read and write, no per-message work here) tells an idle tunnel.
      /** The edge ends the tunnel, for the reason its access line gives. */
      const cut = (why: 'idle_timeout' | 'send_timeout' | 'half_close_timeout' | 'shutdown') => {
        closedBy = why;
        client.reset();
        upstream.destroy();
      };
      const idleMs = options.idleTimeoutMs ?? 0;
      if (idleMs > 0 && typeof (upstream as Partial<Socket>).setTimeout === 'function') {
        (upstream as Socket).setTimeout(idleMs, () => cut('idle_timeout'));
      }
      cutTunnel = () => cut('shutdown');
      // pipe() pauses the region's side while the client's is full and resumes it on 'drain': paused
      // for the send timeout, the client took nothing. Over HTTP/2 nothing else would end such a
      // tunnel while the client keeps sending; over HTTP/1.1 the connection sweep would, a second
      // later (send-stall-watch.ts). A timer only while paused: a tunnel that flows arms none.
      const sendTimeoutMs = options.sendTimeoutMs ?? 0;
      let stalled: NodeJS.Timeout | undefined;
      let finishing: NodeJS.Timeout | undefined;
      // No timer once either side has closed: the pipe's own cleanup pauses the region's side when
      // the client's closes, after the client's close was handled. Armed then, the timer outlived
      // the tunnel and held the process that long after a drain cut it (30 s past --drain-timeout: seen in review).
      let closed = false;
      const disarm = () => {
        closed = true;
        clearTimeout(stalled);
        clearTimeout(finishing);
      };
      // After one side's FIN the other has FLUSH_GRACE_MS to finish too (a WebSocket's closing
      // frames), as HAProxy's client-fin and server-fin bound a half-closed tunnel. Unbounded, a
      // client that had closed kept its place among its address's requests for as long as a
      // region that ignores FINs kept its end open, up to the idle timeout.
      const halfClosed = () => {
        if (!closed) finishing ??= setTimeout(() => cut('half_close_timeout'), FLUSH_GRACE_MS);
      };
      duplex.once('end', halfClosed);
      upstream.once('end', halfClosed);
      if (sendTimeoutMs > 0) {
        upstream.on('pause', () => {
          if (!closed) stalled ??= setTimeout(() => cut('send_timeout'), sendTimeoutMs);
        });
        upstream.on('resume', () => {
          clearTimeout(stalled);
          stalled = undefined;
        });
      }
      upstream.once('close', disarm);
      upstream.on('close', () => closeAfterFlush(client));
      // One listener for everything the client's close ends: Node, the listener and pipe() have
      // theirs on the same socket, and one per job here made eleven on a TLS socket, past Node's
      // limit of ten (a MaxListenersExceededWarning on stderr for every WebSocket: seen in review).
      duplex.once('close', () => {
        disarm();
        upstream.destroy();
        options.onTunnel?.(-1);
        // An HTTP/1.1 client that took nothing the function sent is closed by the connection sweep (send-stall-watch.ts).
        onAccess(context, { ...outcome(client.establishedStatus, closedBy ?? (closedAsStalled(duplex) ? 'send_timeout' : null), region, tried), bytesIn, bytesOut, upstreamMs, route });
      });
      duplex.pipe(upstream);
      upstream.pipe(duplex);
    };
    // From here the upgrade waits for its region, and a drain waits for it (the refusals above end
    // within this call). A throw where none was expected must not leave the drain waiting.
    over = options.inProgress?.begin();
    // The drain's deadline: an open tunnel is cut; an upgrade still waiting is answered 503
    // shutting_down, as a request is. Forgotten with the access line (onAccess).
    forgetShutdown = options.inProgress?.cuttable(() => {
      if (cutTunnel !== undefined) return cutTunnel();
      if (settled) return;
      settled = true;
      if (waiting?.waiter.gateQueued === true) options.gates.cancel(waiting.region, waiting.waiter);
      inFlight?.abort(SHUTTING_DOWN);
      client.refuse('shutting_down', 'this router is shutting down; try again', admission.requestId, routerHeaders);
      onAccess(context, outcome(statusOf('shutting_down'), 'shutdown', waiting?.region ?? null, tried));
    });
    try {
      tryRegion(0);
    } catch (err) {
      over?.();
      forgetShutdown?.();
      endCount();
      throw err;
    }
  }
}

/**
 * The region's end closed. After a clean end (the pipe has ended the client's side) what was
 * written still goes out, within FLUSH_GRACE_MS; after a reset the client's side is cut at once.
 * Over HTTP/2 this matters: destroying the stream sends RST_STREAM, which throws away the DATA
 * still waiting for the client's flow-control window (a slow reader lost the region's last
 * kilobytes that way: tested).
 */
function closeAfterFlush(client: TunnelClient): void {
  const { duplex } = client;
  if (duplex.destroyed) return;
  if (!duplex.writableEnded) return client.reset();
  if (duplex.writableFinished) return void duplex.destroy();
  const timer = setTimeout(() => duplex.destroy(), FLUSH_GRACE_MS);
  timer.unref();
  duplex.once('close', () => clearTimeout(timer));
  duplex.once('finish', () => duplex.destroy());
}

/** The client's side can take nothing more (an HTTP/2 stream can be closed before it is destroyed). */
const isGone = (duplex: Duplex): boolean => duplex.destroyed || duplex.closed;

/**
 * A region's answer to an upgrade it did not take, its end-to-end fields as the client gets them.
 * Its Content-Length only on a 304 (the 200's length, RFC 9110 §8.6); any other length the relayer
 * states from the body it holds, and a 204 or 205 states none.
 */
export function relayedFields(answer: RegionAnswer): string[] {
  const fields = downstreamResponseHeaders(flatPairsOf(answer.headers), answer.statusCode);
  return answer.statusCode === 304 ? fields : withoutField(fields, 'content-length');
}

/** Flat [name, value, …] pairs without the field `name` (lower-case, as both sides give them). */
export function withoutField(flat: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < flat.length; i += 2) if (flat[i] !== name) out.push(flat[i]!, flat[i + 1]!);
  return out;
}

/** undici's header record as flat [name, value, …] pairs, repeats kept. */
export function flatPairsOf(headers: UpstreamHeadersRecord): string[] {
  const pairs: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    for (const v of value === undefined ? [] : Array.isArray(value) ? value : [value]) pairs.push(name, v);
  }
  return pairs;
}

/** The client left while its upgrade was on its way (an abort reason of ours, never a region's failure). */
const CLIENT_LEFT = new Error('EDGE_CLIENT_LEFT');
/** The drain's deadline cut an upgrade still waiting for its region (an abort reason of ours). */
const SHUTTING_DOWN = new Error('EDGE_SHUTTING_DOWN');
const { HeadersTimeoutError } = undiciErrors;
