/**
 * HTTP/1.1 Upgrade (WebSocket) through the edge: the same admission as any request, then the
 * upgrade is made to the first region that accepts the connection, and bytes are relayed both
 * ways until either side closes. A region that refuses the connection is skipped; once a
 * region has answered, the client gets that answer. (WebSocket over HTTP/2, RFC 8441, is not
 * offered: clients fall back to HTTP/1.1.)
 * A WebSocket counts as a request in progress for its client address, for as long as it is open:
 * the per-address limit bounds upgraded connections as it bounds requests.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { RegionId } from '../core/types.js';
import { upstreamRequestHeaders } from '../proxy/headers.js';
import type { UpstreamPools } from '../proxy/pools.js';
import { classifyUpstreamError } from '../proxy/upstream-error.js';
import { admitRequest, type AdmissionDeps } from './admission.js';
import { portOf } from './request-target.js';
import type { AddressQuota } from './address-quota.js';
import { rawErrorReply, statusOf, type EdgeErrorCode } from './error-response.js';

export interface UpgradeHandlerOptions extends AdmissionDeps {
  readonly proto: 'https' | 'http';
  readonly pools: UpstreamPools;
  readonly maxAttempts: number;
  /** Requests in progress per client address (→ 429 past it); shared with plain requests. */
  readonly perClient: AddressQuota;
  readonly onDone: (facts: { requestId: string; host: string; region: RegionId | null; status: number; error: string | null }) => void;
}

export function createUpgradeHandler(options: UpgradeHandlerOptions): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return function handleUpgrade(req, socket, head) {
    socket.on('error', () => socket.destroy());
    const admission = admitRequest(req, options);
    if (!admission.ok) {
      answer(socket, admission.code, admission.message, admission.requestId);
      options.onDone({ requestId: admission.requestId, host: admission.host, region: null, status: statusOf(admission.code), error: admission.code });
      return;
    }
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      answer(socket, 'bad_request', 'only the websocket upgrade is supported', admission.requestId);
      return;
    }
    if (!options.perClient.tryTake(admission.clientIp)) {
      answer(socket, 'too_many_requests', 'too many requests in progress from this address', admission.requestId);
      options.onDone({ requestId: admission.requestId, host: admission.host, region: null, status: statusOf('too_many_requests'), error: 'too_many_requests' });
      return;
    }
    // Given back when the client's connection closes, however the upgrade went.
    socket.once('close', () => options.perClient.release(admission.clientIp));
    const headers = upstreamRequestHeaders(req.rawHeaders, {
      peerIp: admission.peer,
      clientIp: admission.clientIp,
      peerTrusted: admission.peerTrusted,
      proto: options.proto,
      host: admission.decision.host + portOf(admission.host),
      requestId: admission.requestId,
      trace: admission.trace,
      fn: admission.decision.fn,
      org: admission.decision.org,
    });
    const candidates = admission.decision.candidates.slice(0, options.maxAttempts);

    const tryRegion = async (index: number): Promise<void> => {
      const region = candidates[index]!;
      const pool = options.pools.get(region)!;
      let upgraded: Dispatcher.UpgradeData;
      try {
        upgraded = await pool.upgrade({ path: admission.path, method: 'GET', headers, protocol: 'websocket' });
      } catch (err) {
        const failure = classifyUpstreamError(err);
        if (failure.retryable && index + 1 < candidates.length && !socket.destroyed) return tryRegion(index + 1);
        answer(socket, failure.code, failure.code === 'upstream_timeout' ? 'the function did not answer in time' : 'no region accepted the upgrade', admission.requestId);
        options.onDone({ requestId: admission.requestId, host: admission.host, region, status: failure.status, error: failure.cause });
        return;
      }
      const upstream = upgraded.socket;
      if (socket.destroyed) {
        upstream.destroy();
        return;
      }
      const lines = ['HTTP/1.1 101 Switching Protocols'];
      for (const [name, value] of Object.entries(upgraded.headers)) {
        for (const v of Array.isArray(value) ? value : [value]) if (v !== undefined) lines.push(`${name}: ${v}`);
      }
      lines.push(`x-edge-region: ${region}`, `x-edge-route: ${admission.decision.reason}`, `x-request-id: ${admission.requestId}`);
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length > 0) upstream.write(head);
      upstream.on('error', () => socket.destroy());
      socket.on('close', () => upstream.destroy());
      upstream.on('close', () => socket.destroy());
      socket.pipe(upstream);
      upstream.pipe(socket);
      options.onDone({ requestId: admission.requestId, host: admission.host, region, status: 101, error: null });
    };
    void tryRegion(0);
  };
}

function answer(socket: Duplex, code: EdgeErrorCode, message: string, requestId: string): void {
  if (!socket.destroyed) socket.end(rawErrorReply(code, message, requestId));
}
