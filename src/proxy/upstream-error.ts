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

const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ETIMEDOUT']);

/**
 * An https orchestrator's certificate refused in the handshake: Node names the error by OpenSSL's
 * verification result (X509_V_ERR_* without the prefix), or ERR_TLS_*. Other handshake failures
 * (an alert, a plain-HTTP listener) are ERR_SSL_*. Nothing of the request went out: the region is
 * unreachable from here, as one that refuses the connection is. Classified as final, they were
 * answered 502 with no failover, for GETs too, and never counted towards the region's ejection
 * (whose reporters go on saying it is up), so every request routed there failed (seen in review).
 */
const CERTIFICATE_REFUSALS = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
]);

/** A TLS handshake to an orchestrator failed (a certificate refused, an alert): `cause` as classifyUpstreamError names it. */
export const isTlsFailure = (code: string): boolean => CERTIFICATE_REFUSALS.has(code) || code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_');

export function classifyUpstreamError(err: unknown): UpstreamFailure {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'EDGE_DEADLINE') {
    return { code: 'upstream_timeout', status: statusOf('upstream_timeout'), retryable: false, cause: String(code) };
  }
  if (typeof code === 'string' && (CONNECT_FAILURES.has(code) || isTlsFailure(code))) {
    return { code: 'upstream_unavailable', status: statusOf('upstream_unavailable'), retryable: true, cause: code };
  }
  return { code: 'upstream_unavailable', status: statusOf('upstream_unavailable'), retryable: false, cause: typeof code === 'string' ? code : 'error' };
}

/** The cause prefix of a failure once the region's answer had begun: see classifyAttemptError. */
export const BAD_ANSWER_PREFIX = 'bad_answer:';

/**
 * An attempt's failure, knowing whether the region's answer had begun to arrive (undici read its
 * first bytes: onResponseStarted) before the failure. One that had is an answer undici could not
 * take: a function's own `100 Continue` nobody asked for (the router strips `Expect`), a `101` to a
 * plain request, a head cut short. Functions write their container's answers themselves, so such a
 * failure is as likely a tenant's doing as the region's: its cause says so (`bad_answer:<code>`)
 * and outlier detection counts it once per organisation in a streak, as a timeout. Counted in
 * full, one function answering `100 Continue` to five concurrent requests ejected the region for
 * every tenant, then the next region its GETs failed over to (seen in review). Whether it may be
 * retried is unchanged.
 */
export function classifyAttemptError(err: unknown, answerBegun: boolean): UpstreamFailure {
  const failure = classifyUpstreamError(err);
  if (!answerBegun || failure.code === 'upstream_timeout') return failure;
  return { ...failure, cause: `${BAD_ANSWER_PREFIX}${failure.cause}` };
}

/** The statuses whose answer has no content (RFC 9110 §15.3.5, §15.3.6, §15.4.5): node:http2 ends their stream with the head. */
export function isBodiless(status: number): boolean {
  return status === 204 || status === 205 || status === 304;
}

/**
 * undici's error at the end of an answer that is whole all the same: a 304 may state its 200's
 * Content-Length (RFC 9110 §8.6), a careless 204 one too; neither has a body, but undici (7.x)
 * counts the bytes it never read as missing.
 */
export function bodilessAnswerWhole(status: number, err: unknown): boolean {
  return isBodiless(status) && (err as { code?: unknown } | null)?.code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH';
}

/** Statuses a region answers when it cannot serve (its own overload or gateway failure): try the next region. */
export function isRetryableStatus(status: number): boolean {
  return status === 502 || status === 503 || status === 504;
}

/**
 * The field an orchestrator sets on every answer a function's container gave (orchestrator.ts:
 * `x-edge-container: <id>; cold|warm`), its own refusals (at capacity, draining) and a gateway's
 * in front of it carrying none.
 */
export const CONTAINER_FIELD = 'x-edge-container';

/**
 * Whether a region's answer came from a function's container: a function's own 502/503/504 says
 * nothing of the region's health. Counted against the region, one tenant's failing function ejected
 * whole regions for every tenant (seen in review: six GETs to a function answering 503 ejected two).
 * Raw [name, value, …] as undici gives them (Buffers), or a parsed header record.
 */
export function answeredByContainer(headers: readonly (Buffer | string)[] | Readonly<Record<string, unknown>>): boolean {
  if (!Array.isArray(headers)) return (headers as Readonly<Record<string, unknown>>)[CONTAINER_FIELD] !== undefined;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as Buffer | string;
    if (name.length === CONTAINER_FIELD.length && name.toString('latin1').toLowerCase() === CONTAINER_FIELD) return true;
  }
  return false;
}
