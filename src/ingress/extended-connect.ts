/**
 * WebSocket over HTTP/2 (RFC 8441): the client's side of websocket-tunnel.ts for an extended
 * CONNECT stream (`:method CONNECT`, `:protocol websocket`). The HTTPS listener announces
 * SETTINGS_ENABLE_CONNECT_PROTOCOL, so a browser that already has an HTTP/2 connection to the host
 * opens its WebSockets on it as streams (Chromium does: tested) instead of a new TLS connection each.
 *
 * The region still gets an HTTP/1.1 upgrade. HTTP/2 carries no Sec-WebSocket-Key, so the router
 * makes one up and checks the region's Sec-WebSocket-Accept itself (websocket-handshake.ts); the
 * client gets 200 with the region's end-to-end headers (the subprotocol and extensions it chose),
 * then the stream carries the WebSocket frames both ways. END_STREAM is the tunnel's half-close
 * and RST_STREAM (CANCEL) its reset, as FIN and RST are over HTTP/1.1. A region that answers 2xx
 * without switching is answered 502: over HTTP/2 a 2xx would tell the client its tunnel is open.
 * Like requests, tunnels are handled after the read that carried them, a few per connection per
 * turn, and count toward the rapid-reset verdict until they are answered.
 *
 * An open tunnel keeps its connection open: the listener closes an HTTP/2 connection that carried
 * no frame for a while (public-servers.ts), but a quiet WebSocket is not an idle connection, as
 * an upgraded HTTP/1.1 socket is not (`holdsTunnels`).
 */
import { constants, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { downstreamResponseHeaders } from '../proxy/headers.js';
import { isBodiless } from '../proxy/upstream-error.js';
import { answersWebSocketKey, newWebSocketKey } from '../proxy/websocket-handshake.js';
import { sendError, statusOf, type EdgeErrorCode } from './error-response.js';
import { handleHttp2AfterRead } from './http2-after-read.js';
import { whenClosed } from './http2-stream-hooks.js';
import { headersObjectOf, Http2StreamRequest, Http2StreamResponse } from './http2-stream-pair.js';
import { reportAdmittedStream, reportEstablishedTunnel, reportRefusedStream } from './reset-flood-guard.js';
import { routerAnswerHeaders } from '../proxy/strict-transport.js';
import { answerFields, createWebSocketTunnels, flatPairsOf, relayedFields, withoutField, type TunnelClient, type UpstreamHeadersRecord, type WebSocketTunnelOptions } from './websocket-tunnel.js';

export type ExtendedConnectHandler = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[]) => void;

export function createExtendedConnectHandler(options: WebSocketTunnelOptions): ExtendedConnectHandler {
  const tunnels = createWebSocketTunnels(options);
  // As for requests (fault-guard.ts): a throw where none was expected costs this stream, not the process.
  const guarded = (req: Http2StreamRequest, client: TunnelClient) => {
    try {
      tunnels.open(req, client);
    } catch (err) {
      options.onFault(err);
      req.stream.destroy();
    }
  };
  // Like requests, tunnels are looked at after the read that carried them, a few per connection
  // per turn (http2-after-read.ts): a burst of CONNECTs reset in the same read costs a log line each.
  const afterRead = handleHttp2AfterRead(guarded, (req) => tunnels.goneBeforeHandled(req));
  return (stream, headers, rawHeaders) => afterRead(new Http2StreamRequest(stream, headers, rawHeaders), connectStream(stream, String(headers[':protocol'] ?? '').toLowerCase(), options.sendTimeoutMs ?? 0));
}

/** Open tunnels per HTTP/2 connection. */
const TUNNELS = new WeakMap<Http2Session, number>();

/** Whether `session` carries an open tunnel: its quiet is a quiet WebSocket, not an idle connection. */
export function holdsTunnels(session: Http2Session): boolean {
  return (TUNNELS.get(session) ?? 0) > 0;
}

function countTunnel(stream: ServerHttp2Stream): void {
  const session = stream.session;
  if (session === undefined) return;
  TUNNELS.set(session, (TUNNELS.get(session) ?? 0) + 1);
  // Through the stream's one shared 'close' listener (http2-stream-hooks.ts), as its other close jobs.
  whenClosed(stream, () => TUNNELS.set(session, (TUNNELS.get(session) ?? 1) - 1));
}

const EMPTY = Buffer.alloc(0);

function connectStream(stream: ServerHttp2Stream, protocol: string, unsentTimeoutMs: number): TunnelClient {
  /** Made when the region is first asked (a stream reset before that needs none). */
  let key: string | undefined;
  // A refusal the client's window does not let out is reset after the send timeout (limitUnsent).
  const response = new Http2StreamResponse(stream, false, unsentTimeoutMs);
  const gone = () => stream.destroyed || stream.closed;
  /** Our answer is complete: a client still sending is told to stop (RST_STREAM NO_ERROR, RFC 9113 §8.1). */
  const closeWhenSent = () => {
    if (stream.writableFinished) stream.close(constants.NGHTTP2_NO_ERROR);
    else stream.once('finish', () => stream.close(constants.NGHTTP2_NO_ERROR));
  };
  const refuse = (code: EdgeErrorCode, message: string, requestId: string, routerHeaders: Readonly<Record<string, string>>): number => {
    if (gone()) return statusOf(code);
    const status = sendError(response, code, message, requestId, routerHeaders);
    closeWhenSent();
    return status;
  };
  return {
    duplex: stream,
    protocol,
    takeEarly: () => EMPTY,
    establishedStatus: 200,
    upstreamHeaders(forwarded) {
      key = newWebSocketKey();
      return [...withoutField(forwarded, 'sec-websocket-key'), 'sec-websocket-key', key];
    },
    acceptsSwitch: (headers: UpstreamHeadersRecord) => key !== undefined && answersWebSocketKey(headers, key),
    refuse: (code, message, requestId, routerHeaders) => void refuse(code, message, requestId, routerHeaders),
    relayAnswer(answer, edge, requestId) {
      const routerHeaders = routerAnswerHeaders(edge.strictTransport);
      // A 2xx answer to an extended CONNECT means "the tunnel is open" (RFC 8441 §5): a region that
      // answered 200 without switching (a function that ignores Upgrade) must not pass for one.
      // Nor can HTTP/2 carry a status outside 200–599.
      if (answer.statusCode < 300) return refuse('upstream_unavailable', `the function answered ${answer.statusCode} instead of accepting the WebSocket`, requestId, routerHeaders);
      if (answer.statusCode > 599) return refuse('upstream_unavailable', `the region answered status ${answer.statusCode}, which HTTP/2 cannot carry`, requestId, routerHeaders);
      if (gone()) return answer.statusCode;
      const flat = answerFields(relayedFields(answer), edge);
      if (!isBodiless(answer.statusCode)) flat.push('content-length', String(answer.body.length));
      response.writeHead(answer.statusCode, flat);
      response.end(answer.body);
      closeWhenSent();
      return answer.statusCode;
    },
    established(headers, edge) {
      // The region's end-to-end fields (Sec-WebSocket-Protocol, -Extensions, cookies); Upgrade and
      // Connection are hop-by-hop and Sec-WebSocket-Accept answered the router's key, not the client's.
      // The 200 is an answer on an HTTPS origin like any other: HSTS by who owns the name (answerFields).
      const flat = answerFields(withoutField(downstreamResponseHeaders(flatPairsOf(headers)), 'sec-websocket-accept'), edge);
      stream.respond(headersObjectOf(200, flat));
      countTunnel(stream);
      reportEstablishedTunnel(stream);
    },
    reset() {
      // RFC 8441 §5: a TCP reset on the far side is RST_STREAM CANCEL on this one.
      if (!gone()) stream.close(constants.NGHTTP2_CANCEL);
      else stream.destroy();
    },
    quotaTaken: () => reportAdmittedStream(stream),
    quotaRefused: (limit) => reportRefusedStream(stream.session, limit),
  };
}
