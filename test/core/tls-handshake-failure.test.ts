import { describe, expect, it } from 'vitest';
import { HANDSHAKE_FAILURES, handshakeFailureOf, noHandshakeFailures } from '../../src/core/tls-handshake-failure.js';

describe('handshakeFailureOf', () => {
  it.each([
    ['ERR_TLS_HANDSHAKE_TIMEOUT', 'timeout'],
    ['ECONNRESET', 'aborted'],
    ['EPIPE', 'aborted'],
    ['ERR_SSL_UNSUPPORTED_PROTOCOL', 'protocol'],
    ['ERR_SSL_WRONG_VERSION_NUMBER', 'protocol'],
    ['ERR_SSL_HTTP_REQUEST', 'protocol'],
    ['ERR_SSL_NO_APPLICATION_PROTOCOL', 'protocol'],
    ['ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', 'protocol'],
    ['ERR_SSL_NO_SHARED_CIPHER', 'cipher'],
    ['ERR_SSL_NO_SUITABLE_SIGNATURE_ALGORITHM', 'cipher'],
    ['ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'certificate_rejected'],
    ['ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN', 'certificate_rejected'],
    ['ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED', 'certificate_rejected'],
    ['ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 'certificate_rejected'],
    ['ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR', 'other'],
    ['ERR_SOMETHING_NEW', 'other'],
    [undefined, 'other'],
  ] as const)('%s → %s', (code, reason) => {
    expect(handshakeFailureOf(code, false)).toBe(reason);
  });

  it('names a cipher or signature algorithm failure no_certificate when the router had none to offer', () => {
    expect(handshakeFailureOf('ERR_SSL_NO_SHARED_CIPHER', true)).toBe('no_certificate');
    expect(handshakeFailureOf('ERR_SSL_NO_SUITABLE_SIGNATURE_ALGORITHM', true)).toBe('no_certificate');
    // Other failures keep their reason: the missing certificate played no part yet.
    expect(handshakeFailureOf('ERR_SSL_UNSUPPORTED_PROTOCOL', true)).toBe('protocol');
    expect(handshakeFailureOf('ERR_TLS_HANDSHAKE_TIMEOUT', true)).toBe('timeout');
  });

  it('counts every reason, and only those', () => {
    expect(Object.keys(noHandshakeFailures()).sort()).toEqual([...HANDSHAKE_FAILURES].sort());
  });
});
