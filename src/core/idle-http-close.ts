/**
 * Closing the idle connections of an HTTP/1 server at a drain without cutting an answer short.
 * Node's `closeIdleConnections()` (also run by `server.close()` since Node 19) takes a connection
 * for idle once its answer has ended, though the answer may still wait in the socket's buffer
 * behind a client that reads slowly, and destroys it: the client got a body short of its length.
 */
import { Server, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { privateField } from './private-field.js';

interface ConnectionList {
  idle(): Array<{ readonly socket?: (Socket & { readonly _httpMessage?: ServerResponse | null }) | null }>;
}

/**
 * As `server.closeIdleConnections()`, but a connection whose answer is still leaving is ended
 * (closed once its buffer has gone out) rather than destroyed. Without Node's connection list,
 * Node's own.
 */
export function closeIdleHttpConnections(server: Server<typeof IncomingMessage, typeof ServerResponse>): void {
  const list = privateField<ConnectionList>(server, 'http.server.connections');
  if (list === undefined || typeof list.idle !== 'function') return Server.prototype.closeIdleConnections.call(server);
  for (const { socket } of list.idle()) {
    if (socket === null || socket === undefined) continue;
    // As Node: an answer still being written keeps its connection.
    const answer = socket._httpMessage;
    if (answer !== null && answer !== undefined && !answer.writableEnded) continue;
    if (socket.writableLength > 0) socket.end();
    else socket.destroy();
  }
}

/**
 * Makes `server.close()` close its idle connections by closeIdleHttpConnections' rule: Node's
 * close runs the server's own `closeIdleConnections()` first (an HTTP/2 secure server's too, when
 * it takes HTTP/1.1), and a drain that closes its listeners cut every answer still leaving before
 * it could look at them itself.
 */
export function closeIdleByAnswersOnClose(server: Server<typeof IncomingMessage, typeof ServerResponse>): void {
  server.closeIdleConnections = () => closeIdleHttpConnections(server);
}

/** How often answersLeft looks again. */
const LOOK_EVERY_MS = 25;

/** Whether an HTTP/1 connection holds an answer still leaving: bytes in its buffer. */
export function http1AnswerLeaving(socket: Socket): boolean {
  return !socket.destroyed && socket.writableLength > 0;
}

/**
 * Whether an HTTP/2 connection, its session closed (GOAWAY), may still carry an answer: until the
 * connection has closed. Node ends the socket once the session has no stream left, but a stream
 * ends when its last frame is in the kernel's buffers, megabytes short of a client with a large
 * window that reads slowly; and that client goes on sending WINDOW_UPDATEs as it reads, which, met
 * by a socket the router has destroyed, make the kernel answer with a reset that discards the rest.
 * The client closes once its streams are done (it was sent GOAWAY); one that does not is cut
 * HTTP2_CLOSE_GRACE_MS after the end (public-servers.ts).
 */
export function http2AnswerLeaving(socket: Socket): boolean {
  return !socket.destroyed;
}

/**
 * Resolves true once none of `sockets` holds an answer still leaving (`leaving`, by default bytes
 * in an HTTP/1 connection's buffer), false when `timeoutMs` passes first. A drain that ends by
 * destroying every connection waits on it: an answer its handler has ended may still sit behind a
 * client that reads slowly, and destroyed it lost its end. Looked at again every LOOK_EVERY_MS, not
 * on 'drain': a socket emits that only after a write that was refused, so a buffer below its
 * high-water mark goes out unannounced.
 */
export async function answersLeft(sockets: Iterable<Socket>, timeoutMs: number, leaving: (socket: Socket) => boolean = http1AnswerLeaving): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    let pending = false;
    for (const socket of sockets) {
      if (leaving(socket)) {
        pending = true;
        break;
      }
    }
    if (!pending) return true;
    const left = deadline - performance.now();
    if (left <= 0) return false;
    await new Promise((resolve) => setTimeout(resolve, Math.min(LOOK_EVERY_MS, left)));
  }
}
