/**
 * The bytes an HTTP/1.1 client sends after its upgrade's head, before the region has answered,
 * read as they come and kept for the tunnel's first bytes.
 *
 * Why read them at once: Node reports a FIN only after the bytes before it have been read, and
 * nothing read an upgraded socket before its tunnel existed. A client that sent a frame too soon
 * and then half-closed was not noticed as gone, and its upgrade kept its gate slot, its upstream
 * request and its address's place until the region answered or the tier deadline.
 *
 * Kept up to a bound (a WebSocket client must not send before the 101 at all, RFC 6455 §4.1):
 * past it the socket is paused, and the kernel's buffer and TCP's window hold the rest, as they
 * held everything before.
 */
import type { Duplex } from 'node:stream';

/** Bytes kept before the region answers; past them the client's side is no longer read until the tunnel is up. */
export const MAX_EARLY_BYTES = 64 * 1024;

export interface EarlyBytes {
  /**
   * What was kept (the head's bytes first), once, when the tunnel is up: reading stops here and the
   * socket is left paused, so nothing falls between this and the tunnel's own reader.
   */
  take(): Buffer;
}

export function collectEarlyBytes(socket: Duplex, head: Buffer, maxBytes = MAX_EARLY_BYTES): EarlyBytes {
  const chunks: Buffer[] = head.length > 0 ? [head] : [];
  let size = head.length;
  const keep = (chunk: Buffer) => {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= maxBytes) socket.pause();
  };
  // Paused first, a full head is not read on: adding the listener then does not resume the socket.
  if (size >= maxBytes) socket.pause();
  socket.on('data', keep);
  return {
    take() {
      socket.pause();
      socket.removeListener('data', keep);
      return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
    },
  };
}
