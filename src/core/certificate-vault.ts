/**
 * The CertificateVault role: where the routers keep what ACME issuance needs shared. A CA checks
 * an HTTP-01 challenge by fetching a URL on the name being certified, and behind a load balancer
 * that request reaches whichever router it reaches, not the one that placed the order: so the
 * challenge answers, the account key, the certificates and the per-name order lease all live in
 * one place every router reads (Redis in production: src/registry/redis-certificate-vault.ts).
 */

/** A certificate an ACME CA issued for one custom domain, with its key (both PEM). */
export interface IssuedCertificate {
  /** The domain, lower case, as the certificate names it. */
  readonly name: string;
  /** Leaf first, then the chain the CA sent. */
  readonly certPem: string;
  readonly keyPem: string;
  /** Epoch ms, from the certificate. */
  readonly notBefore: number;
  readonly notAfter: number;
}

/** The last failed order for a name, and when to try again (shared, so routers back off together). */
export interface IssueFailure {
  readonly name: string;
  /** Consecutive failed orders; 0 when the CA only refused an order for a rate limit (no failure of the name's). */
  readonly attempts: number;
  /** Epoch ms of the last failure. */
  readonly at: number;
  /** Epoch ms before which no router orders this name again. */
  readonly retryAt: number;
  /** What the CA or the network said, for operators (no secrets: an ACME problem document's detail). */
  readonly reason: string;
}

/**
 * Every router's orders paused after a CA refused one for a rate limit (HTTP 429). Shared, so that
 * a fleet sends one refused order per pause, not one per router; `at` and `until` are the clock of
 * the router that was refused, for operators: how long the pause lasts is counted by the vault
 * (SharedOrderPause.remainingMs), so a reader's clock being off does not stretch or cut it.
 */
export interface OrderPause {
  /** The order the CA refused, and what it said. */
  readonly name: string;
  readonly reason: string;
  readonly at: number;
  readonly until: number;
  /** Refused orders in a row (each after the previous pause ended): how much longer the next pause is. */
  readonly refusals: number;
}

/** A pause as a router reads it: `remainingMs` left by the vault's clock, 0 or less once over (still remembered). */
export interface SharedOrderPause {
  readonly pause: OrderPause;
  readonly remainingMs: number;
}

/** The longest a pause lasts, whatever the CA's Retry-After says (a far date, a clock gone wrong). */
export const MAX_ORDER_PAUSE_MS = 24 * 60 * 60_000;
/** How long a vault remembers a pause after its end: the next refusal within it makes a longer pause. */
export const ORDER_PAUSE_MEMORY_MS = 60 * 60_000;

/** A page of the certificate listing: names after `after` (code-unit order), at most `limit`. */
export interface ListingPage {
  /** The previous page's `next`; none: from the first name. */
  readonly after?: string;
  readonly limit: number;
}

/** The most a page may hold, and what a request without a limit gets. */
export const MAX_LISTING_LIMIT = 10_000;
export const DEFAULT_LISTING_LIMIT = 1_000;

/**
 * What operators see of the issued certificates (admin API): never a key, never a PEM. One page
 * of domains in name order (acme/certificate-listing.ts): their certificates and failed orders.
 */
export interface CertificateStatus {
  readonly certificates: ReadonlyArray<{ readonly name: string; readonly notBefore: string; readonly notAfter: string; readonly renewAt: string }>;
  readonly failures: ReadonlyArray<{ readonly name: string; readonly attempts: number; readonly at: string; readonly retryAt: string; readonly reason: string }>;
  /** The pause of every router's orders after a CA's rate limit, while it lasts (`until` on this router's clock). */
  readonly ordersPaused: { readonly name: string; readonly reason: string; readonly since: string; readonly until: string; readonly refusals: number } | null;
  /** Over every page: domains (with a certificate, a failed order or both), certificates, failures. */
  readonly total: { readonly domains: number; readonly certificates: number; readonly failures: number };
  /** The cursor for the next page (`after`), or null on the last. */
  readonly next: string | null;
}

export interface VaultContents {
  readonly certificates: readonly IssuedCertificate[];
  readonly failures: readonly IssueFailure[];
}

/**
 * What a router needs to bring its copy of the vault up to `version`. `whole`: the records are
 * the entire vault (a first read, or changes too old for the vault to list). Otherwise only the
 * names in `names` changed: each has the records listed here, and none of a kind not listed
 * (forgotten, or a record that could not be read).
 */
export interface VaultChanges extends VaultContents {
  readonly version: string;
  readonly whole: boolean;
  readonly names: readonly string[];
}

export interface CertificateVault {
  /** The ACME account key every router uses: the stored one, or `fresh` when none was stored yet. */
  shareAccountKey(fresh: string): Promise<string>;
  /** An HTTP-01 answer, kept for `ttlMs` at most. */
  putChallenge(token: string, keyAuthorization: string, ttlMs: number): Promise<void>;
  readChallenge(token: string): Promise<string | null>;
  deleteChallenge(token: string): Promise<void>;
  /** True when `holder` now holds the name's order lease for `ttlMs` (taken only if free or already its own). */
  takeLease(name: string, holder: string, ttlMs: number): Promise<boolean>;
  /** Gives the lease back if `holder` still holds it. */
  releaseLease(name: string, holder: string): Promise<void>;
  /** Stores a certificate for its name and clears the name's failure. */
  putCertificate(certificate: IssuedCertificate): Promise<void>;
  putFailure(failure: IssueFailure): Promise<void>;
  /** Forgets a name's certificate and failure (its custom domain was removed). */
  forget(name: string): Promise<void>;
  /**
   * Pauses every router's orders for `ms` (MAX_ORDER_PAUSE_MS at most), counted by the vault's
   * clock, and remembers the pause ORDER_PAUSE_MEMORY_MS after it ends; replaces any pause before.
   */
  pauseOrders(pause: OrderPause, ms: number): Promise<void>;
  /** The pause on or remembered; null when none. */
  readOrderPause(): Promise<SharedOrderPause | null>;
  /** An order went through: the limit is over, and the next refusal starts a short pause again. */
  clearOrderPause(): Promise<void>;
  /** Changes whenever a certificate or failure is written or forgotten: cheap to poll. */
  version(): Promise<string>;
  readAll(): Promise<VaultContents>;
  /**
   * What changed since `version` (a value `version()` or an earlier answer gave; null: nothing
   * read yet). With thousands of custom domains a renewal a minute is normal, and re-reading every
   * certificate for each one would move megabytes per router per minute.
   */
  readChangesSince(version: string | null): Promise<VaultChanges>;
  close(): Promise<void>;
}

/** RFC 8555 §8.1: a token is base64url; CAs use 43 characters. Anything else is refused before any lookup. */
export function isChallengeToken(token: string): boolean {
  return token.length >= 16 && token.length <= 128 && /^[A-Za-z0-9_-]+$/.test(token);
}
