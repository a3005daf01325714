/**
 * HTTP/1.1 Upgrade (WebSocket) through the edge: the same admission as any request, then the
 * upgrade is made to the first region that accepts the connection, and bytes are relayed both
 * ways until either side closes. Like a forwarded request, an upgrade is one access-log line and
 * one observation in the metrics (status 101 when the tunnel closes, with the bytes relayed), a
 * region that fails it counts towards its outlier ejection, and moving on to the next region
 * draws on the retry budget. A region that answers without switching protocols answers the
 * client: its 502/503/504 moves the upgrade to the next region like any failure; any other status
 * (the function refusing WebSockets, or this client) is relayed as it is, body included.
 * (WebSocket over HTTP/2, RFC 8441, is not offered: clients fall back to HTTP/1.1.)
 * A WebSocket counts as a request in progress for its client address, for as long as it is open:
 * the per-address limit bounds upgraded connections as it bounds requests. Until the region
 * answers, the upgrade waits like a request: for a slot of the region's gate (it holds one of the
 * pool's connections), within the queue timeout, then for the head within the tier deadline; a
 * client that closes or half-closes meanwhile gives back the slot and cuts the upstream request.
 * An established tunnel has left undici's pool, and holds no slot.
 */
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { RegionId } from '../core/types.js';
import type { AccessContext, AccessOutcome } from '../observability/access-log.js';
import { downstreamResponseHeaders, upstreamRequestHeaders } from '../proxy/headers.js';
import type { Ejection, OutlierDetector } from '../proxy/outlier-detector.js';
import type { UpstreamPools } from '../proxy/pools.js';
import type { RetryBudget } from '../proxy/retry-budget.js';
import type { Prewarm } from '../proxy/prewarm.js';
import { classifyUpstreamError, isRetryableStatus } from '../proxy/upstream-error.js';
import { requestUpgrade, type PendingUpgrade, type UpgradeResult } from '../proxy/upgrade-request.js';
import type { GateWaiter, RegionGates } from '../proxy/region-gate.js';
import type { TimeoutTier } from '../core/types.js';
import { errors as undiciErrors } from 'undici';
import type { AddressQuota } from './address-quota.js';
import { admitRequest, type AdmissionDeps } from './admission.js';
import { rawErrorReply, statusOf, type EdgeErrorCode } from './error-response.js';
import { routedContext, unroutedContext } from './request-context.js';
import { portOf } from './request-target.js';

export interface UpgradeHandlerOptions extends AdmissionDeps {
  readonly proto: 'https' | 'http';
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
  /** How long an upgrade may wait for a slot (--queue-timeout). */
  readonly queueTimeoutMs: number;
  /** The tier deadline bounds the wait for the region's head, as for any request. */
  readonly tierTimeoutMs: Readonly<Record<TimeoutTier, number>>;
  /** Cap on waiting for the region's head (--headers-timeout). */
  readonly headersTimeoutMs: number;
  /** A throw where none was expected: the connection is closed and the fault logged. */
  readonly onFault: (err: unknown) => void;
}

export function createUpgradeHandler(options: UpgradeHandlerOptions): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  // As for requests (fault-guard.ts): a throw where none was expected costs this connection, not the process.
  return function guardedUpgrade(req, socket, head) {
    try {
      handleUpgrade(req, socket, head);
    } catch (err) {
      options.onFault(err);
      socket.destroy();
    }
  };

  function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
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
      answer(socket, admission.code, admission.message, admission.requestId);
      const context = unroutedContext(req, { requestId: admission.requestId, traceId: admission.trace.traceId, host: admission.host, clientIp: admission.clientIp });
      options.onAccess(context, outcome(statusOf(admission.code), admission.code));
      return;
    }
    const context = routedContext(req, admission);
    const { decision } = admission;
    // However the upgrade ends, it ends once: then latency routing's count for its region is taken back.
    const onAccess = (ctx: AccessContext, out: AccessOutcome) => {
      options.decider.finished(decision, options.snapshot(), Date.now());
      options.onAccess(ctx, out);
    };
    if (decision.prewarm !== undefined) options.prewarm?.(decision.prewarm, decision.fn, decision.org);
    const refuse = (code: EdgeErrorCode, message: string) => {
      answer(socket, code, message, admission.requestId);
      onAccess(context, outcome(statusOf(code), code));
    };
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return refuse('bad_request', 'only the websocket upgrade is supported');
    if (!options.perClient.tryTake(admission.clientIp)) return refuse('too_many_requests', 'too many requests in progress from this address');
    // Given back when the client's connection closes, however the upgrade went.
    socket.once('close', () => options.perClient.release(admission.clientIp));
    options.budget.recordRequest();
    const headers = upstreamRequestHeaders(req.rawHeaders, {
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
    });
    const candidates = admission.decision.candidates.slice(0, options.maxAttempts);
    const tried: RegionId[] = [];
    const deadlineAt = Date.now() + options.tierTimeoutMs[decision.fnRecord.tier];

    // Until the tunnel is up, the upgrade waits for a gate slot, then for the region's head. A
    // client that leaves meanwhile, by closing or by half-closing (it can send nothing more), is
    // gone: its place in the queue, its upstream request and its per-address slot go with it.
    let waiting: { region: RegionId; waiter: GateWaiter } | undefined;
    let inFlight: PendingUpgrade | undefined;
    let settled = false;
    const clientLeft = () => {
      if (settled) return;
      settled = true;
      if (waiting?.waiter.gateQueued === true) {
        options.gates.cancel(waiting.region, waiting.waiter);
        onAccess(context, outcome(499, 'client_closed', waiting.region, tried));
      }
      inFlight?.abort(CLIENT_LEFT); // its attempt logs the 499 and gives the slot back
      socket.destroy();
    };
    socket.once('end', clientLeft);
    socket.once('close', clientLeft);
    const giveUp = (code: 'capacity_exhausted' | 'no_healthy_region', region: RegionId) => {
      settled = true;
      answer(socket, code, code === 'capacity_exhausted' ? 'every region is at capacity; try again shortly' : 'no region could serve the request', admission.requestId);
      onAccess(context, outcome(statusOf(code), code, region, tried));
    };

    /** Queues for a slot of the index-th candidate; admitted, it asks the region. */
    const tryRegion = (index: number): void => {
      const region = candidates[index]!;
      tried.push(region);
      const waiter: GateWaiter = {
        upload: false,
        gateDeadline: Math.min(Date.now() + options.queueTimeoutMs, deadlineAt),
        gateQueued: false,
        admitted: () => void askRegion(index, region),
        turnedAway: (reason) => {
          if (settled) return;
          // Nothing was sent: the next candidate may take it (no retry budget, as for requests).
          if (index + 1 < candidates.length) return tryRegion(index + 1);
          giveUp(reason === 'queue_timeout' ? 'capacity_exhausted' : 'no_healthy_region', region);
        },
      };
      waiting = { region, waiter };
      const entered = options.gates.enter(region, waiter);
      if (entered === 'admitted') void askRegion(index, region);
      else if (entered === 'refused') waiter.turnedAway('queue_timeout');
    };

    /** Holds a slot of `region` until its answer (a 101 takes the connection out of the pool). */
    const askRegion = async (index: number, region: RegionId): Promise<void> => {
      const pool = options.pools.get(region)!;
      const attemptStartedAt = performance.now();
      const route = index === 0 ? admission.decision.reason : `failover:${candidates[index - 1]!}-error`;
      const remainingMs = deadlineAt - Date.now();
      let result: UpgradeResult;
      try {
        if (settled) throw CLIENT_LEFT; // left between admission to the slot and now
        if (remainingMs <= 0) throw new HeadersTimeoutError();
        inFlight = requestUpgrade(pool, { path: admission.path, headers, protocol: 'websocket', headersTimeoutMs: Math.min(options.headersTimeoutMs, remainingMs) });
        result = await inFlight.result;
      } catch (err) {
        options.gates.leave(region, false);
        inFlight = undefined;
        if (err === CLIENT_LEFT || socket.destroyed) {
          onAccess(context, outcome(499, 'client_closed', region, tried));
          return;
        }
        const failure = classifyUpstreamError(err);
        const ejection = options.outliers.failure(region, failure.cause);
        if (ejection !== undefined) options.onEjection(ejection);
        if (failure.retryable && index + 1 < candidates.length && options.budget.tryAcquire()) return tryRegion(index + 1);
        settled = true;
        answer(socket, failure.code, failure.code === 'upstream_timeout' ? 'the function did not answer in time' : 'no region accepted the upgrade', admission.requestId);
        onAccess(context, outcome(failure.status, failure.cause, region, tried));
        return;
      }
      options.gates.leave(region, false);
      inFlight = undefined;
      const upstreamMs = performance.now() - attemptStartedAt;
      if (result.kind === 'answered') {
        // The region answered without switching protocols. 502/503/504 is the region's own
        // trouble (at capacity, say): count it and try the next, as for any request. Anything else
        // is the function's answer (it refuses WebSockets, or this client): the client gets it.
        if (isRetryableStatus(result.statusCode)) {
          const ejection = options.outliers.failure(region, `status ${result.statusCode}`);
          if (ejection !== undefined) options.onEjection(ejection);
          if (!socket.destroyed && index + 1 < candidates.length && options.budget.tryAcquire()) return tryRegion(index + 1);
        } else {
          options.outliers.success(region);
        }
        settled = true;
        if (socket.destroyed) return onAccess(context, { ...outcome(499, 'client_closed', region, tried), upstreamMs });
        relayAnswer(socket, result, [`x-edge-region: ${region}`, `x-edge-route: ${route}`, `x-request-id: ${admission.requestId}`]);
        onAccess(context, { ...outcome(result.statusCode, result.statusCode >= 500 ? `status ${result.statusCode}` : null, region, tried), bytesOut: result.body.length, upstreamMs, route });
        return;
      }
      options.outliers.success(region);
      const upstream = result.socket;
      settled = true;
      socket.removeListener('end', clientLeft);
      if (socket.destroyed) {
        upstream.destroy();
        onAccess(context, { ...outcome(499, 'client_closed', region, tried), upstreamMs });
        return;
      }
      const lines = ['HTTP/1.1 101 Switching Protocols'];
      for (const [name, value] of Object.entries(result.headers)) {
        for (const v of Array.isArray(value) ? value : [value]) if (v !== undefined) lines.push(`${name}: ${v}`);
      }
      lines.push(`x-edge-region: ${region}`, `x-edge-route: ${route}`, `x-request-id: ${admission.requestId}`);
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length > 0) upstream.write(head);
      // Counted for the access line written when the tunnel closes.
      let bytesIn = head.length;
      let bytesOut = 0;
      socket.on('data', (chunk: Buffer) => (bytesIn += chunk.length));
      upstream.on('data', (chunk: Buffer) => (bytesOut += chunk.length));
      upstream.on('error', () => socket.destroy());
      socket.on('close', () => upstream.destroy());
      upstream.on('close', () => socket.destroy());
      socket.once('close', () => onAccess(context, { ...outcome(101, null, region, tried), bytesIn, bytesOut, upstreamMs, route }));
      socket.pipe(upstream);
      upstream.pipe(socket);
    };
    tryRegion(0);
  }
}

/** The client left while its upgrade was on its way (an abort reason of ours, never a region's failure). */
const CLIENT_LEFT = new Error('EDGE_CLIENT_LEFT');
const { HeadersTimeoutError } = undiciErrors;

/** The refusal, then the connection closed for good: a client that never closes its side holds nothing. */
function answer(socket: Duplex, code: EdgeErrorCode, message: string, requestId: string): void {
  if (!socket.destroyed) socket.end(rawErrorReply(code, message, requestId), () => socket.destroy());
}

/** A region's (non-101) answer to the upgrade, as the client's answer: its status, its end-to-end headers, its body; then the connection closes. */
function relayAnswer(socket: Duplex, result: Extract<UpgradeResult, { kind: 'answered' }>, extra: readonly string[]): void {
  const lines = [`HTTP/1.1 ${result.statusCode} ${STATUS_CODES[result.statusCode] ?? 'Unknown'}`];
  const pairs: string[] = [];
  for (const [name, value] of Object.entries(result.headers)) {
    for (const v of value === undefined ? [] : Array.isArray(value) ? value : [value]) pairs.push(name, v);
  }
  const headers = downstreamResponseHeaders(pairs);
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] !== 'content-length') lines.push(`${headers[i]}: ${headers[i + 1]}`);
  }
  lines.push(`content-length: ${result.body.length}`, 'connection: close', ...extra);
  socket.end(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), result.body]), () => socket.destroy());
}
