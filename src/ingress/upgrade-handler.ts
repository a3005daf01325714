/**
 * HTTP/1.1 Upgrade (WebSocket) through the edge: the client's side of websocket-tunnel.ts for an
 * upgraded socket. Answers are written as raw HTTP/1.1 bytes (there is no response object once
 * Node hands out an upgrade), and every answer but the 101 closes the connection.
 */
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { downstreamResponseHeaders } from '../proxy/headers.js';
import { isBodiless } from '../proxy/upstream-error.js';
import { answersWebSocketKey, isWebSocketKey } from '../proxy/websocket-handshake.js';
import { collectEarlyBytes } from './early-bytes.js';
import { afterAnswerAhead } from './ignored-upgrade.js';
import { endUpgradedSocket, rawErrorReply, type EdgeErrorCode } from './error-response.js';
import { answerFields, createWebSocketTunnels, flatPairsOf, relayedFields, type EdgeFields, type RegionAnswer, type TunnelClient, type UpstreamHeadersRecord, type WebSocketTunnelOptions } from './websocket-tunnel.js';

export type UpgradeHandlerOptions = WebSocketTunnelOptions;

export function createUpgradeHandler(options: UpgradeHandlerOptions): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  const tunnels = createWebSocketTunnels(options);
  // As for requests (fault-guard.ts): a throw where none was expected costs this connection, not the process.
  const openNow = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    try {
      tunnels.open(req, upgradedSocket(socket, head, (req.headers.upgrade ?? '').toLowerCase(), malformedUpgrade(req), req.headers['sec-websocket-key']));
    } catch (err) {
      options.onFault(err);
      socket.destroy();
    }
  };
  return function guardedUpgrade(req, socket, head) {
    // Pipelined behind a request whose answer is still being written, its turn comes after that
    // answer. Opened at once, its 101 and the region's first frames went out first, and the earlier
    // answer was written into the WebSocket's bytes (or its refusal was read as the earlier
    // request's answer).
    // One that never has its turn is logged as a request there would be: 0 router_closed, or 499.
    afterAnswerAhead(socket, () => openNow(req, socket, head), (byRouter) => tunnels.goneBeforeHandled(req, byRouter));
  };
}

/**
 * Why an HTTP/1.1 upgrade cannot open a WebSocket (RFC 6455 §4.1: the opening handshake is a GET
 * with a Sec-WebSocket-Key), or undefined. The region is always asked with GET, and Node's parser does not read an upgrade's
 * body: it is left in the bytes after the head, which go to the region as the tunnel's first
 * bytes. A POST with a body reached the function as a GET, its body passed off as the client's
 * WebSocket frames (seen in review); a proxy in front that took it for an ordinary request would
 * disagree with the region about where the request ended.
 */
function malformedUpgrade(req: IncomingMessage): string | undefined {
  if (req.method !== 'GET') return 'a WebSocket upgrade must be a GET';
  const length = req.headers['content-length'];
  if (req.headers['transfer-encoding'] !== undefined || (length !== undefined && Number(length) !== 0)) return 'a WebSocket upgrade must not carry a body';
  // The region's 101 is checked against it (RFC 6455 §4.2.1: a server answers 400 without one).
  if (!isWebSocketKey(req.headers['sec-websocket-key'])) return 'a WebSocket upgrade needs one Sec-WebSocket-Key of 16 bytes, base64';
  return undefined;
}

function upgradedSocket(socket: Duplex, head: Buffer, protocol: string, malformed: string | undefined, key: string | undefined): TunnelClient {
  // Read from now on, so that a client that half-closes while the region has not answered yet is
  // seen to leave even when it sent bytes before its FIN.
  const early = collectEarlyBytes(socket, head);
  return {
    duplex: socket,
    protocol,
    ...(malformed === undefined ? {} : { malformed }),
    takeEarly: () => early.take(),
    establishedStatus: 101,
    // The client's own Sec-WebSocket-Key travels with the forwarded headers. The client checks the
    // region's answer too, but only the router can fail over from a wrong 101 and count it against
    // the region (a misbehaving orchestrator, a middlebox), as it does for HTTP/2 clients.
    upstreamHeaders: (forwarded) => forwarded,
    acceptsSwitch: (headers) => key !== undefined && answersWebSocketKey(headers, key),
    refuse(code: EdgeErrorCode, message: string, requestId: string, routerHeaders: Readonly<Record<string, string>>) {
      endUpgradedSocket(socket, rawErrorReply(code, message, requestId, routerHeaders));
    },
    relayAnswer: (answer, edge) => relayAnswer(socket, answer, edge),
    reset: () => void socket.destroy(),
    established(headers: UpstreamHeadersRecord, edge: EdgeFields) {
      // The region's end-to-end fields as on any answer (downstreamResponseHeaders: no hop-by-hop
      // or Connection-named field, the router's X-Request-Id only, the container's word kept),
      // Sec-WebSocket-Accept among them (it answered this client's key); then this hop's Upgrade
      // and Connection. HSTS follows who owns the name (answerFields). Written as latin1, as
      // undici read the values: a UTF-8 write turned a byte like é into two.
      const fields = answerFields(downstreamResponseHeaders(flatPairsOf(headers), 101), edge);
      const lines = ['HTTP/1.1 101 Switching Protocols', 'upgrade: websocket', 'connection: Upgrade', ...headerLines(fields)];
      socket.write(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
    },
  };
}

/** A region's (non-101) answer to the upgrade, as the client's answer: its status, its end-to-end headers, its body; then the connection closes. */
function relayAnswer(socket: Duplex, answer: RegionAnswer, edge: EdgeFields): number {
  const status = answer.statusCode;
  const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}`];
  lines.push(...headerLines(answerFields(relayedFields(answer), edge)));
  // A 204 or 205 states no length and a 304 only the one its function gave (the 200's): `0` misstated it.
  const bodiless = isBodiless(status);
  if (!bodiless) lines.push(`content-length: ${answer.body.length}`);
  lines.push('connection: close');
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  endUpgradedSocket(socket, bodiless ? head : Buffer.concat([head, answer.body]));
  return status;
}

/** Flat [name, value, …] pairs as HTTP/1.1 header lines. */
function headerLines(pairs: readonly string[]): string[] {
  const lines: string[] = [];
  for (let i = 0; i < pairs.length; i += 2) lines.push(`${pairs[i]!}: ${pairs[i + 1]!}`);
  return lines;
}
