/**
 * The one place where error codes become HTTP: status and JSON body
 * `{ "error": { "code", "message", "requestId" } }`. Messages are fixed texts or name only what
 * the client sent; internal addresses and stack traces never leave.
 */
import type { RouteErrorCode } from '../routing/route-decider.js';

export type EdgeErrorCode =
  | 'invalid_host'
  | 'unknown_host'
  | 'misdirected_request'
  | 'function_not_found'
  | 'function_disabled'
  | 'no_healthy_region'
  | 'capacity_exhausted'
  | 'too_many_requests'
  | 'upstream_unavailable'
  | 'upstream_timeout'
  | 'payload_too_large'
  | 'headers_too_large'
  | 'bad_request'
  | 'request_timeout'
  | 'not_found'
  | 'shutting_down'
  | 'internal_error';

const STATUS: Record<EdgeErrorCode, number> = {
  invalid_host: 400,
  unknown_host: 404,
  misdirected_request: 421,
  function_not_found: 404,
  function_disabled: 403,
  no_healthy_region: 503,
  capacity_exhausted: 503,
  too_many_requests: 429,
  upstream_unavailable: 502,
  upstream_timeout: 504,
  payload_too_large: 413,
  headers_too_large: 431,
  bad_request: 400,
  request_timeout: 408,
  not_found: 404,
  shutting_down: 503,
  internal_error: 500,
};

export function statusOf(code: EdgeErrorCode): number {
  return STATUS[code];
}

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
  const status = STATUS[code];
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
  if (retryAfter !== undefined) headers['retry-after'] = retryAfter;
  res.writeHead(status, headers);
  res.end(body);
  return status;
}
