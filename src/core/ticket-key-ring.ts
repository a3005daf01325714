/**
 * The TLS session-ticket key ring the routers share through the health registry, and the rule
 * every registry applies to it (the registry stores it; ingress/certificates/ticket-keys.ts puts
 * it to use). Pure: no I/O.
 */
import { randomBytes } from 'node:crypto';

/** Node's ticket key material: 16 bytes key name, 16 bytes HMAC secret, 16 bytes AES key. */
export const TICKET_KEY_BYTES = 48;

export interface TicketKeyRing {
  /** Seals new tickets and opens them (base64 of TICKET_KEY_BYTES bytes). */
  readonly current: string;
  /** The key `current` replaced, if any: still opens tickets. */
  readonly previous: string | null;
  /**
   * The key that becomes `current` at the next rotation, handed out a rotation period ahead so
   * that every router opens its tickets before any router seals with it; null until the first
   * offer after a rotation stages one.
   */
  readonly next: string | null;
  /** When `current` was stored (epoch ms, the registry's clock). */
  readonly createdAt: number;
}

/** A fresh key, in the form the registry stores. */
export function newTicketKey(): string {
  return randomBytes(TICKET_KEY_BYTES).toString('base64');
}

export function isTicketKey(value: unknown): value is string {
  return typeof value === 'string' && /^[A-Za-z0-9+/]+={0,2}$/.test(value) && Buffer.from(value, 'base64').length === TICKET_KEY_BYTES;
}

/**
 * The shortest rotation period a router takes (0 turns sharing off). Each router looks at the ring
 * at least once a second, and a staged key must have reached every router before any seals with
 * it: a period of a few looks leaves it that time.
 */
export const MIN_TICKET_ROTATION_MS = 5_000;

/**
 * The rule every registry applies when a router offers `fresh` at `nowMs`. While the current key
 * is younger than `rotateEveryMs` the ring stands, except that an empty `next` takes the offer
 * (staged: every router picks it up for opening within its next look). Past that age the staged
 * key becomes current and the offer is staged in its place; with nothing staged (the very first
 * ring, or one stored before staging existed) the offer becomes current at once.
 *
 * A clock that reads earlier than the ring's `createdAt` (stepped back, or a replica promoted with
 * its clock behind) rebases it to now rather than rotating: rotating would make current a key
 * staged perhaps moments ago, before the other routers looked, and their clients' tickets would
 * cost a full handshake; waiting for the clock to catch up could hold one key for hours.
 */
export function nextTicketRing(stored: TicketKeyRing | null, fresh: string, nowMs: number, rotateEveryMs: number): TicketKeyRing {
  if (stored !== null && nowMs - stored.createdAt < rotateEveryMs) {
    const createdAt = Math.min(stored.createdAt, nowMs);
    if (stored.next !== null && createdAt === stored.createdAt) return stored;
    return { ...stored, next: stored.next ?? fresh, createdAt };
  }
  if (stored?.next != null) return { current: stored.next, previous: stored.current, next: fresh, createdAt: nowMs };
  return { current: fresh, previous: stored?.current ?? null, next: null, createdAt: nowMs };
}
