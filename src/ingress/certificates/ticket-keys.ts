/**
 * TLS session-ticket keys shared by every worker of every router, through the health registry.
 *
 * A TLS 1.3 (or 1.2) client that comes back presents a ticket: the session's secrets, sealed
 * with the server's ticket key. Any process holding the same key resumes the session without a
 * full handshake (no certificate signature, no key exchange on the server's side: the costly
 * part). Each Node process makes up its own key, so without sharing, a client whose next
 * connection lands on another worker or router pays the full handshake again.
 *
 * The ring lives in the registry (core/ticket-key-ring.ts has the rule): the first router to ask
 * stores the key it offers as `current`; the next offer is staged as `next`. When `current` is
 * older than the rotation period, the next asker makes the staged key current and stages its own
 * offer (atomically: one winner however many ask at once), and every router picks the change up
 * within `checkEveryMs`. Because `next` was handed out a rotation period before it seals anything,
 * every router opens its tickets by then; after the rotation the previous key still opens (a
 * ticket opened under it is replaced by one under the new key). So a rotation sends no client
 * back to a full handshake; a ticket two rotations old does. (On a Node without the hook
 * ticket-key-callback.ts needs, only the current key opens.)
 *
 * The keys are secrets: they are never logged; only a short fingerprint is.
 */
import { createHash } from 'node:crypto';
import { isTicketKey, newTicketKey, type TicketKeyRing } from '../../core/ticket-key-ring.js';
import type { TicketKeys } from './ticket-key-callback.js';

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
  /** Installs the keys on the TLS listener(s): the current one seals, each opens. */
  readonly apply: (keys: TicketKeys) => void;
  readonly onChange?: (fingerprint: string, ring: TicketKeyRing) => void;
  readonly onError?: (err: Error) => void;
  /** The registry has not answered for `unreadForMs`, over twice the rotation period: a key of this process's own seals now. */
  readonly onSealingLocally?: (unreadForMs: number) => void;
  /** The clock (epoch ms); tests move it. */
  readonly now?: () => number;
}

/** Keeps this process's TLS listeners on the registry's current ticket key. */
export class TicketKeySync {
  private timer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Failed looks in a row: the next one comes sooner than `checkEveryMs` (0.5 s, doubling). */
  private failures = 0;
  private applied: string | null = null;
  /** The ring last handed to `apply` (current, next and previous), to re-apply only on a change. */
  private installed = '';
  private running: Promise<void> | undefined;
  /** When the registry last answered with a ring (0: never). */
  private lastReadAt = 0;
  /** While the registry has not answered for too long: when this process's own key began to seal (0: not now), and that key. */
  private localAt = 0;
  private localKey: Buffer | undefined;
  private readonly now: () => number;
  /** When this sync was made: the outage of a registry that has never answered is counted from here. */
  private readonly createdAt: number;

  constructor(private readonly options: TicketKeySyncOptions) {
    this.now = options.now ?? Date.now;
    this.createdAt = this.now();
  }

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

  /** A ring's `next` or `previous` as a key to install, or undefined (absent, or malformed: reported, and left out). */
  private optional(key: string | null, which: 'next' | 'previous'): Buffer | undefined {
    if (key === null) return undefined;
    if (isTicketKey(key)) return Buffer.from(key, 'base64');
    // The current key still goes in; only tickets under this one cost a full handshake.
    this.options.onError?.(new Error(`the registry holds a malformed ${which} TLS ticket key: it opens no tickets`));
    return undefined;
  }

  private async sync(): Promise<void> {
    try {
      const ring = await this.options.registry.shareTicketKeys(newTicketKey(), this.options.rotateEveryMs);
      if (!isTicketKey(ring.current)) throw new Error('the registry holds a malformed TLS ticket key');
      this.failures = 0;
      this.lastReadAt = this.now();
      this.localAt = 0;
      this.localKey = undefined;
      const installed = `${ring.current} ${ring.next ?? ''} ${ring.previous ?? ''}`;
      if (installed === this.installed) return;
      const keys: TicketKeys = { current: Buffer.from(ring.current, 'base64'), next: this.optional(ring.next, 'next'), previous: this.optional(ring.previous, 'previous') };
      this.options.apply(keys);
      this.installed = installed;
      if (ring.current === this.applied) return; // only the staged key changed
      this.applied = ring.current;
      this.options.onChange?.(ticketKeyFingerprint(ring.current), ring);
    } catch (err) {
      this.options.onError?.(err instanceof Error ? err : new Error(String(err)));
      this.sealLocallyIfStale();
      // A registry still connecting at start (or back soon) is asked again well before the next
      // regular look: until then this process seals tickets no other one can open.
      if (this.timer !== undefined) {
        clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(() => void this.check(), Math.min(this.options.checkEveryMs, 500 * 2 ** Math.min(this.failures++, 10)));
        this.retryTimer.unref();
      }
    }
  }

  /**
   * Fail-static keeps the shared key through a registry outage, but not for ever: a key that seals
   * without end would open every session resumed since it was made, should it leak. Once the
   * registry has not answered for twice the rotation period, this process seals with a key of its
   * own, made again every period (the one before still opens), until the registry answers; its
   * clients resume only here meanwhile.
   */
  private sealLocallyIfStale(): void {
    const now = this.now();
    const { rotateEveryMs } = this.options;
    // A registry that has not answered since the start (a worker respawned during an outage, which
    // routes on the primary's held copy) counts from the start: Node's own random key sealed until
    // the outage ended, however many periods that was (seen in review).
    const lastAnswerAt = this.lastReadAt === 0 ? this.createdAt : this.lastReadAt;
    if (now - lastAnswerAt < 2 * rotateEveryMs) return;
    if (this.localAt !== 0 && now - this.localAt < rotateEveryMs) return;
    const previous = this.localKey;
    this.localKey = Buffer.from(newTicketKey(), 'base64');
    this.localAt = now;
    this.options.apply({ current: this.localKey, next: undefined, previous });
    // The registry's ring goes in again, as a change, once it answers.
    this.installed = '';
    this.applied = null;
    this.options.onSealingLocally?.(now - lastAnswerAt);
  }
}
