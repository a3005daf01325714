import { describe, expect, it } from 'vitest';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isFileContents, pathWorthShowing } from '../../src/core/file-contents.js';

describe('isFileContents', () => {
  it('tells PEM text or several lines from a path', () => {
    expect(isFileContents('-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----')).toBe(true);
    expect(isFileContents('-----BEGIN EC PRIVATE KEY----- MIGH')).toBe(true);
    expect(isFileContents('line one\r\nline two')).toBe(true);
    expect(isFileContents('/etc/edge/tls.key')).toBe(false);
    expect(isFileContents('certs/my key.pem')).toBe(false);
  });
});

describe('pathWorthShowing', () => {
  it('shows only a path naming a directory that exists: no pattern tells a token from a path', () => {
    expect(pathWorthShowing(join(tmpdir(), 'missing-token-file'))).toBe(true);
    // The root, '.' and '..' always exist: a token with a single '/' at its start has "/" for its directory.
    expect(pathWorthShowing('/q8Zk3mN0pLr7sT2uVwXyZa1b2c3d4e5f6g7h8')).toBe(false);
    expect(pathWorthShowing('./missing-token-file')).toBe(false);
    expect(pathWorthShowing('../missing-token-file')).toBe(false);
    // Tokens: hex, base64 with a leading '/', any visible ASCII (the pre-warm token's alphabet).
    expect(pathWorthShowing('0123456789abcdef0123456789abcdef')).toBe(false);
    expect(pathWorthShowing('/Sup3rSecretAdminToken+abc/x==')).toBe(false);
    expect(pathWorthShowing('c2VjcmV0/LWFkbWlu+LXRva2Vu==')).toBe(false);
    expect(pathWorthShowing('Sup3r!Secret#Prewarm$Token')).toBe(false);
  });
});
