/**
 * Which custom domains need a certificate ordered now, and how long to wait after a failed order.
 * Pure: the certificate manager feeds it the vault's contents and the clock.
 *
 * Renewal at about two thirds of a certificate's lifetime, as Let's Encrypt advises (day 54 to 60
 * of 90, spread by name; day 4 of 6 at the latest for short-lived ones): early enough to ride out days of failed attempts, late enough not
 * to spend the CA's rate limits. Failed orders back off exponentially and the backoff is shared
 * through the vault: Let's Encrypt allows 5 failed validations per account, name and hour, and a
 * fleet of routers retrying on their own would spend them at once.
 */
import { MAX_ORDER_PAUSE_MS, type IssuedCertificate, type IssueFailure, type OrderPause, type SharedOrderPause } from '../core/certificate-vault.js';

export type OrderReason = 'missing' | 'expired' | 'renewal';

export interface Order {
  readonly name: string;
  readonly reason: OrderReason;
}

/** First retry after a failure; each further failure doubles it. */
export const FIRST_RETRY_MS = 5 * 60_000;
export const MAX_RETRY_MS = 24 * 60 * 60_000;

/**
 * How far ahead of this router's clock another's may run before a failure it recorded is taken
 * for a skewed clock's: such a record's retry time is not waited for (see retryTime).
 */
export const CLOCK_SKEW_TOLERANCE_MS = 60_000;

/**
 * A CA's retry time closer than this is no retry time (RFC 9110 allows `Retry-After: 0`, and a
 * date the CA's clock sees as now is in the past here): it is taken as none was given, not as "ask
 * again at once", which sent an order per name at every check of every router.
 */
export const MIN_CA_RETRY_MS = 60_000;

/** How far ahead of two thirds a renewal may fall, as a share of the lifetime: 6 days of 90. */
export const RENEWAL_SPREAD = 1 / 15;

/**
 * When a certificate is due for renewal: two thirds into its validity, brought forward by up to
 * RENEWAL_SPREAD of it (day 54 to 60 of 90). Without the spread, certificates issued together (a
 * bulk import of custom domains, ACME turned on for a fleet) fall due together at every renewal
 * for ever, and their orders meet the CA's rate limits at once (Let's Encrypt: 300 new orders per
 * account in 3 hours). The share comes from the name rather than at random, so every router, and
 * the admin API's renewal time, agree on it.
 */
export function renewalDue(certificate: IssuedCertificate): number {
  const life = certificate.notAfter - certificate.notBefore;
  return certificate.notBefore + Math.round(life * (2 / 3 - RENEWAL_SPREAD * unitOf(certificate.name)));
}

/** A number in [0, 1) drawn from `text` (32-bit FNV-1a): the same everywhere, evenly spread over names. */
function unitOf(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return (hash >>> 0) / 2 ** 32;
}

/** Whether a certificate may be served at `now` (inside its validity period). */
export function isServable(certificate: Pick<IssuedCertificate, 'notBefore' | 'notAfter'>, now: number): boolean {
  return certificate.notBefore <= now && now < certificate.notAfter;
}

/**
 * The names to order now: those that failed fewer times in a row first, then most urgent first:
 * names without a certificate, then expired ones, then those past their renewal time by soonest
 * expiry. A name whose last failure set a retry time still ahead waits for it.
 */
export function ordersDue(
  names: Iterable<string>,
  certificates: ReadonlyMap<string, IssuedCertificate>,
  failures: ReadonlyMap<string, IssueFailure>,
  now: number,
): Order[] {
  const due: Array<Order & { readonly notAfter: number; readonly attempts: number }> = [];
  for (const name of names) {
    const failure = failures.get(name);
    if (failure !== undefined && retryTime(failure, now) > now) continue;
    const certificate = certificates.get(name);
    const attempts = failure?.attempts ?? 0;
    if (certificate === undefined) due.push({ name, reason: 'missing', notAfter: 0, attempts });
    else if (certificate.notAfter <= now) due.push({ name, reason: 'expired', notAfter: certificate.notAfter, attempts });
    else if (renewalDue(certificate) <= now) due.push({ name, reason: 'renewal', notAfter: certificate.notAfter, attempts });
  }
  // Failures in a row come first in the order: a name that keeps failing (a domain that does not
  // point here) stays "missing" for ever, and ranked by urgency alone, a customer's thousands of
  // them went ahead of every renewal and expired certificate in every check, spending the CA's
  // order limit (one account for all) so that those failed on it too, until they expired.
  due.sort((a, b) => a.attempts - b.attempts || URGENCY[a.reason] - URGENCY[b.reason] || a.notAfter - b.notAfter || a.name.localeCompare(b.name));
  return due.map(({ name, reason }) => ({ name, reason }));
}

const URGENCY: Record<OrderReason, number> = { missing: 0, expired: 1, renewal: 2 };

/**
 * When a name that failed may be ordered again, by this router's clock. The retry time is the
 * writer's clock's; a record whose failure is in this router's future (beyond the tolerance) came
 * from a clock running ahead, and its retry time is not waited for: a router a year ahead (every
 * certificate expired to it, its orders failing) wrote retry times a year out, and every router
 * with the right time waited for them while the certificates expired.
 */
export function retryTime(failure: IssueFailure, now: number): number {
  return failure.at > now + CLOCK_SKEW_TOLERANCE_MS ? now : failure.retryAt;
}

/**
 * Names whose vault records can be deleted: no longer wanted (the custom domain was removed, or a
 * certificate file now covers it) and of no further use — the certificate has expired, and the
 * wait after the last failure is over. Nothing still usable goes: a name missing from `wanted`
 * only for a moment (a registry being re-read) keeps a live certificate, and a back-off still
 * running, so coming back costs no new order and no early retry.
 */
export function forgettable(
  wanted: ReadonlySet<string>,
  certificates: ReadonlyMap<string, IssuedCertificate>,
  failures: ReadonlyMap<string, IssueFailure>,
  now: number,
): string[] {
  const names = new Set([...certificates.keys(), ...failures.keys()]);
  return [...names].filter((name) => isForgettable(name, wanted, certificates, failures, now)).sort();
}

/** `forgettable`'s rule for one name. */
export function isForgettable(
  name: string,
  wanted: ReadonlySet<string>,
  certificates: ReadonlyMap<string, IssuedCertificate>,
  failures: ReadonlyMap<string, IssueFailure>,
  now: number,
): boolean {
  // A failure is kept a day past its retry time: a router that does not want the name (its
  // directory unread yet, or a certificate file covering it there) deleted the record as soon as
  // its wait was over, and with it the failures in a row, so the routers that do want it started
  // again from a 5-minute wait: an order every 5 minutes for a name that never validates.
  const failure = failures.get(name);
  return !wanted.has(name) && (certificates.get(name)?.notAfter ?? 0) <= now && (failure === undefined || failure.retryAt + MAX_RETRY_MS <= now);
}

/** The failure to record after an order for `name` failed at `now` (the CA accepted the order, or never answered). */
export function failureAfter(previous: IssueFailure | undefined, name: string, reason: string, now: number): IssueFailure {
  const attempts = (previous?.attempts ?? 0) + 1;
  const wait = Math.min(FIRST_RETRY_MS * 2 ** Math.min(attempts - 1, 20), MAX_RETRY_MS);
  return { name, attempts, at: now, retryAt: now + wait, reason: reason.slice(0, 500) };
}

/**
 * What to record for `name` after the CA refused its order for a rate limit at `now`: the name
 * waits for the CA's retry time (5 minutes when it gave none, a day at most), in case the limit was
 * the name's (duplicate certificates, failed validations). Its failures in a row stay as they were:
 * the refusal says nothing about the name, and counted, it doubled the name's next backoff and put
 * it behind every other name in the queue.
 */
export function waitAfterRateLimit(previous: IssueFailure | undefined, name: string, reason: string, now: number, caRetryAt: number | null): IssueFailure {
  const retryAt = Math.min(usableCaRetryAt(caRetryAt, now) ?? now + FIRST_RETRY_MS, now + MAX_RETRY_MS);
  return { name, attempts: previous?.attempts ?? 0, at: now, retryAt, reason: reason.slice(0, 500) };
}

/**
 * The pause of every router's orders after the CA refused one for a rate limit at `now`, and how
 * long it lasts: until the CA's retry time, but at most 5 minutes at a first refusal, doubling
 * with each refusal in a row (`previous`, the pause before, if still remembered), to a day. Whether
 * the limit was the account's (every order would be refused) or the name's (the name waits on its
 * own, waitAfterRateLimit) the answer does not say in a form to rely on: so one router asks again
 * after the pause, with another name. A per-name limit (Let's Encrypt's duplicate certificates:
 * over a day) then costs the fleet 5 minutes, not the CA's whole retry time; an account's limit
 * costs a refused order per pause, fewer and fewer as the pauses grow.
 */
export function orderPauseAfterRateLimit(name: string, reason: string, now: number, caRetryAt: number | null, previous: SharedOrderPause | null): { pause: OrderPause; ms: number } {
  // An order refused while the pause was already on (sent before it began) is the same refusal, not one more in a row.
  const refusals = previous === null ? 1 : previous.remainingMs > 0 ? previous.pause.refusals : previous.pause.refusals + 1;
  const probeMs = Math.min(FIRST_RETRY_MS * 2 ** Math.min(refusals - 1, 20), MAX_ORDER_PAUSE_MS);
  const caAt = usableCaRetryAt(caRetryAt, now);
  const caMs = caAt === null ? FIRST_RETRY_MS : caAt - now;
  const ms = Math.min(caMs, probeMs);
  return { pause: { name, reason: reason.slice(0, 500), at: now, until: now + ms, refusals }, ms };
}

/** The CA's retry time, or null when it gave none or one too close to be one (MIN_CA_RETRY_MS). */
function usableCaRetryAt(caRetryAt: number | null, now: number): number | null {
  return caRetryAt === null || caRetryAt - now < MIN_CA_RETRY_MS ? null : caRetryAt;
}
