/**
 * Why a client's TLS handshake with a public listener failed, in a fixed handful of reasons (the
 * label of `edge_router_tls_handshake_failures_total`): node:tls reports OpenSSL's reason as an
 * `ERR_SSL_<REASON>` code, of which there are hundreds, and a client choosing its bytes must not
 * be able to grow the label's values. Pure: the listener counts, this only names.
 */

export const HANDSHAKE_FAILURES = ['no_certificate', 'certificate_rejected', 'protocol', 'cipher', 'timeout', 'aborted', 'other'] as const;
export type HandshakeFailure = (typeof HANDSHAKE_FAILURES)[number];

export type HandshakeFailureCounts = Record<HandshakeFailure, number>;

export function noHandshakeFailures(): HandshakeFailureCounts {
  return { no_certificate: 0, certificate_rejected: 0, protocol: 0, cipher: 0, timeout: 0, aborted: 0, other: 0 };
}

/**
 * No TLS version, record layer or application protocol in common: a TLS 1.0/1.1-only client
 * (the router takes 1.2 and 1.3), plain HTTP or other bytes sent to the HTTPS port, no ALPN
 * protocol the router speaks; or the client's alert saying the same of the router.
 */
const PROTOCOL = new Set([
  'ERR_SSL_UNSUPPORTED_PROTOCOL',
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'ERR_SSL_VERSION_TOO_LOW',
  'ERR_SSL_VERSION_TOO_HIGH',
  'ERR_SSL_UNKNOWN_PROTOCOL',
  'ERR_SSL_HTTP_REQUEST',
  'ERR_SSL_HTTPS_PROXY_REQUEST',
  'ERR_SSL_PACKET_LENGTH_TOO_LONG',
  'ERR_SSL_RECORD_LENGTH_MISMATCH',
  'ERR_SSL_INAPPROPRIATE_FALLBACK',
  'ERR_SSL_NO_APPLICATION_PROTOCOL',
  'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION',
  'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL',
  'ERR_SSL_TLSV1_ALERT_INAPPROPRIATE_FALLBACK',
]);

/**
 * No cipher suite, key-exchange group or signature algorithm in common (the router's are
 * forward-secret AEAD suites only: certificate-store.ts); or the client's alert that it found the
 * router's choice too weak or could not agree.
 */
const CIPHER = new Set([
  'ERR_SSL_NO_SHARED_CIPHER',
  'ERR_SSL_NO_CIPHERS_AVAILABLE',
  'ERR_SSL_NO_SHARED_GROUPS',
  'ERR_SSL_NO_SUITABLE_KEY_SHARE',
  'ERR_SSL_NO_SUITABLE_SIGNATURE_ALGORITHM',
  'ERR_SSL_NO_SHARED_SIGNATURE_ALGORITHMS',
  'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE',
  'ERR_SSL_TLSV1_ALERT_INSUFFICIENT_SECURITY',
]);

/**
 * The client refused the certificate it was given (alerts bad_certificate, certificate_unknown,
 * unknown_ca, certificate_expired, …): most often the default certificate served for a name
 * (SNI) no certificate covers, or a client that does not trust the router's CA. Clients that check
 * the certificate only once the handshake is over (Node's own) close without an alert, and count nowhere.
 */
const CERTIFICATE_ALERT = /^ERR_SSL_(?:SSLV3|TLSV1)_ALERT_(?:BAD_CERTIFICATE|UNSUPPORTED_CERTIFICATE|CERTIFICATE_[A-Z_]+|UNKNOWN_CA)$/;

/**
 * The reason for a handshake that failed with error code `code`. `noCertificate`: the router had
 * no certificate to offer for the name the client asked (or for a client naming none), which
 * OpenSSL reports as a cipher or signature algorithm it could not agree on.
 */
export function handshakeFailureOf(code: string | undefined, noCertificate: boolean): HandshakeFailure {
  if (code === undefined) return 'other';
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return 'timeout';
  // A client that closed (Node's 'socket hang up', ECONNRESET too) or reset the connection mid-handshake.
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED' || code === 'ETIMEDOUT') return 'aborted';
  if (PROTOCOL.has(code)) return 'protocol';
  if (CIPHER.has(code)) return noCertificate ? 'no_certificate' : 'cipher';
  if (CERTIFICATE_ALERT.test(code)) return 'certificate_rejected';
  return 'other';
}
