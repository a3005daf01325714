/**
 * TLS session-ticket keys shared by every worker of every router, through the health registry.
 *
 * A TLS 1.3 (or 1.2) client that comes back presents a ticket: the session's secrets, sealed
 * with the server's ticket key. Any process holding the same key resumes the session without a
 * full handshake (no certificate signature, no key exchange on the server's side: the costly
 * part). Each Node process makes up its own key, so without sharing, a client whose next
 * connection lands on another worker or router pays the full handshake again.
 *
 * The ring lives in the registry: the first router to ask stores the key it offers; later askers
 * get the stored one. When the key is older than the rotation period, the next asker's offer
 * replaces it (atomically: one winner however many ask at once), and every router picks the new
 * key up within `checkEveryMs`. The new key seals; the previous one still opens tickets (a ticket
 * opened under it is replaced by one under the new key), so a rotation does not send every recent
 * client back to a full handshake. Two exceptions: a ticket two rotations old is refused, and while
 * a rotation spreads (up to `checkEveryMs`) a ticket sealed under the new key by a process that has
 * it does not open on one that has not yet looked.
 * (On a Node without the hook ticket-key-callback.ts needs, only the newest key opens.)
 *
 * The keys are secrets: they are never logged; only a short fingerprint is.
 */
import { createHash } from 'node:crypto';
import { isTicketKey, newTicketKey, type TicketKeyRing } from '../../core/ticket-key-ring.js';

/** A short, non-reversible name for a key, for the logs. */
export function ticketKeyFingerprint(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 12);
}

export interface TicketKeySource {
  shareTicketKeys(fresh: string, rotateEveryMs: number): Promise<TicketKeyRing>;
}

export interface TicketKeySyncOptions {
  readonly registry: TicketKeySource;
  readonly rotateEveryMs: number;
  /** How often the ring is read again (a rotation elsewhere reaches this router within it). */
  readonly checkEveryMs: number;
  /** Installs the keys on the TLS listener(s), newest first: the first seals, each opens. */
  readonly apply: (keys: readonly Buffer[]) => void;
  readonly onChange?: (fingerprint: string, ring: TicketKeyRing) => void;
  readonly onError?: (err: Error) => void;
}

/** Keeps this process's TLS listeners on the registry's current ticket key. */
export class TicketKeySync {
  private timer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Failed looks in a row: the next one comes sooner than `checkEveryMs` (0.5 s, doubling). */
  private failures = 0;
  private applied: string | null = null;
  private running: Promise<void> | undefined;

  constructor(private readonly options: TicketKeySyncOptions) {}

  /** The key in use, or null while none came from the registry (Node's own random key is in use). */
  get fingerprint(): string | null {
    return this.applied === null ? null : ticketKeyFingerprint(this.applied);
  }

  /** Reads (or seeds) the ring now and every `checkEveryMs`. Resolves after the first attempt, whatever its outcome. */
  start(): Promise<void> {
    this.timer ??= setInterval(() => void this.check(), this.options.checkEveryMs);
    this.timer.unref();
    return this.check();
  }

  stop(): void {
    clearInterval(this.timer);
    clearTimeout(this.retryTimer);
    this.timer = undefined;
    this.retryTimer = undefined;
  }

  /** One look at the registry; a failure keeps the key in use (fail-static, like routing). */
  check(): Promise<void> {
    this.running ??= this.sync().finally(() => (this.running = undefined));
    return this.running;
  }

  private async sync(): Promise<void> {
    try {
      const ring = await this.options.registry.shareTicketKeys(newTicketKey(), this.options.rotateEveryMs);
      if (!isTicketKey(ring.current)) throw new Error('the registry holds a malformed TLS ticket key');
      this.failures = 0;
      if (ring.current === this.applied) return;
      const keys = [Buffer.from(ring.current, 'base64')];
      if (ring.previous !== null) {
        if (isTicketKey(ring.previous)) keys.push(Buffer.from(ring.previous, 'base64'));
        // The current key still goes in; only tickets of the previous one cost a full handshake.
        else this.options.onError?.(new Error('the registry holds a malformed previous TLS ticket key: only the current one opens tickets'));
      }
      this.options.apply(keys);
      this.applied = ring.current;
      this.options.onChange?.(ticketKeyFingerprint(ring.current), ring);
    } catch (err) {
      this.options.onError?.(err instanceof Error ? err : new Error(String(err)));
      // A registry still connecting at start (or back soon) is asked again well before the next
      // regular look: until then this process seals tickets no other one can open.
      if (this.timer !== undefined) {
        clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(() => void this.check(), Math.min(this.options.checkEveryMs, 500 * 2 ** Math.min(this.failures++, 10)));
        this.retryTimer.unref();
      }
    }
  }
}
