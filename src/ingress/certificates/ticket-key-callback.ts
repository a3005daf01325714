/**
 * Session tickets sealed under the current key of the shared ring and opened under any key of it
 * (the staged next one and the previous one too).
 *
 * Node's public API holds one ticket key per server (`setTicketKeys`). With only that, a rotation
 * refuses every ticket sealed under the old key: every client that came within the last session
 * lifetime pays a full handshake, at the same moment, on every router. Envoy (`session_ticket_keys`:
 * the first seals, all open) and nginx (several `ssl_session_ticket_key` files) keep the previous
 * key for opening. OpenSSL's ticket-key callback makes that possible, and Node exposes it only
 * through an undocumented method of the native context (`enableTicketKeyCallback`, kept for Node's
 * own test of ticket renewal). It is used when present; otherwise the server falls back to the one
 * key, as before, and says so (`installTicketKeyRing` returns false).
 *
 * The callback runs once per ticket sealed or opened (a handshake), never per request.
 */
import { randomBytes } from 'node:crypto';
import type { Server as TlsServer } from 'node:tls';
import { TICKET_KEY_BYTES } from '../../core/ticket-key-ring.js';

const PART_BYTES = 16;

/** Node's 48-byte key in its three parts: the name a ticket carries, the HMAC secret, the AES key. */
export interface TicketKeyParts {
  readonly name: Buffer;
  readonly hmac: Buffer;
  readonly aes: Buffer;
}

export function ticketKeyParts(key: Buffer): TicketKeyParts {
  if (key.length !== TICKET_KEY_BYTES) throw new RangeError(`a TLS ticket key is ${TICKET_KEY_BYTES} bytes, not ${key.length}`);
  return { name: key.subarray(0, PART_BYTES), hmac: key.subarray(PART_BYTES, 2 * PART_BYTES), aes: key.subarray(2 * PART_BYTES) };
}

/** The keys a server holds: `current` seals; each opens. */
export interface TicketKeys {
  readonly current: Buffer;
  /** Staged to become current at the next rotation (another router may already seal with it). */
  readonly next?: Buffer | undefined;
  /** The one `current` replaced. */
  readonly previous?: Buffer | undefined;
}

/** What to do with a ticket a client presents. */
export type TicketOpening =
  | { readonly verdict: 'open'; readonly key: TicketKeyParts }
  /** Sealed under the previous key: opened, and the client gets a new ticket under the current one. */
  | { readonly verdict: 'open-and-renew'; readonly key: TicketKeyParts }
  /** No key held has that name: a full handshake. */
  | { readonly verdict: 'unknown' };

/** Which key seals, and which opens a given ticket. Pure. */
export class TicketKeyChoice {
  readonly sealing: TicketKeyParts;
  private readonly next: TicketKeyParts | undefined;
  private readonly previous: TicketKeyParts | undefined;

  constructor(keys: TicketKeys) {
    this.sealing = ticketKeyParts(keys.current);
    this.next = keys.next === undefined ? undefined : ticketKeyParts(keys.next);
    this.previous = keys.previous === undefined ? undefined : ticketKeyParts(keys.previous);
  }

  opening(name: Buffer): TicketOpening {
    if (this.sealing.name.equals(name)) return { verdict: 'open', key: this.sealing };
    // A ticket under the staged key comes from a router that rotated first: good as it is.
    if (this.next?.name.equals(name) === true) return { verdict: 'open', key: this.next };
    if (this.previous?.name.equals(name) === true) return { verdict: 'open-and-renew', key: this.previous };
    return { verdict: 'unknown' };
  }
}

/** The native context's hook (Node's src/crypto/crypto_context.cc), and where its answer's fields go. */
interface NativeSecureContext {
  enableTicketKeyCallback?: () => void;
  onticketkeycallback?: (name: Buffer, iv: Buffer, seal: boolean) => unknown[];
  constructor: Partial<Record<'kTicketKeyReturnIndex' | 'kTicketKeyHMACIndex' | 'kTicketKeyAESIndex' | 'kTicketKeyNameIndex' | 'kTicketKeyIVIndex', number>>;
}

/** OpenSSL's answers to its ticket-key callback. */
const UNKNOWN = 0;
const OPEN = 1;
const OPEN_AND_RENEW = 2;
/** Node reads the key fields even for an unknown ticket (and fails the handshake if the AES key is not 16 bytes). */
const NO_KEY = ticketKeyParts(Buffer.alloc(TICKET_KEY_BYTES));
/** …and, when sealing, the name and IV fields (16 bytes each) whatever the answer. */
const NO_IV = Buffer.alloc(PART_BYTES);

function nativeContextOf(server: TlsServer): NativeSecureContext | undefined {
  return (server as unknown as { _sharedCreds?: { context?: NativeSecureContext } })._sharedCreds?.context;
}

/**
 * Puts `keys` to use on `server`'s own context, which seals and opens tickets whatever certificate
 * SNI chose. Call it again after every `setSecureContext` (a new context brings a random key of
 * its own). Returns false when this Node lacks the hook: only `current` is then in use.
 */
export function installTicketKeyRing(server: TlsServer, keys: TicketKeys): boolean {
  const choice = new TicketKeyChoice(keys);
  server.setTicketKeys(keys.current);
  const native = nativeContextOf(server);
  const at = native?.constructor;
  if (native === undefined || typeof native.enableTicketKeyCallback !== 'function' || at === undefined) return false;
  const { kTicketKeyReturnIndex: result, kTicketKeyHMACIndex: hmac, kTicketKeyAESIndex: aes, kTicketKeyNameIndex: name, kTicketKeyIVIndex: iv } = at;
  if (result === undefined || hmac === undefined || aes === undefined || name === undefined || iv === undefined) return false;

  const answer = (code: number, key: TicketKeyParts, ticketIv?: Buffer): unknown[] => {
    const out: unknown[] = [];
    out[result] = code;
    out[hmac] = key.hmac;
    out[aes] = key.aes;
    if (ticketIv !== undefined) {
      out[name] = key.name;
      out[iv] = ticketIv;
    }
    return out;
  };
  native.onticketkeycallback = (ticketName, _iv, seal) => {
    try {
      if (seal) return answer(OPEN, choice.sealing, randomBytes(PART_BYTES));
      const opening = choice.opening(ticketName);
      if (opening.verdict === 'unknown') return answer(UNKNOWN, NO_KEY);
      return answer(opening.verdict === 'open' ? OPEN : OPEN_AND_RENEW, opening.key);
    } catch {
      // Thrown out of a native callback it would be an uncaught exception (the process would
      // exit). Answered "no key" instead, the handshake carries on: without a ticket when
      // sealing, in full when opening (an error answer would fail the handshake).
      return seal ? answer(UNKNOWN, NO_KEY, NO_IV) : answer(UNKNOWN, NO_KEY);
    }
  };
  native.enableTicketKeyCallback();
  return true;
}
