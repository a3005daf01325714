/**
 * The one place where a public request's error becomes HTTP: the status from the catalogue
 * (core/errors.ts) and the JSON body `{ "error": { "code", "message", "requestId" } }`, written
 * through a Node response (sendError) or raw onto a socket that has no response (rawErrorReply). Messages are fixed texts or name only what
 * the client sent; internal addresses and stack traces never leave.
 */
import type { Duplex } from 'node:stream';
import { statusOf, type RequestErrorCode } from '../core/errors.js';
import type { RouteErrorCode } from '../routing/route-decider.js';

/** The codes a public request may be answered with (core/errors.ts gives each its status). */
export type EdgeErrorCode = RequestErrorCode;

export { statusOf };

/** RFC 9110 §10.2.3: a 503 or 429 says when to come back; a second is short enough to ride out a failover. */
const RETRY_AFTER_SECONDS = '1';

function retryAfterOf(status: number): string | undefined {
  return status === 503 || status === 429 ? RETRY_AFTER_SECONDS : undefined;
}

/** Routing errors in the client's terms: every host problem is `invalid_host`, except a name we do not serve. */
export function edgeCodeForRoute(code: RouteErrorCode): EdgeErrorCode {
  switch (code) {
    case 'host_outside_zone':
      return 'unknown_host';
    case 'function_not_found':
    case 'function_disabled':
    case 'deadline_unreachable':
    case 'registry_unreachable':
      return code;
    case 'no_eligible_region':
      return 'no_healthy_region';
    default:
      return 'invalid_host';
  }
}

export function errorBody(code: EdgeErrorCode, message: string, requestId: string, traceId?: string): string {
  return JSON.stringify({ error: traceId === undefined ? { code, message, requestId } : { code, message, requestId, traceId } });
}

/** The parts of a Node response (HTTP/1 or HTTP/2 compat) an error answer needs. */
export interface ErrorTarget {
  readonly headersSent: boolean;
  writeHead(status: number, headers: Record<string, string | number>): unknown;
  end(body?: string): unknown;
}

export function sendError(
  res: ErrorTarget,
  code: EdgeErrorCode,
  message: string,
  requestId: string,
  extraHeaders: Record<string, string> = {},
  traceId?: string,
): number {
  const status = statusOf(code);
  if (res.headersSent) return status;
  const body = errorBody(code, message, requestId, traceId);
  const headers: Record<string, string | number> = {
    ...extraHeaders,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'x-request-id': requestId,
  };
  const retryAfter = retryAfterOf(status);
  if (retryAfter !== undefined && headers['retry-after'] === undefined) headers['retry-after'] = retryAfter;
  res.writeHead(status, headers);
  res.end(body);
  return status;
}

/**
 * A whole HTTP/1.1 error answer as bytes, for a socket that has no response object: a request
 * the parser refused, or an upgrade refused before it became one (with the router's HSTS in
 * `extraHeaders`, as its other own answers). The connection closes after it.
 */
export function rawErrorReply(code: EdgeErrorCode, message: string, requestId: string | null, extraHeaders: Readonly<Record<string, string>> = {}): string {
  const body = errorBody(code, message, requestId ?? '-');
  let extra = requestId === null ? '' : `x-request-id: ${requestId}\r\n`;
  for (const [name, value] of Object.entries(extraHeaders)) extra += `${name}: ${value}\r\n`;
  // Date as on every answer Node writes (RFC 9110 §6.6.1: an origin with a clock sends it).
  const date = `date: ${new Date().toUTCString()}\r\n`;
  const connection = code === 'upgrade_required' ? UPGRADE_TO_TLS : 'connection: close\r\n';
  return `HTTP/1.1 ${statusOf(code)} ${code.replace(/_/g, ' ')}\r\n${date}content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${connection}${extra}\r\n${body}`;
}

/**
 * A 426 names the protocol to switch to (RFC 9110 §15.5.22 requires it): TLS, in RFC 2817 §4.2's
 * words, since the plain port refuses an upgrade only to send it to HTTPS. A sender of Upgrade lists
 * it among the connection options (§7.8), beside the close.
 */
const UPGRADE_TO_TLS = 'upgrade: TLS/1.2, HTTP/1.1\r\nconnection: Upgrade, close\r\n';

function destroyOnError(this: Duplex): void {
  this.destroy();
}

/** How long a last answer on an upgraded socket may take to leave before the socket is destroyed anyway. */
const LAST_ANSWER_MS = 10_000;

/**
 * Writes a last answer onto a socket Node handed out as an upgrade (refused, or answered without
 * switching), then destroys it. No server timeout watches such a socket any more, and the plain
 * listener allows half-open connections: ended but not destroyed, it stayed open for as long as the
 * client kept its side open, holding the address's connection slot (on both listeners) and a
 * --max-connections place. A client that does not read the answer loses it after LAST_ANSWER_MS.
 */
export function endUpgradedSocket(socket: Duplex, answer: string | Buffer): void {
  // Node took its own 'error' listener off the socket when it handed it out: a client that resets
  // the connection (the write then fails with EPIPE or ECONNRESET) must not take the process down.
  socket.on('error', destroyOnError);
  if (socket.destroyed) return;
  const timer = setTimeout(() => socket.destroy(), LAST_ANSWER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.end(answer, () => socket.destroy());
}
