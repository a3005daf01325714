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
 * and RST_STREAM its reset, as FIN and RST are over HTTP/1.1.
 *
 * An open tunnel keeps its connection open: the listener closes an HTTP/2 connection that carried
 * no frame for a while (public-servers.ts), but a quiet WebSocket is not an idle connection, as
 * an upgraded HTTP/1.1 socket is not (`holdsTunnels`).
 */
import { constants, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { downstreamResponseHeaders } from '../proxy/headers.js';
import { answersWebSocketKey, newWebSocketKey } from '../proxy/websocket-handshake.js';
import { sendError, type EdgeErrorCode } from './error-response.js';
import { headersObjectOf, Http2StreamRequest, Http2StreamResponse } from './http2-stream-pair.js';
import { reportEstablishedTunnel } from './reset-flood-guard.js';
import { createWebSocketTunnels, flatPairsOf, type TunnelClient, type UpstreamHeadersRecord, type WebSocketTunnelOptions } from './websocket-tunnel.js';

export type ExtendedConnectHandler = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[]) => void;

export function createExtendedConnectHandler(options: WebSocketTunnelOptions): ExtendedConnectHandler {
  const open = createWebSocketTunnels(options);
  // As for requests (fault-guard.ts): a throw where none was expected costs this stream, not the process.
  return function guardedConnect(stream, headers, rawHeaders) {
    try {
      open(new Http2StreamRequest(stream, headers, rawHeaders), connectStream(stream, String(headers[':protocol'] ?? '').toLowerCase()));
    } catch (err) {
      options.onFault(err);
      stream.destroy();
    }
  };
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
  stream.once('close', () => TUNNELS.set(session, (TUNNELS.get(session) ?? 1) - 1));
}

const EMPTY = Buffer.alloc(0);

function connectStream(stream: ServerHttp2Stream, protocol: string): TunnelClient {
  const key = newWebSocketKey();
  const response = new Http2StreamResponse(stream);
  /** Our answer is complete: a client still sending is told to stop (RST_STREAM NO_ERROR, RFC 9113 §8.1). */
  const closeWhenSent = () => {
    if (stream.writableFinished) stream.close(constants.NGHTTP2_NO_ERROR);
    else stream.once('finish', () => stream.close(constants.NGHTTP2_NO_ERROR));
  };
  return {
    duplex: stream,
    protocol,
    early: EMPTY,
    establishedStatus: 200,
    upstreamHeaders(forwarded) {
      const out: string[] = [];
      for (let i = 0; i < forwarded.length; i += 2) if (forwarded[i] !== 'sec-websocket-key') out.push(forwarded[i]!, forwarded[i + 1]!);
      out.push('sec-websocket-key', key);
      return out;
    },
    acceptsSwitch: (headers: UpstreamHeadersRecord) => answersWebSocketKey(headers, key),
    refuse(code: EdgeErrorCode, message: string, requestId: string) {
      if (stream.destroyed || stream.closed) return;
      sendError(response, code, message, requestId);
      closeWhenSent();
    },
    relayAnswer(answer, edgeHeaders, requestId) {
      if (stream.destroyed || stream.closed) return;
      if (answer.statusCode < 200 || answer.statusCode > 599) {
        // HTTP/2 carries no such status (as for requests: error-response's 502 saying so).
        sendError(response, 'upstream_unavailable', `the region answered status ${answer.statusCode}, which HTTP/2 cannot carry`, requestId);
        return closeWhenSent();
      }
      const fields = downstreamResponseHeaders(flatPairsOf(answer.headers));
      const flat: string[] = [];
      for (let i = 0; i < fields.length; i += 2) if (fields[i] !== 'content-length') flat.push(fields[i]!, fields[i + 1]!);
      flat.push('content-length', String(answer.body.length), ...edgeHeaders);
      response.writeHead(answer.statusCode, flat);
      response.end(answer.body);
      closeWhenSent();
    },
    established(headers, edgeHeaders) {
      // The region's end-to-end fields (Sec-WebSocket-Protocol, -Extensions, cookies); Upgrade and
      // Connection are hop-by-hop and Sec-WebSocket-Accept answered the router's key, not the client's.
      const fields = downstreamResponseHeaders(flatPairsOf(headers));
      const flat: string[] = [];
      for (let i = 0; i < fields.length; i += 2) if (fields[i] !== 'sec-websocket-accept') flat.push(fields[i]!, fields[i + 1]!);
      flat.push(...edgeHeaders);
      stream.respond(headersObjectOf(200, flat));
      countTunnel(stream);
      reportEstablishedTunnel(stream);
    },
  };
}
