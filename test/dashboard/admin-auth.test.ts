import { describe, expect, it } from 'vitest';
import { AdminTokens } from '../../src/dashboard/admin-auth.js';

const OLD = 'the-old-admin-token-0123';
const NEW = 'the-new-admin-token-4567';
const bearer = (token: string) => `Bearer ${token}`;

/** A ring on a clock the test moves. */
function ringAt(token: string | null) {
  const clock = { now: 1_000_000 };
  return { clock, tokens: new AdminTokens(token, () => clock.now) };
}

describe('AdminTokens: the check', () => {
  const { tokens } = ringAt(OLD);
  it.each([
    [`Bearer ${OLD}`, 'ok'],
    [`bearer   ${OLD}`, 'ok'],
    [undefined, 'missing'],
    ['', 'missing'],
    [`Bearer ${OLD}x`, 'invalid'],
    [`Basic ${OLD}`, 'invalid'],
    [OLD, 'invalid'],
  ])('%j → %s', (header, verdict) => {
    expect(tokens.check(header).verdict).toBe(verdict);
  });
  it('refuses everything when no token is configured', () => {
    expect(new AdminTokens(null).check(bearer(OLD)).verdict).toBe('unconfigured');
    expect(new AdminTokens('').check(bearer(OLD)).verdict).toBe('unconfigured');
  });
});

describe('AdminTokens: a replaced token', () => {
  it('takes the new token at once and the old one until the overlap ends, then only the new one', () => {
    const { clock, tokens } = ringAt(OLD);
    expect(tokens.replace(NEW, 60_000)).toEqual({ replaced: true, previousValidUntil: clock.now + 60_000 });
    expect(tokens.check(bearer(NEW)).verdict).toBe('ok');
    expect(tokens.check(bearer(OLD)).verdict).toBe('ok');
    clock.now += 59_999;
    expect(tokens.check(bearer(OLD)).verdict).toBe('ok');
    clock.now += 1;
    expect(tokens.check(bearer(OLD)).verdict).toBe('invalid');
    expect(tokens.check(bearer(NEW)).verdict).toBe('ok');
  });

  it('says whether a credential it granted is still valid: the old one until the overlap ends, the new one on', () => {
    const { clock, tokens } = ringAt(OLD);
    const old = tokens.check(bearer(OLD)).grant!;
    expect(tokens.stillValid(old)).toBe(true);
    tokens.replace(NEW, 1_000);
    const fresh = tokens.check(bearer(NEW)).grant!;
    // A grant made with the old token during the overlap ends with it too.
    const lateOld = tokens.check(bearer(OLD)).grant!;
    expect([tokens.stillValid(old), tokens.stillValid(lateOld), tokens.stillValid(fresh)]).toEqual([true, true, true]);
    clock.now += 1_000;
    expect([tokens.stillValid(old), tokens.stillValid(lateOld), tokens.stillValid(fresh)]).toEqual([false, false, true]);
  });

  it('ignores a replacement by the same token: no overlap starts and nothing granted ends', () => {
    const { clock, tokens } = ringAt(OLD);
    const grant = tokens.check(bearer(OLD)).grant!;
    expect(tokens.replace(OLD, 1_000)).toEqual({ replaced: false });
    clock.now += 10_000;
    expect(tokens.stillValid(grant)).toBe(true);
    expect(tokens.check(bearer(OLD)).verdict).toBe('ok');
  });

  it('keeps only the token just replaced: a second replacement within the overlap ends the first token at once', () => {
    const { tokens } = ringAt(OLD);
    const third = 'the-third-admin-token-89';
    tokens.replace(NEW, 60_000);
    tokens.replace(third, 60_000);
    expect(tokens.check(bearer(OLD)).verdict).toBe('invalid');
    expect(tokens.check(bearer(NEW)).verdict).toBe('ok');
    expect(tokens.check(bearer(third)).verdict).toBe('ok');
  });

  it('a rollback to the replaced token within the overlap keeps what that token granted', () => {
    // A rotation undone (the new Secret was wrong, the old one put back): the dashboards still on
    // the old token hold a token in use again, and must not be ended as if it were replaced.
    const { clock, tokens } = ringAt(OLD);
    const old = tokens.check(bearer(OLD)).grant!;
    tokens.replace(NEW, 60_000);
    const fresh = tokens.check(bearer(NEW)).grant!;
    expect(tokens.replace(OLD, 60_000)).toEqual({ replaced: true, previousValidUntil: clock.now + 60_000 });
    clock.now += 60_000;
    expect([tokens.stillValid(old), tokens.stillValid(fresh)]).toEqual([true, false]);
    expect(tokens.check(bearer(OLD)).grant).toBe(old);
  });

  it('with no overlap, refuses the old token at once', () => {
    const { tokens } = ringAt(OLD);
    const grant = tokens.check(bearer(OLD)).grant!;
    tokens.replace(NEW, 0);
    expect(tokens.check(bearer(OLD)).verdict).toBe('invalid');
    expect(tokens.stillValid(grant)).toBe(false);
  });

  it('a router started without a token stays without one: a file cannot switch the admin API on', () => {
    // Only a router started with --admin-token-file watches a file; the ring itself refuses to invent one.
    const { tokens } = ringAt(null);
    expect(() => tokens.replace(NEW, 0)).toThrow(/no admin token/);
  });
});
