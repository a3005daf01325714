/**
 * WebSockets to a simulated function: the demo `echo` function accepts them and sends every
 * message back. A WebSocket is a request like the others on this platform: it takes a container
 * from the pool (cold or warm) for its whole life, one connection per container, and the tier
 * limit bounds it (closed with 1001 "going away" when it is reached); at capacity the upgrade is
 * answered 503, so the routers move it to another region. The `ws` package speaks the protocol.
 */
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
// Types only: the module itself is loaded by FunctionSockets.open (see there).
import type { WebSocket, WebSocketServer } from 'ws';
import { monotonicNow } from '../core/monotonic-clock.js';
import type { TimeoutTier } from '../core/types.js';
import { CapacityError, ColdStartAbandoned, type ContainerPool } from './container-pool.js';
import { DEMO_ORG } from './demo-functions.js';

export interface FunctionSocketsOptions {
  readonly pool: ContainerPool;
  readonly tiers: Readonly<Record<TimeoutTier, number>>;
  /** The function an upgrade is for, as for requests (undefined: not here). */
  readonly functionOf: (req: IncomingMessage) => { fn: string; org: string; tier: TimeoutTier } | undefined;
  readonly draining: () => boolean;
  /** The simulated round trip to the client's metro, paid by the handshake as by a request. */
  readonly delayMs: (req: IncomingMessage) => number;
}

/** Messages larger than this close the WebSocket (1009): a demo echo needs no more. */
const MAX_MESSAGE_BYTES = 64 * 1024;

/** Echoes waiting for a client to read them, beyond which it is not read until they drain. */
const MAX_BUFFERED_BYTES = 4 * MAX_MESSAGE_BYTES;

/**
 * How long a WebSocket closed by the region (tier limit, shutdown) waits for the client's close
 * frame before its connection is cut. ws waits 30 s: a client that never answered held its
 * container that long past its tier limit.
 */
const CLOSE_TIMEOUT_MS = 1_000;

/** The functions that accept WebSockets. */
const SOCKET_FUNCTIONS = new Set(['echo']);

export class FunctionSockets {
  private readonly open = new Set<WebSocket>();

  /**
   * ws is loaded here, when an orchestrator starts, not with this module: loading it takes about
   * 0.14 CPU-s, which every process that imported this module paid at its start (routers and
   * every command, before the CLI loaded only the command run), though only an orchestrator
   * speaks WebSocket.
   */
  static async open(options: FunctionSocketsOptions): Promise<FunctionSockets> {
    const { WebSocketServer } = await import('ws');
    return new FunctionSockets(new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES }), options);
  }

  private constructor(
    private readonly server: WebSocketServer,
    private readonly options: FunctionSocketsOptions,
  ) {}

  /** WebSockets open right now (each holds a container). */
  get size(): number {
    return this.open.size;
  }

  async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    if (this.options.draining()) return refuse(socket, 503, 'region_draining', 'this region is shutting down', { 'retry-after': '1' });
    const target = this.options.functionOf(req);
    if (target === undefined) return refuse(socket, 404, 'function_not_found', 'no such function in this region');
    if (target.org !== DEMO_ORG || !SOCKET_FUNCTIONS.has(target.fn)) return refuse(socket, 400, 'websocket_unsupported', 'this function does not accept WebSockets');
    // The tier limit runs from the upgrade's arrival, as a request's does: counted from the
    // handshake, one that queued for a container lived up to twice its limit, and one still queued
    // at the limit stayed there until the next sweep (or took a container freed meanwhile).
    const limitMs = this.options.tiers[target.tier];
    const deadlineAt = monotonicNow() + limitMs;
    const deadline = AbortSignal.timeout(limitMs);
    // A client that leaves before it has a container leaves the queue too (or never joins it).
    // Nothing reads an upgrade's socket until ws takes it, and a close goes unnoticed unless it is
    // read: read it meanwhile. A client sends nothing before the handshake's answer (RFC 6455
    // §4.1); whatever comes early anyway is kept for ws, up to a message's size.
    const gone = new AbortController();
    socket.once('close', () => gone.abort(new Error('client went away')));
    const early = [head];
    let earlyBytes = head.length;
    const keepEarly = (chunk: Buffer) => {
      earlyBytes += chunk.length;
      if (earlyBytes > MAX_MESSAGE_BYTES) socket.destroy();
      else early.push(chunk);
    };
    // The HTTP server allows half-open connections: a client's FIN alone does not close it.
    const clientEnded = () => socket.destroy();
    socket.on('data', keepEarly);
    socket.once('end', clientEnded);
    await new Promise((r) => setTimeout(r, this.options.delayMs(req)));
    const notStarted = () => refuse(socket, 504, 'function_timeout', `the function did not start within its ${target.tier} tier limit`);
    let lease;
    try {
      lease = await this.options.pool.acquire(`${target.org}/${target.fn}`, deadlineAt, AbortSignal.any([gone.signal, deadline]));
    } catch (err) {
      if (gone.signal.aborted) return;
      if (err instanceof CapacityError) return refuse(socket, 503, 'region_at_capacity', err.message, { 'retry-after': String(err.retryAfterS) });
      // Its limit passed while its container was starting (the pool gives that one back warm).
      if (err instanceof ColdStartAbandoned) return notStarted();
      // Still queued at its limit: as the pool's sweep would have answered, only at once.
      if (deadline.aborted) return refuse(socket, 503, 'region_at_capacity', 'no container became free before the deadline', { 'retry-after': '1' });
      return refuse(socket, 500, 'function_error', 'the function failed');
    }
    const { container } = lease;
    if (socket.destroyed) return this.options.pool.release(container);
    // Its whole limit went on the wait (a cold start longer than the tier): nothing is left to open.
    if (deadline.aborted) {
      this.options.pool.release(container);
      return notStarted();
    }
    // The region began to stop while this one waited or its container started: closeAll() has
    // been and gone, so a WebSocket opened now would outlive the region's stop.
    if (this.options.draining()) {
      this.options.pool.release(container);
      return refuse(socket, 503, 'region_draining', 'this region is shutting down', { 'retry-after': '1' });
    }
    // A handshake `ws` refuses (no Sec-WebSocket-Key, say) is answered 400 by it and never becomes
    // a WebSocket: its container is given back when that connection closes.
    let handedOver = false;
    socket.once('close', () => {
      if (!handedOver) this.options.pool.release(container);
    });
    // ws reads the socket from here on (handleUpgrade takes it synchronously: no chunk falls between).
    socket.off('data', keepEarly);
    socket.off('end', clientEnded);
    this.server.handleUpgrade(req, socket, Buffer.concat(early), (ws) => {
      handedOver = true;
      this.open.add(ws);
      const limit = setTimeout(() => closeWithin(ws, 1001, `the function reached its ${target.tier} tier limit`), Math.max(0, deadlineAt - monotonicNow()));
      ws.on('message', (data, isBinary) => {
        ws.send(data, { binary: isBinary });
        // A client that sends without reading its echoes would have them pile up here without
        // bound: stop reading it until its socket has taken what waits.
        if (ws.bufferedAmount > MAX_BUFFERED_BYTES && !ws.isPaused) {
          ws.pause();
          socket.once('drain', () => ws.resume());
        }
      });
      ws.on('error', () => ws.terminate());
      ws.once('close', () => {
        clearTimeout(limit);
        this.open.delete(ws);
        this.options.pool.release(container);
      });
    });
  }

  /** The region is going away: every WebSocket is told so (1001), and its client can reconnect elsewhere. */
  closeAll(): void {
    for (const ws of this.open) closeWithin(ws, 1001, 'the region is shutting down');
  }
}

/**
 * Starts the closing handshake and cuts the connection if the client has not finished it within
 * CLOSE_TIMEOUT_MS (ws's own wait, 30 s, cannot be set through its typings).
 */
function closeWithin(ws: WebSocket, code: number, reason: string): void {
  ws.close(code, reason);
  const cut = setTimeout(() => ws.terminate(), CLOSE_TIMEOUT_MS);
  ws.once('close', () => clearTimeout(cut));
}

/** A JSON error answer to an upgrade that will not become a WebSocket; the connection closes. */
function refuse(socket: Duplex, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ error: { code, message } });
  const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  // Destroyed once written: the socket has left the HTTP server, so neither its timeouts nor
  // stop() reach it, and a client that never closed its side held it open for as long as it liked.
  socket.once('finish', () => socket.destroy());
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n${extra}\r\n${body}`);
}
