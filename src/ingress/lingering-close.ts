/**
 * Lingering close for HTTP/1 connections (nginx's `lingering_close`). When the router answers
 * before it has read the request body (its own 413 or 429, a function refusing an upload) it
 * closes the connection after the answer. Closed at once, the kernel finds the client's unread
 * bytes in the receive buffer and sends a reset instead of a FIN; a client still sending then
 * fails its next write (EPIPE / ECONNRESET), and one that reads only once it has sent everything
 * never sees the answer it was sent (seen with a 413 over loopback, every time).
 *
 * Lingering: the answer goes out, then the write side is shut (FIN), and what the client still
 * sends is read and thrown away until it stops (its FIN, or a pause of `idleMs`), for at most
 * `totalMs` and `maxBytes`; then the connection is destroyed, the receive buffer empty. HTTP/2 needs
 * none of this: its early answers reset a stream, not the connection (http2-stream-pair.ts).
 */
import { Socket } from 'node:net';

export interface LingerLimits {
  /**
   * The longest a connection lingers in all (nginx `lingering_time`, 30 s; `--lingering-time`).
   * 0: none lingers (nginx `lingering_close off`): a client still sending may get a reset, not the answer.
   */
  readonly totalMs: number;
  /** The longest it waits for the client's next bytes (nginx `lingering_timeout`, 5 s; `--lingering-timeout`). */
  readonly idleMs: number;
  /**
   * The most it reads and throws away: past it, a client that had more to send is cut
   * (`--lingering-max-bytes`). 0: none lingers, as with `totalMs` 0 (lingering that read nothing
   * would cut the client at its first byte, the reset lingering is there to avoid).
   */
  readonly maxBytes: number;
  /**
   * Connections lingering at once; past it, a connection closes at once, as without lingering
   * (`--lingering-max-connections`, each worker's own, as `--max-connections`). 0: none lingers.
   */
  readonly maxConnections: number;
  /**
   * Connections of one address (its limit key) lingering at once; past it, as past
   * `maxConnections` (0: no bound; `--lingering-max-per-ip`). A lingering connection gives its
   * `--max-conns-per-ip` slot back (it serves nothing more, and a client answered 413 may connect
   * again at once to retry, within its limit, without waiting up to `totalMs` for the linger to
   * end), and a client keeps one lingering by sending a byte every few seconds: unbounded, one
   * address held a connection over its limit for every early answer it provoked, and took the
   * whole pool, every other client's early answer reset again. This bound is what it may hold
   * over its limit.
   */
  readonly maxPerAddress: number;
}

export const DEFAULT_LINGER_LIMITS: LingerLimits = {
  totalMs: 30_000,
  idleMs: 5_000,
  maxBytes: 4 * 1024 * 1024,
  maxConnections: 1_024,
  // Well above what one client (or an office behind one address) has answered early at once;
  // a thirty-second of the pool.
  maxPerAddress: 32,
};

/** What decides whether a connection Node is closing lingers. */
export interface LingerFacts {
  /** LingerLimits.totalMs: 0 turns lingering off. */
  readonly totalMs: number;
  /** LingerLimits.maxBytes: 0 turns lingering off. */
  readonly maxBytes: number;
  /** The request being answered has a body not read to its end: the client may still be sending it. */
  readonly bodyUnread: boolean;
  /** The client already closed its side (or the socket is gone): nothing more can come. */
  readonly clientDone: boolean;
  readonly lingering: number;
  readonly maxConnections: number;
  /** Connections of the same address lingering now (0 for a peer no bound applies to). */
  readonly lingeringOfAddress: number;
  readonly maxPerAddress: number;
}

export function shouldLinger(facts: LingerFacts): boolean {
  const addressRoom = facts.maxPerAddress === 0 || facts.lingeringOfAddress < facts.maxPerAddress;
  return facts.totalMs > 0 && facts.maxBytes > 0 && facts.bodyUnread && !facts.clientDone && facts.lingering < facts.maxConnections && addressRoom;
}

/** The request Node's HTTP/1 parser is on (an answered one stays there until its body ended). */
interface ParsedSocket {
  readonly parser?: { readonly incoming?: { readonly complete: boolean } | null } | null;
}

/** The socket's libuv handle, as Node's HTTP server restarts its reading (`onSocketResume`). */
interface HandledSocket {
  readonly _handle?: { reading?: boolean; readStart(): number } | null;
}

export class LingeringClose {
  private readonly sockets = new Set<Socket>();
  /** Lingering connections per address key (only keys with one or more). */
  private readonly ofAddress = new Map<string, number>();
  /** Told when the last lingering connection ends (settled()). */
  private settledWaiters: Array<() => void> = [];
  /** Connections that lingered, since the start. */
  lingered = 0;

  constructor(
    private readonly limits: LingerLimits = DEFAULT_LINGER_LIMITS,
    /** Told when a connection starts to linger: it serves nothing more (the per-address slot goes back). */
    private readonly onLinger: (socket: Socket) => void = () => undefined,
    /** The key a connection's lingering is bounded under (its address's limit key); undefined: not bounded (a trusted proxy). */
    private readonly addressOf: (socket: Socket) => string | undefined = () => undefined,
  ) {}

  /** Connections lingering right now. */
  get count(): number {
    return this.sockets.size;
  }

  /**
   * Node closes an HTTP/1 connection after an answer that said `Connection: close` with
   * `socket.destroySoon()` (its `resOnFinish`): end, then destroy once the FIN is written. On this
   * socket that close lingers instead when the request's body is still coming.
   */
  install(socket: Socket): void {
    socket.destroySoon = () => {
      if (!this.tryLinger(socket)) Socket.prototype.destroySoon.call(socket);
    };
  }

  /**
   * Resolves once no connection lingers. Each ends within its own bounds (the client's FIN, an
   * idle pause, the total time): a drain waits for them, so that a client answered early just
   * before it is not reset by the shutdown after all.
   */
  settled(): Promise<void> {
    if (this.sockets.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.settledWaiters.push(resolve));
  }

  /** Shutdown: whatever still lingers is cut. */
  destroyAll(): void {
    for (const socket of [...this.sockets]) socket.destroy();
  }

  /**
   * A connection whose byte stream broke behind whole requests (answerClientError): its last
   * answer, the 400, has gone out with its FIN, and whatever the client still sends is of no use.
   * It lingers as after an early answer: left paused, it read neither those bytes nor the client's
   * close, and was held until the keep-alive timeout after its client had gone (found by
   * test/hostile/fuzzed-input.test.ts). Past the lingering bounds, it is destroyed once its
   * answer is written, as without lingering.
   */
  lingerAfterRefusal(socket: Socket): void {
    if (!this.tryLinger(socket, true)) Socket.prototype.destroySoon.call(socket);
  }

  private tryLinger(socket: Socket, broken = false): boolean {
    if (this.sockets.has(socket)) return true; // already lingering: its own bounds close it
    const incoming = (socket as ParsedSocket).parser?.incoming;
    const address = this.addressOf(socket);
    const facts: LingerFacts = {
      totalMs: this.limits.totalMs,
      maxBytes: this.limits.maxBytes,
      bodyUnread: broken || (incoming !== undefined && incoming !== null && !incoming.complete),
      clientDone: socket.destroyed || socket.readableEnded,
      lingering: this.sockets.size,
      maxConnections: this.limits.maxConnections,
      lingeringOfAddress: address === undefined ? 0 : (this.ofAddress.get(address) ?? 0),
      maxPerAddress: this.limits.maxPerAddress,
    };
    if (!shouldLinger(facts)) return false;
    this.linger(socket, address);
    return true;
  }

  private linger(socket: Socket, address: string | undefined): void {
    this.sockets.add(socket);
    if (address !== undefined) this.ofAddress.set(address, (this.ofAddress.get(address) ?? 0) + 1);
    this.lingered++;
    this.onLinger(socket);
    // Node's parser lets go of the socket as a 'data' listener is added (its socket.on wrapper),
    // and its own listener goes: the rest is thrown away unparsed. A request pipelined after the
    // body must not be parsed and answered on a connection whose write side is shut.
    socket.removeAllListeners('data');
    let discarded = 0;
    const cut = () => socket.destroy();
    const total = setTimeout(cut, this.limits.totalMs);
    const idle = setTimeout(cut, this.limits.idleMs);
    socket.on('data', (chunk: Buffer) => {
      discarded += chunk.length;
      if (discarded > this.limits.maxBytes) cut();
      else idle.refresh();
    });
    // The client is done sending: the buffer is empty, a close now sends no reset, once what was
    // written has gone (a client that half-closed still reads: destroyed at its FIN, the queued
    // answers behind a broken pipelined request, or the 400 itself, were lost). The total and
    // idle timers still bound that wait.
    socket.once('end', () => (socket.writableFinished ? cut() : socket.once('finish', cut)));
    socket.once('close', () => {
      clearTimeout(total);
      clearTimeout(idle);
      this.sockets.delete(socket);
      if (address !== undefined) {
        const left = (this.ofAddress.get(address) ?? 1) - 1;
        if (left <= 0) this.ofAddress.delete(address);
        else this.ofAddress.set(address, left);
      }
      if (this.sockets.size === 0) for (const resolve of this.settledWaiters.splice(0)) resolve();
    });
    // Node pauses a socket whose answers back up (pipelining); the client's bytes must flow. And
    // the handle the parser lets go of may not be reading (its stream state says it is, so
    // resume() does not ask again: seen, no byte read and the client reset at the idle timeout):
    // started as Node's own onSocketResume does.
    socket.resume();
    const handle = (socket as HandledSocket)._handle;
    if (handle !== null && handle !== undefined && handle.reading === false) {
      handle.reading = true;
      handle.readStart();
    }
    if (socket.writable) socket.end();
  }
}
