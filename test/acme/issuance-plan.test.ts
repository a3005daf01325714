import { describe, expect, it } from 'vitest';
import type { IssuedCertificate, IssueFailure } from '../../src/core/certificate-vault.js';
import { failureAfter, FIRST_RETRY_MS, forgettable, isServable, MAX_RETRY_MS, orderPauseAfterRateLimit, ordersDue, renewalDue, waitAfterRateLimit } from '../../src/acme/issuance-plan.js';
import { MAX_ORDER_PAUSE_MS } from '../../src/core/certificate-vault.js';

const DAY = 24 * 60 * 60_000;
const cert = (name: string, notBefore: number, days: number): IssuedCertificate => ({ name, certPem: '', keyPem: '', notBefore, notAfter: notBefore + days * DAY });

describe('renewalDue and isServable', () => {
  it('renews between day 54 and day 60 of a 90-day certificate (day 3.6 and 4 of a 6-day one)', () => {
    for (const name of ['a', 'shop.example', 'www.customer.example.net']) {
      expect(renewalDue(cert(name, 0, 90))).toBeGreaterThanOrEqual(54 * DAY);
      expect(renewalDue(cert(name, 0, 90))).toBeLessThanOrEqual(60 * DAY);
      expect(renewalDue(cert(name, 10 * DAY, 6))).toBeGreaterThanOrEqual(13.6 * DAY);
      expect(renewalDue(cert(name, 10 * DAY, 6))).toBeLessThanOrEqual(14 * DAY);
    }
  });

  it('spreads certificates issued together over those six days, each name at the same time on every router', () => {
    const due = Array.from({ length: 300 }, (_, i) => renewalDue(cert(`shop-${i}.example`, 0, 90)));
    const perDay = [54, 55, 56, 57, 58, 59].map((day) => due.filter((at) => at >= day * DAY && at < (day + 1) * DAY).length);
    // 50 a day on average: none of the six days is left empty, none takes the bulk.
    for (const count of perDay) expect(count).toBeGreaterThan(20);
    for (const count of perDay) expect(count).toBeLessThan(100);
    expect(renewalDue(cert('shop-7.example', 0, 90))).toBe(due[7]);
  });

  it('serves a certificate only inside its validity', () => {
    const c = cert('a', 10 * DAY, 90);
    expect([isServable(c, 10 * DAY - 1), isServable(c, 10 * DAY), isServable(c, 100 * DAY - 1), isServable(c, 100 * DAY)]).toEqual([false, true, true, false]);
  });
});

describe('ordersDue', () => {
  const now = 100 * DAY;
  const certificates = new Map<string, IssuedCertificate>([
    ['fresh.example', cert('fresh.example', now - 10 * DAY, 90)],
    ['due.example', cert('due.example', now - 70 * DAY, 90)],
    ['sooner.example', cert('sooner.example', now - 80 * DAY, 90)],
    ['expired.example', cert('expired.example', now - 100 * DAY, 90)],
  ]);

  it('orders missing names first, then expired ones, then renewals by soonest expiry; fresh ones not at all', () => {
    const names = ['fresh.example', 'due.example', 'sooner.example', 'expired.example', 'new-b.example', 'new-a.example'];
    expect(ordersDue(names, certificates, new Map(), now)).toEqual([
      { name: 'new-a.example', reason: 'missing' },
      { name: 'new-b.example', reason: 'missing' },
      { name: 'expired.example', reason: 'expired' },
      { name: 'sooner.example', reason: 'renewal' },
      { name: 'due.example', reason: 'renewal' },
    ]);
  });

  it('waits for a failed name\'s retry time, and orders it once that has passed', () => {
    const failures = new Map<string, IssueFailure>([['new.example', { name: 'new.example', attempts: 2, at: now - 1, retryAt: now + 1, reason: 'x' }]]);
    expect(ordersDue(['new.example'], certificates, failures, now)).toEqual([]);
    expect(ordersDue(['new.example'], certificates, failures, now + 1)).toEqual([{ name: 'new.example', reason: 'missing' }]);
  });

  it('does not wait for a retry time written by a clock running ahead of this one', () => {
    // A router a year ahead sees every certificate expired; its failed orders wrote retry times a
    // year out, and every router with the right time waited for them while certificates expired.
    const skewed = new Map<string, IssueFailure>([['new.example', { name: 'new.example', attempts: 1, at: now + 365 * DAY, retryAt: now + 365 * DAY + FIRST_RETRY_MS, reason: 'x' }]]);
    expect(ordersDue(['new.example'], certificates, skewed, now)).toEqual([{ name: 'new.example', reason: 'missing' }]);
    // A clock a few seconds ahead is no skew: its wait stands.
    const close = new Map<string, IssueFailure>([['new.example', { name: 'new.example', attempts: 1, at: now + 5_000, retryAt: now + 5_000 + FIRST_RETRY_MS, reason: 'x' }]]);
    expect(ordersDue(['new.example'], certificates, close, now)).toEqual([]);
  });

  it('orders names that failed fewer times first: one customer\'s failing domains do not go ahead of everyone\'s renewals', () => {
    // A customer adds thousands of domains that do not point here: each fails, and is retried
    // (as "missing") up to once a day for as long as it stays. Ranked first in every check, they
    // spend the CA's order limit (Let's Encrypt: 300 new orders per account in 3 hours) before any
    // renewal or expired certificate is reached, and those fail on the limit, until they expire.
    const failed = (name: string, attempts: number): [string, IssueFailure] => [name, { name, attempts, at: now - DAY, retryAt: now - 1, reason: 'x' }];
    const failures = new Map<string, IssueFailure>([
      failed('bogus-1.example', 7),
      failed('bogus-2.example', 5),
      failed('sooner.example', 1), // its renewal was refused once on the limit
      failed('dns-later.example', 1), // added before its DNS pointed here
    ]);
    const names = ['bogus-1.example', 'bogus-2.example', 'new.example', 'due.example', 'sooner.example', 'expired.example', 'dns-later.example'];
    expect(ordersDue(names, certificates, failures, now)).toEqual([
      { name: 'new.example', reason: 'missing' },
      { name: 'expired.example', reason: 'expired' },
      { name: 'due.example', reason: 'renewal' },
      { name: 'dns-later.example', reason: 'missing' },
      { name: 'sooner.example', reason: 'renewal' },
      { name: 'bogus-2.example', reason: 'missing' },
      { name: 'bogus-1.example', reason: 'missing' },
    ]);
  });

  it('renews nothing that is no longer wanted', () => {
    expect(ordersDue([], certificates, new Map(), now)).toEqual([]);
  });
});

describe('forgettable', () => {
  const now = 1_000 * DAY;
  const failure = (name: string, retryAt: number): IssueFailure => ({ name, attempts: 1, at: now - DAY, retryAt, reason: 'x' });

  it('deletes only what is unwanted and spent: an expired certificate, a failure a day past its wait', () => {
    const certificates = new Map([
      ['gone-expired.example', cert('gone-expired.example', now - 90 * DAY, 90)], // notAfter = now
      ['gone-live.example', cert('gone-live.example', now - 10 * DAY, 90)],
      ['kept-expired.example', cert('kept-expired.example', now - 100 * DAY, 90)],
      ['gone-both.example', cert('gone-both.example', now - 100 * DAY, 90)],
    ]);
    const failures = new Map([
      ['gone-failed.example', failure('gone-failed.example', now - MAX_RETRY_MS - 1)],
      ['gone-waiting.example', failure('gone-waiting.example', now + 1)],
      ['gone-both.example', failure('gone-both.example', now + 1)],
      // Its wait is over, but its failures in a row still count for a router that wants the name:
      // deleted now, the next order there would wait 5 minutes after failing again, not a day.
      ['kept-failures.example', failure('kept-failures.example', now - 1)],
    ]);
    const wanted = new Set(['kept-expired.example']);
    expect(forgettable(wanted, certificates, failures, now)).toEqual(['gone-expired.example', 'gone-failed.example']);
    // A day after the back-off is over too, the name with both records goes, and the waiting one.
    expect(forgettable(wanted, certificates, failures, now + 1 + MAX_RETRY_MS)).toEqual(['gone-both.example', 'gone-expired.example', 'gone-failed.example', 'gone-waiting.example', 'kept-failures.example']);
    expect(forgettable(new Set(), new Map(), new Map(), now)).toEqual([]);
  });
});

describe('failureAfter', () => {
  it('doubles the wait with each failure from 5 minutes, up to a day, and keeps the reason short', () => {
    let failure = failureAfter(undefined, 'a.example', 'refused', 1_000);
    expect(failure).toEqual({ name: 'a.example', attempts: 1, at: 1_000, retryAt: 1_000 + FIRST_RETRY_MS, reason: 'refused' });
    const waits = [FIRST_RETRY_MS];
    for (let i = 0; i < 12; i++) {
      failure = failureAfter(failure, 'a.example', 'x'.repeat(2_000), 1_000);
      waits.push(failure.retryAt - failure.at);
    }
    expect(waits.slice(0, 4)).toEqual([FIRST_RETRY_MS, 2 * FIRST_RETRY_MS, 4 * FIRST_RETRY_MS, 8 * FIRST_RETRY_MS]);
    expect(waits.at(-1)).toBe(MAX_RETRY_MS);
    expect(failure.attempts).toBe(13);
    expect(failure.reason).toHaveLength(500);
  });
});

describe('after a rate limit', () => {
  const limit = 'too many new orders';

  it('has the name wait for the CA\'s retry time (a day at most) without counting a failure of the name\'s', () => {
    const earlier = failureAfter(undefined, 'a.example', 'connection refused', 0);
    expect(waitAfterRateLimit(earlier, 'a.example', limit, 1_000, 1_000 + 3 * 60 * 60_000)).toEqual({ name: 'a.example', attempts: 1, at: 1_000, retryAt: 1_000 + 3 * 60 * 60_000, reason: limit });
    expect(waitAfterRateLimit(undefined, 'a.example', limit, 1_000, null)).toMatchObject({ attempts: 0, retryAt: 1_000 + FIRST_RETRY_MS });
    expect(waitAfterRateLimit(undefined, 'a.example', limit, 1_000, 1_000 + 365 * DAY).retryAt).toBe(1_000 + MAX_RETRY_MS);
    // Retry-After: 0, or a date already past here, is no retry time: the name waits as if none was given.
    expect(waitAfterRateLimit(undefined, 'a.example', limit, 1_000, 1_000).retryAt).toBe(1_000 + FIRST_RETRY_MS);
    expect(waitAfterRateLimit(undefined, 'a.example', limit, 1_000, 0).retryAt).toBe(1_000 + FIRST_RETRY_MS);
    // The next real failure backs off as if the refusal had not happened.
    expect(failureAfter(waitAfterRateLimit(earlier, 'a.example', limit, 1_000, null), 'a.example', 'x', 2_000).attempts).toBe(2);
  });

  it('pauses every router until the CA\'s retry time, 5 minutes at most at first, doubling with each refusal in a row, a day at most', () => {
    const now = 1_000;
    expect(orderPauseAfterRateLimit('a.example', limit, now, now + 60_000, null)).toEqual({ pause: { name: 'a.example', reason: limit, at: now, until: now + 60_000, refusals: 1 }, ms: 60_000 });
    expect(orderPauseAfterRateLimit('a.example', limit, now, null, null).ms).toBe(FIRST_RETRY_MS);
    // A retry time of now (Retry-After: 0) paused nothing, and every router ordered at every check.
    expect(orderPauseAfterRateLimit('a.example', limit, now, now, null).ms).toBe(FIRST_RETRY_MS);
    let previous = null as ReturnType<typeof orderPauseAfterRateLimit> | null;
    const lengths: number[] = [];
    for (let i = 0; i < 12; i++) {
      previous = orderPauseAfterRateLimit('a.example', limit, now, now + 365 * DAY, previous === null ? null : { pause: previous.pause, remainingMs: 0 });
      lengths.push(previous.ms);
    }
    expect(lengths.slice(0, 3)).toEqual([FIRST_RETRY_MS, 2 * FIRST_RETRY_MS, 4 * FIRST_RETRY_MS]);
    expect(Math.max(...lengths)).toBe(MAX_ORDER_PAUSE_MS);
    // A refusal of an order sent before the pause began is not one more in a row.
    const on = orderPauseAfterRateLimit('a.example', limit, now, null, { pause: { name: 'b.example', reason: limit, at: now, until: now + FIRST_RETRY_MS, refusals: 3 }, remainingMs: 60_000 });
    expect(on.pause.refusals).toBe(3);
  });
});
