/**
 * The router's own half of an HTTP/1.1 WebSocket handshake (RFC 6455 §4), for a client that opened
 * its WebSocket over HTTP/2 (RFC 8441). Such a client sends no Sec-WebSocket-Key (HTTP/2 has no
 * Upgrade), but the region speaks HTTP/1.1 and expects one; the router makes it up, and checks the
 * region's Sec-WebSocket-Accept as a client would: a 101 without the right answer did not come
 * from a WebSocket server that read this request, and is treated as the region failing.
 */
import { createHash, randomBytes } from 'node:crypto';

/** RFC 6455 §1.3: the GUID appended to the key before hashing. */
const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** A fresh Sec-WebSocket-Key: 16 random bytes, base64 (RFC 6455 §4.1). */
export function newWebSocketKey(): string {
  return randomBytes(16).toString('base64');
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
