import { describe, expect, it } from 'vitest';
import { frameFloodOf } from '../../src/ingress/reset-flood-guard.js';

/** Errors shaped as Node hands them to an Http2Session's 'error' listener. */
const nodeError = (code: string, errno: number, message: string) => Object.assign(new Error(message), { code, errno });

describe('frameFloodOf', () => {
  it("names the floods nghttp2 and Node close a session for", () => {
    expect(frameFloodOf(nodeError('ERR_HTTP2_ERROR', -904, 'Flooding was detected in this HTTP/2 session, and it must be closed'))).toBe('reply_flood');
    expect(frameFloodOf(nodeError('ERR_HTTP2_ERROR', -905, 'Too many CONTINUATION frames following a HEADER frame'))).toBe('continuation_flood');
    expect(frameFloodOf(nodeError('ERR_HTTP2_TOO_MANY_INVALID_FRAMES', -902, 'Too many invalid HTTP/2 frames'))).toBe('invalid_frames');
  });

  it('leaves every other session error alone: a protocol error or a dropped connection is no flood', () => {
    expect(frameFloodOf(nodeError('ERR_HTTP2_ERROR', -505, 'Received bad client magic byte string'))).toBeNull();
    expect(frameFloodOf(nodeError('ECONNRESET', -104, 'read ECONNRESET'))).toBeNull();
    expect(frameFloodOf(new Error('anything'))).toBeNull();
    expect(frameFloodOf(undefined)).toBeNull();
    expect(frameFloodOf('a string')).toBeNull();
  });
});
