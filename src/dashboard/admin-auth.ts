/**
 * Bearer-token check for the admin API: constant-time comparison (of SHA-256 digests, so the
 * lengths match too), no cookies — so a cross-site page cannot ride on a logged-in browser (CSRF).
 */
import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (value: string) => createHash('sha256').update(value).digest();

export type AuthVerdict = 'ok' | 'missing' | 'invalid' | 'unconfigured';

/** Compiles the check once; the token is kept only as its digest. */
export function createTokenCheck(token: string | null): (authorization: string | undefined) => AuthVerdict {
  const expected = token === null || token === '' ? null : digest(token);
  return function checkToken(authorization) {
    if (expected === null) return 'unconfigured';
    if (authorization === undefined || authorization === '') return 'missing';
    const match = /^Bearer[ ]+(\S+)\s*$/i.exec(authorization);
    if (match === null) return 'invalid';
    return timingSafeEqual(digest(match[1]!), expected) ? 'ok' : 'invalid';
  };
}
