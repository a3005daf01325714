/**
 * Closes client connections that take nothing of what waits for them.
 *
 * An exchange watches its own answer while it streams (the send timeout, exchange.ts), and an
 * HTTP/2 answer has its stream's timer (http2-stream-pair.ts). Neither sees what is left in an
 * HTTP/1.1 socket's buffer once an answer has ended: the last piece of a response, or the error
 * answers to a pipelined flood (Node stops reading a connection's requests while its buffer is
 * full, and writes what it answered so far into it). A client that stops reading then holds the
 * connection for good: no timer of Node's runs while a response is unfinished, and the keep-alive
 * timer starts only once it is. Found in review and reproduced with pipelined requests that read
 * nothing (test/hostile/slow-clients.test.ts).
 *
 * One sweep over the watched sockets, not a timer per answer: the request path pays nothing, and a
 * sweep reads one number per socket, two for those with bytes waiting: 0.07 ms for 5,000 idle
 * connections here once compiled.
 * Progress is a write the kernel completed (bytes handed out minus bytes still queued): a client
 * that reads, however slowly, keeps its connection, as with the exchange's send timeout.
 */
import { monotonicNow } from '../core/monotonic-clock.js';
import type { Socket } from 'node:net';
import { closingByRouter } from '../proxy/connection-riders.js';

/** What a sweep remembers of a socket with bytes waiting: how much had gone out, and since when nothing more has. */
export interface StallMark {
  readonly sent: number;
  readonly sinceMs: number;
}

/**
 * The next mark for a socket (pure): undefined when nothing waits; a new mark when bytes went out
 * since the last look (or it is the first); the same mark when nothing moved.
 */
export function nextStallMark(previous: StallMark | undefined, waiting: number, sent: number, nowMs: number): StallMark | undefined {
  if (waiting === 0) return undefined;
  if (previous === undefined || previous.sent !== sent) return { sent, sinceMs: nowMs };
  return previous;
}

/** Sockets a sweep closed: what ends on them (a WebSocket tunnel) says so in its access line. */
const closedByWatch = new WeakSet<object>();

/** Whether a send-stall sweep closed `socket`. */
export function closedAsStalled(socket: object): boolean {
  return closedByWatch.has(socket);
}

export interface SendStallWatchOptions {
  /** How long a connection may hold bytes its client takes none of (> 0). */
  readonly timeoutMs: number;
  /** How often to look (default 1 s). */
  readonly everyMs?: number;
}

export class SendStallWatch {
  private readonly sockets = new Set<Socket>();
  /** Only sockets seen with bytes waiting. */
  private readonly marks = new Map<Socket, StallMark>();
  private timer: NodeJS.Timeout | undefined;
  /** Connections closed because their client took nothing for the timeout. */
  closed = 0;

  constructor(private readonly options: SendStallWatchOptions) {}

  /** Watches `socket` until it closes (sockets whose writes go through Node's stream: HTTP/1.1, plain or TLS). */
  watch(socket: Socket): void {
    if (socket.destroyed) return;
    this.sockets.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.marks.delete(socket);
    });
    this.timer ??= setInterval(() => this.sweep(monotonicNow()), this.options.everyMs ?? 1_000).unref();
  }

  get watching(): number {
    return this.sockets.size;
  }

  sweep(nowMs: number): void {
    if (this.sockets.size === 0) return this.stop(); // started again by the next watch()
    for (const socket of this.sockets) {
      const waiting = socket.writableLength;
      if (waiting === 0 && !this.marks.has(socket)) continue; // the usual case: one getter
      // bytesWritten counts what is queued too; what the kernel has taken is the difference.
      const mark = nextStallMark(this.marks.get(socket), waiting, waiting === 0 ? 0 : socket.bytesWritten - waiting, nowMs);
      if (mark === undefined) {
        this.marks.delete(socket);
      } else if (nowMs - mark.sinceMs > this.options.timeoutMs) {
        this.marks.delete(socket);
        this.sockets.delete(socket);
        this.closed++;
        closedByWatch.add(socket);
        // Requests pipelined behind what waits were not dropped by their client.
        closingByRouter(socket);
        socket.destroy();
      } else {
        this.marks.set(socket, mark);
      }
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
