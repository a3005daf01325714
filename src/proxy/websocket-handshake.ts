/**
 * The router's checks on the HTTP/1.1 WebSocket handshake it makes with a region (RFC 6455 §4).
 * A client that opened its WebSocket over HTTP/2 (RFC 8441) sends no Sec-WebSocket-Key (HTTP/2
 * has no Upgrade), but the region speaks HTTP/1.1 and expects one: the router makes it up. An
 * HTTP/1.1 client's own key is passed on. Either way the router checks the region's
 * Sec-WebSocket-Accept as a client would: a 101 without the right answer did not come from a
 * WebSocket server that read this request, and is treated as the region failing.
 */
import { createHash, randomBytes } from 'node:crypto';

/** RFC 6455 §1.3: the GUID appended to the key before hashing. */
const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** A fresh Sec-WebSocket-Key: 16 random bytes, base64 (RFC 6455 §4.1). */
export function newWebSocketKey(): string {
  return randomBytes(16).toString('base64');
}

/**
 * Whether `value` can be a client's Sec-WebSocket-Key: 16 bytes, base64 (RFC 6455 §4.2.1 item 5;
 * the pattern `ws` checks too). Node joins repeated fields with ", ", so two keys fail it.
 */
export function isWebSocketKey(value: string | undefined): value is string {
  return value !== undefined && /^[A-Za-z0-9+/]{22}==$/.test(value);
}

/** The Sec-WebSocket-Accept a server must answer `key` with (RFC 6455 §4.2.2). */
export function webSocketAcceptFor(key: string): string {
  return createHash('sha1').update(key + WEBSOCKET_GUID).digest('base64');
}

/** Whether a 101's headers answer `key` (one Sec-WebSocket-Accept, the right one). */
export function answersWebSocketKey(headers: Readonly<Record<string, string | string[] | undefined>>, key: string): boolean {
  const accept = headers['sec-websocket-accept'];
  return typeof accept === 'string' && accept.trim() === webSocketAcceptFor(key);
}
