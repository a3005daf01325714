/**
 * Keeps a certificate for every custom domain that no operator-supplied certificate covers. Every
 * router runs one: each keeps its copy of the vault's certificates current (a cheap version read
 * per check, and only the names that changed when it moved) and hands them to the TLS layer; when a name
 * is due (issuance-plan.ts), the router that takes the name's lease orders it, and every router
 * serves the result after its next check. Orders run one at a time per router: a CA's rate limits
 * make parallel orders pointless, and an order is seconds, not the request path.
 */
import {
  DEFAULT_LISTING_LIMIT,
  MAX_ORDER_PAUSE_MS,
  type CertificateStatus,
  type CertificateVault,
  type IssuedCertificate,
  type IssueFailure,
  type ListingPage,
  type OrderPause,
  type SharedOrderPause,
} from '../core/certificate-vault.js';
import { RateLimitedError, type CertificateIssuer } from './acme-issuer.js';
import { CertificateListing } from './certificate-listing.js';
import { failureAfter, forgettable, isForgettable, orderPauseAfterRateLimit, ordersDue, renewalDue, waitAfterRateLimit, type Order } from './issuance-plan.js';
import { thrownText } from '../core/errors.js';

export type CertificateEvent =
  | { readonly type: 'issued'; readonly name: string; readonly reason: Order['reason']; readonly notAfter: number; readonly ms: number }
  | { readonly type: 'failed'; readonly failure: IssueFailure }
  /** The CA refused an order for a rate limit: the name waits for its retry time, every router's orders for `pause`. */
  | { readonly type: 'rate-limited'; readonly failure: IssueFailure; readonly pause: OrderPause }
  /** A removed domain's expired certificate (or spent failure record) deleted from the vault. */
  | { readonly type: 'forgotten'; readonly name: string }
  | { readonly type: 'vault-error'; readonly message: string }
  /** An order in progress given up at stop(): the CA client's own timers may hold the process a few seconds more. */
  | { readonly type: 'abandoned'; readonly name: string };

export interface CertificateManagerOptions {
  readonly vault: CertificateVault;
  readonly issuer: CertificateIssuer;
  /** Custom domains that need an issued certificate (operator-supplied certificates already left out). */
  readonly wantedNames: () => Iterable<string>;
  /** Unique per process: the lease's holder. */
  readonly holder: string;
  /** The vault's certificates, whenever they change (the TLS layer serves from this). */
  readonly onCertificates: (certificates: ReadonlyMap<string, IssuedCertificate>) => void;
  readonly onEvent?: (event: CertificateEvent) => void;
  /** Between checks of the vault and of what is due (default 30 s). */
  readonly checkEveryMs?: number;
  /** An order's lease (default 10 min): long enough for any order, short enough that a crashed router's order is taken over. */
  readonly leaseMs?: number;
  readonly now?: () => number;
}

export class CertificateManager {
  private certificates: ReadonlyMap<string, IssuedCertificate> = new Map();
  private failures: ReadonlyMap<string, IssueFailure> = new Map();
  private readonly listing = new CertificateListing();
  private seenVersion: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  /** Aborted by `stop()`: an order in progress is given up rather than awaited (below). */
  private readonly stopping = new AbortController();
  /** The vault's pause of every router's orders at the last look, with its end on this router's clock. */
  private orderPause: { shared: SharedOrderPause; until: number } | null = null;
  private readonly now: () => number;

  constructor(private readonly options: CertificateManagerOptions) {
    this.now = options.now ?? Date.now;
  }

  /**
   * Loads what the vault holds, so certificates are served from the first connection on, then
   * orders what is due in the background and checks again on a timer. A vault that cannot be
   * read now is reported and read at the next check: it does not hold the router's start.
   */
  async start(): Promise<void> {
    await this.refresh().catch((err: unknown) => this.reportVaultError(err));
    this.wake();
    this.timer = setInterval(() => this.wake(), this.options.checkEveryMs ?? 30_000);
    this.timer.unref();
  }

  /** Check now (a custom domain was added): runs after the check in progress, if any. */
  wake(): void {
    if (!this.stopped) void this.check();
  }

  /** What the vault held at the last check, for operators (admin API): dates, no keys; one page of domains in name order. */
  status(page: ListingPage = { limit: DEFAULT_LISTING_LIMIT }): CertificateStatus {
    const listed = this.listing.page(this.certificates, this.failures, renewalDue, page);
    const on = this.orderPause !== null && this.orderPause.until > this.now() ? this.orderPause : null;
    const ordersPaused =
      on === null
        ? null
        : { name: on.shared.pause.name, reason: on.shared.pause.reason, since: new Date(on.shared.pause.at).toISOString(), until: new Date(on.until).toISOString(), refusals: on.shared.pause.refusals };
    return { ...listed, ordersPaused };
  }

  /**
   * Stops checking. An order in progress is given up and its lease released, so that another
   * router takes the name at its next check: a CA polls for minutes (nine tenths of the lease, 9
   * min by default), and a router's shutdown waited for it after its drain, past the drain's
   * deadline and any service manager's grace period (seen in review). The CA's answer, if it
   * still comes, is dropped; no failure is recorded, since none was the CA's. acme-client cannot be
   * cancelled: its polling timers (5–30 s) may hold the process until the exit backstop (5 s), which
   * the `abandoned` event lets an operator tell from a leak.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.stopping.abort();
    await this.running;
  }

  /** One check, never two at once; a wake during it asks for one more. */
  check(): Promise<void> {
    if (this.running !== undefined) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.checkOnce().catch((err: unknown) => this.reportVaultError(err));
      } while (this.again && !this.stopped);
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private reportVaultError(err: unknown): void {
    this.options.onEvent?.({ type: 'vault-error', message: thrownText(err) });
  }

  private async checkOnce(): Promise<void> {
    if (!(await this.refresh())) this.options.onCertificates(this.certificates); // served again: one may have expired since
    const wanted = new Set(this.options.wantedNames());
    await this.readOrderPause();
    for (const order of ordersDue(wanted, this.certificates, this.failures, this.now())) {
      if (this.stopped) return;
      // Read again before each order: another router may have been refused since.
      if (await this.ordersPausedNow()) break;
      await this.order(order);
    }
    // Removed domains: their records would otherwise stay in the vault for ever.
    for (const name of forgettable(wanted, this.certificates, this.failures, this.now())) {
      if (this.stopped) return;
      await this.forget(name);
    }
  }

  /**
   * Deletes a removed domain's records, under its lease and judged again on a fresh read: this
   * router's view may be minutes old (an order in between), and a router that still wants the
   * name — its own registry view may differ for a moment — may have renewed it meanwhile, or be
   * ordering it now (then it holds the lease).
   */
  private async forget(name: string): Promise<void> {
    const { vault, holder } = this.options;
    if (!(await vault.takeLease(name, holder, this.options.leaseMs ?? DEFAULT_LEASE_MS))) return;
    try {
      await this.refresh();
      if (!isForgettable(name, new Set(this.options.wantedNames()), this.certificates, this.failures, this.now())) return;
      await vault.forget(name);
      this.options.onEvent?.({ type: 'forgotten', name });
      await this.refresh();
    } finally {
      await vault.releaseLease(name, holder).catch(() => undefined); // it expires by itself
    }
  }

  /** Reads the shared pause; its end is taken on this router's clock from what the vault says is left, a day at most. */
  private async readOrderPause(): Promise<void> {
    const shared = await this.options.vault.readOrderPause();
    this.orderPause = shared === null ? null : { shared, until: this.now() + Math.min(shared.remainingMs, MAX_ORDER_PAUSE_MS) };
  }

  private async ordersPausedNow(): Promise<boolean> {
    await this.readOrderPause();
    return this.orderPause !== null && this.orderPause.until > this.now();
  }

  /** Reads what changed when the vault's version moved (and then hands the certificates on); true when it did. */
  private async refresh(): Promise<boolean> {
    const version = await this.options.vault.version();
    if (version === this.seenVersion) return false;
    const changes = await this.options.vault.readChangesSince(this.seenVersion ?? null);
    if (changes.whole) {
      this.failures = new Map(changes.failures.map((f) => [f.name, f]));
      this.certificates = new Map(changes.certificates.map((c) => [c.name, c]));
    } else {
      this.failures = patched(this.failures, changes.names, changes.failures);
      this.certificates = patched(this.certificates, changes.names, changes.certificates);
    }
    this.seenVersion = changes.version;
    this.options.onCertificates(this.certificates);
    return true;
  }

  private async order(order: Order): Promise<void> {
    const { vault, holder } = this.options;
    const leaseMs = this.options.leaseMs ?? DEFAULT_LEASE_MS;
    if (!(await vault.takeLease(order.name, holder, leaseMs))) return; // another router is on it
    try {
      // Another router may have finished this name between our read and our lease.
      await this.refresh();
      // And the name must still be wanted: a check's orders run one after another, for hours when
      // many are due, and one removed meanwhile (or now covered by a certificate file) would still
      // be ordered, against the CA's rate limits, and failing once its DNS has moved away.
      if (!new Set(this.options.wantedNames()).has(order.name)) return;
      const still = ordersDue([order.name], this.certificates, this.failures, this.now());
      if (still.length === 0) return;
      // Stopped during the waits above: an order started now would reach the CA, count against its
      // limits (five duplicate certificates a week at Let's Encrypt), and be abandoned at once.
      if (this.stopped) return;
      const started = this.now();
      let certificate: IssuedCertificate;
      try {
        certificate = await withinLease(this.options.issuer.issue(order.name), leaseMs, this.stopping.signal);
      } catch (err) {
        if (err === STOPPED) return this.options.onEvent?.({ type: 'abandoned', name: order.name });
        if (err instanceof RateLimitedError) return await this.rateLimited(order.name, err);
        const failure = failureAfter(this.failures.get(order.name), order.name, reasonOf(err), this.now());
        await vault.putFailure(failure);
        this.options.onEvent?.({ type: 'failed', failure });
        return;
      }
      await vault.putCertificate(certificate);
      await this.limitOver().catch((err: unknown) => this.reportVaultError(err)); // left, it expires by itself
      // Read back before it is announced, so that "issued" means this router presents it (unless
      // the read fails: then the vault error is reported first, and the next check serves it).
      await this.refresh().catch((err: unknown) => this.reportVaultError(err));
      this.options.onEvent?.({ type: 'issued', name: order.name, reason: order.reason, notAfter: certificate.notAfter, ms: this.now() - started });
    } finally {
      await vault.releaseLease(order.name, holder).catch(() => undefined); // it expires by itself
    }
  }

  /** The name waits for the CA's retry time, and every router's orders for the pause (issuance-plan.ts). */
  private async rateLimited(name: string, err: RateLimitedError): Promise<void> {
    const reason = reasonOf(err);
    const failure = waitAfterRateLimit(this.failures.get(name), name, reason, this.now(), err.retryAt);
    const previous = await this.options.vault.readOrderPause();
    const { pause, ms } = orderPauseAfterRateLimit(name, reason, this.now(), err.retryAt, previous);
    await this.options.vault.pauseOrders(pause, ms);
    this.orderPause = { shared: { pause, remainingMs: ms }, until: this.now() + ms };
    await this.options.vault.putFailure(failure);
    this.options.onEvent?.({ type: 'rate-limited', failure, pause });
  }

  /**
   * A certificate was issued: the limit that paused orders is over, for every router, and the next
   * refusal starts with a short pause again. (Other failures say nothing of it: the CA may not have
   * been reached at all.)
   */
  private async limitOver(): Promise<void> {
    if (this.orderPause === null) return;
    this.orderPause = null;
    await this.options.vault.clearOrderPause();
  }
}

const DEFAULT_LEASE_MS = 10 * 60_000;

/**
 * An order given up at nine tenths of its lease. Past the lease another router may take the name
 * and order it too: two orders for one name, against the CA's rate limits, with the slow one's
 * certificate written over the other's. Given up, it is a failure like any other (retried after
 * the backoff); the CA's answer, if it still comes, is dropped. The clock is the real one: the
 * lease expires in the vault by it (Redis PX).
 */
function withinLease<T>(work: Promise<T>, leaseMs: number, stopping: AbortSignal): Promise<T> {
  const limitMs = Math.floor(leaseMs * 0.9);
  let timer: NodeJS.Timeout | undefined;
  let onStop: (() => void) | undefined;
  const givenUp = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`the order did not finish within ${limitMs} ms, nine tenths of its lease; given up, to be tried again`)), limitMs);
    onStop = () => reject(STOPPED);
    if (stopping.aborted) onStop();
    else stopping.addEventListener('abort', onStop, { once: true });
  });
  work.catch(() => undefined); // its failure after the deadline is nobody's to handle
  return Promise.race([work, givenUp]).finally(() => {
    clearTimeout(timer);
    stopping.removeEventListener('abort', onStop!);
  });
}

/** What an order given up at `stop()` rejects with: not a failure of the CA's. */
const STOPPED = Symbol('stopped');

/** `view` with each name in `names` set to its record in `records`, or removed when it has none there. */
function patched<T extends { readonly name: string }>(view: ReadonlyMap<string, T>, names: readonly string[], records: readonly T[]): ReadonlyMap<string, T> {
  const next = new Map(view);
  for (const name of names) next.delete(name);
  for (const record of records) next.set(record.name, record);
  return next;
}

/** One line an operator can act on: an ACME problem's detail, or the error's message. */
function reasonOf(err: unknown): string {
  const message = thrownText(err);
  return message.replace(/\s+/g, ' ').trim() || 'unknown error';
}
