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
  /** The key `current` replaced, if any. */
  readonly previous: string | null;
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
 * The rule every registry applies when a router offers `fresh` at `nowMs`: keep the stored ring
 * while its key is younger than `rotateEveryMs`, else put `fresh` in front of it.
 */
export function nextTicketRing(stored: TicketKeyRing | null, fresh: string, nowMs: number, rotateEveryMs: number): TicketKeyRing {
  if (stored !== null && nowMs - stored.createdAt < rotateEveryMs && nowMs >= stored.createdAt) return stored;
  return { current: fresh, previous: stored?.current ?? null, createdAt: nowMs };
}
