import { describe, expect, it } from 'vitest';
import { isFileContents, mayBeToken } from '../../src/core/file-contents.js';

describe('isFileContents', () => {
  it('tells PEM text or several lines from a path', () => {
    expect(isFileContents('-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----')).toBe(true);
    expect(isFileContents('-----BEGIN EC PRIVATE KEY----- MIGH')).toBe(true);
    expect(isFileContents('line one\r\nline two')).toBe(true);
    expect(isFileContents('/etc/edge/tls.key')).toBe(false);
    expect(isFileContents('certs/my key.pem')).toBe(false);
  });
});

describe('mayBeToken', () => {
  it('takes what a bearer token could be for one, but never an absolute path', () => {
    expect(mayBeToken('0123456789abcdef0123456789abcdef')).toBe(true);
    expect(mayBeToken('c2VjcmV0/LWFkbWlu+LXRva2Vu==')).toBe(true);
    expect(mayBeToken('/run/secrets/edge-admin-token')).toBe(false);
    expect(mayBeToken('token')).toBe(false);
    expect(mayBeToken('my token file.txt')).toBe(false);
  });
});
