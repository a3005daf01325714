/**
 * Bearer-token check for the admin API: constant-time comparison (of SHA-256 digests, so the
 * lengths match too), no cookies — so a cross-site page cannot ride on a logged-in browser (CSRF).
 *
 * The token can be replaced while the router runs (a rotated token file): the one it replaces is
 * still taken for an overlap, so clients and open dashboards can move over, then refused. Only the
 * token just replaced is kept: a second replacement within the overlap ends the first at once,
 * unless it puts the first back (a rollback), which then lets in again all it let in before.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (value: string) => createHash('sha256').update(value).digest();

export type AuthVerdict = 'ok' | 'missing' | 'invalid' | 'unconfigured';

/** Which token a request was let in with (opaque): ask `stillValid` whether it still lets it in. */
export type TokenGrant = object;

/** The admin token in use and the one it replaced, kept only as digests. Pure but for the clock. */
export class AdminTokens {
  /** Each token's entry is its grant: a grant made before a replacement still names its token after it. */
  private current: { readonly digest: Buffer } | null;
  private previous: { readonly entry: { readonly digest: Buffer }; readonly until: number } | undefined;

  constructor(token: string | null, private readonly now: () => number = Date.now) {
    this.current = token === null || token === '' ? null : { digest: digest(token) };
  }

  /**
   * Takes `token` from now on and the one in use for `overlapMs` more. The same token again
   * changes nothing (a file rewritten unchanged must not end anyone's stream).
   */
  replace(token: string, overlapMs: number): { replaced: false } | { replaced: true; previousValidUntil: number } {
    // The admin API is switched on at start or not at all: a file is watched only when it gave the token.
    if (this.current === null) throw new Error('no admin token to replace: the admin API was started without one');
    const next = digest(token);
    if (timingSafeEqual(next, this.current.digest)) return { replaced: false };
    const until = this.now() + Math.max(0, overlapMs);
    // A rollback to the token just replaced (a rotation undone) takes back its entry: what it
    // granted (an open dashboard's stream) is granted by the token in use again, not ended.
    const rolledBack = this.previous !== undefined && timingSafeEqual(next, this.previous.entry.digest) ? this.previous.entry : undefined;
    this.previous = { entry: this.current, until };
    this.current = rolledBack ?? { digest: next };
    return { replaced: true, previousValidUntil: until };
  }

  check(authorization: string | undefined): { verdict: AuthVerdict; grant?: TokenGrant } {
    if (this.current === null) return { verdict: 'unconfigured' };
    if (authorization === undefined || authorization === '') return { verdict: 'missing' };
    const match = /^Bearer[ ]+(\S+)\s*$/i.exec(authorization);
    if (match === null) return { verdict: 'invalid' };
    const given = digest(match[1]!);
    const previous = this.previous !== undefined && this.now() < this.previous.until ? this.previous.entry : undefined;
    // Both compared whatever the first gives: the time taken says nothing about which one matched.
    const isCurrent = timingSafeEqual(given, this.current.digest);
    const isPrevious = previous !== undefined && timingSafeEqual(given, previous.digest);
    if (isCurrent) return { verdict: 'ok', grant: this.current };
    if (isPrevious) return { verdict: 'ok', grant: previous };
    return { verdict: 'invalid' };
  }

  /** Whether what `grant` let in is still let in: its token is the one in use, or the one replaced within its overlap. */
  stillValid(grant: TokenGrant): boolean {
    if (grant === this.current) return true;
    return this.previous !== undefined && grant === this.previous.entry && this.now() < this.previous.until;
  }
}
