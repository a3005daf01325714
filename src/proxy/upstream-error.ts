/**
 * The one place that turns an upstream failure into an HTTP answer and a retry verdict.
 * undici errors are classified by `err.code`, never by message text.
 */
import { statusOf } from '../core/errors.js';

export type UpstreamErrorCode = 'upstream_unavailable' | 'upstream_timeout';

export interface UpstreamFailure {
  readonly code: UpstreamErrorCode;
  /** The catalogue's status for `code` (core/errors.ts). */
  readonly status: number;
  /**
   * The region failed before answering (refused, reset, closed): worth trying the next region,
   * subject to the body rule. Timeouts are not: the function may still be running, and the
   * request's time budget is spent.
   */
  readonly retryable: boolean;
  /** Short cause for logs and outlier detection. */
  readonly cause: string;
}

const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

export function classifyUpstreamError(err: unknown): UpstreamFailure {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'EDGE_DEADLINE') {
    return { code: 'upstream_timeout', status: statusOf('upstream_timeout'), retryable: false, cause: String(code) };
  }
  if (typeof code === 'string' && CONNECT_FAILURES.has(code)) {
    return { code: 'upstream_unavailable', status: statusOf('upstream_unavailable'), retryable: true, cause: code };
  }
  return { code: 'upstream_unavailable', status: statusOf('upstream_unavailable'), retryable: false, cause: typeof code === 'string' ? code : 'error' };
}

/** Statuses a region answers when it cannot serve (its own overload or gateway failure): try the next region. */
export function isRetryableStatus(status: number): boolean {
  return status === 502 || status === 503 || status === 504;
}
