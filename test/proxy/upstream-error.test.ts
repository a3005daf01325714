import { describe, expect, it } from 'vitest';
import { answeredByContainer, classifyUpstreamError, isRetryableStatus } from '../../src/proxy/upstream-error.js';

const withCode = (code: unknown) => Object.assign(new Error('whatever the message says'), { code });

describe('classifyUpstreamError', () => {
  it.each([
    ['UND_ERR_HEADERS_TIMEOUT', 'upstream_timeout', 504, false],
    ['UND_ERR_BODY_TIMEOUT', 'upstream_timeout', 504, false],
    ['ECONNREFUSED', 'upstream_unavailable', 502, true],
    ['UND_ERR_CONNECT_TIMEOUT', 'upstream_unavailable', 502, true],
    ['ECONNRESET', 'upstream_unavailable', 502, true],
    ['EPIPE', 'upstream_unavailable', 502, true],
    ['ENOTFOUND', 'upstream_unavailable', 502, true],
    ['EAI_AGAIN', 'upstream_unavailable', 502, true],
    ['EHOSTUNREACH', 'upstream_unavailable', 502, true],
    ['UND_ERR_SOCKET', 'upstream_unavailable', 502, true],
    ['UND_ERR_CLOSED', 'upstream_unavailable', 502, true],
    // A connect that timed out in the kernel (Node's happy-eyeballs error takes the first attempt's code).
    ['ETIMEDOUT', 'upstream_unavailable', 502, true],
    // An https orchestrator's handshake failed: nothing was sent, and the region is unreachable from here.
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'upstream_unavailable', 502, true],
    ['CERT_HAS_EXPIRED', 'upstream_unavailable', 502, true],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'upstream_unavailable', 502, true],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'upstream_unavailable', 502, true],
    ['ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'upstream_unavailable', 502, true],
    ['ERR_SSL_WRONG_VERSION_NUMBER', 'upstream_unavailable', 502, true],
    ['UND_ERR_RESPONSE_STATUS_CODE', 'upstream_unavailable', 502, false],
    // A request undici refuses to send is no region's failure: no other region would send it either.
    ['UND_ERR_NOT_SUPPORTED', 'upstream_unavailable', 502, false],
    ['UND_ERR_INVALID_ARG', 'upstream_unavailable', 502, false],
  ])('%s → %s %i, retryable %s', (code, expected, status, retryable) => {
    expect(classifyUpstreamError(withCode(code))).toEqual({ code: expected, status, retryable, cause: code });
  });

  it('classifies by code, never by message: an error without one is a plain, final 502', () => {
    expect(classifyUpstreamError(new Error('ECONNREFUSED timeout'))).toEqual({ code: 'upstream_unavailable', status: 502, retryable: false, cause: 'error' });
    expect(classifyUpstreamError(null)).toEqual({ code: 'upstream_unavailable', status: 502, retryable: false, cause: 'error' });
    expect(classifyUpstreamError(withCode(42))).toMatchObject({ retryable: false, cause: 'error' });
  });
});

describe('isRetryableStatus', () => {
  it.each([
    [502, true],
    [503, true],
    [504, true],
    [500, false],
    [429, false],
    [404, false],
    [200, false],
  ])('%i → %s', (status, retryable) => expect(isRetryableStatus(status)).toBe(retryable));
});

describe('answeredByContainer', () => {
  it('finds the orchestrator\'s container field in raw pairs (any case) or a header record, and nothing else', () => {
    const raw = (...pairs: string[]) => pairs.map((p) => Buffer.from(p, 'latin1'));
    expect(answeredByContainer(raw('content-type', 'text/plain', 'X-Edge-Container', 'c1; warm'))).toBe(true);
    expect(answeredByContainer(raw('content-type', 'text/plain', 'retry-after', '1'))).toBe(false);
    expect(answeredByContainer(raw('x-edge-containers', 'c1'))).toBe(false);
    expect(answeredByContainer(raw('x-edge-container-x', 'c1'))).toBe(false);
    expect(answeredByContainer([])).toBe(false);
    expect(answeredByContainer({ 'x-edge-container': 'c1; cold' })).toBe(true);
    expect(answeredByContainer({ 'retry-after': '1' })).toBe(false);
  });
});
