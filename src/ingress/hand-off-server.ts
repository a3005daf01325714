/**
 * A listening server that accepts raw TCP, decides about each connection, and hands the ones it
 * keeps to a target server (http, https, http2 secure or plain) that never listens itself, with
 * `target.emit('connection', socket)`.
 *
 * Why not a 'connection' listener on the target: a TLS server wraps each accepted socket in a
 * TLSSocket (an OpenSSL session, its buffers, the JS objects) before any listener of ours runs, so
 * refusing there costs twice what refusing here does (measured on Node 20 with a bare server that
 * refuses everything: about 150 µs against 70 µs per refused connection; in the router under a
 * handshake loop, whose refusals also consult the per-address limits, about 180 against 125).
 * Refusals must be cheap: they are what an address flooding us with connections gets.
 *
 * Hand-off, checked on Node 20.20 (test/ingress/proxy-protocol/proxy-protocol.test.ts, and every
 * test that goes through the public listeners):
 * - Bytes the decider read and unshifted are not lost: http's parser is fed the socket's buffered
 *   data first, and a TLSSocket wrapping an existing socket drains `socket.read()` into the TLS
 *   engine, so a ClientHello that arrived early survives.
 * - Emitting 'connection' on the TLS server, rather than `new tls.TLSSocket(socket, { isServer })`,
 *   keeps SNICallback, ALPN, the server's handshakeTimeout and 'secureConnection'.
 * - An http(s) server only starts its headersTimeout/requestTimeout sweep and its connection list
 *   on 'listening'; the target never listens, so this server's 'listening' is re-emitted on it.
 *   Without it a slowloris client is never timed out.
 * - Node's own maxConnections is not used: with node:cluster a worker at it refuses the connection
 *   back to the primary, which offers it around the workers for as long as all are full. The
 *   router holds its cap in the decider (connection-cap.ts).
 */
import { Server, type ServerOpts, type Socket } from 'node:net';

/** Decides about one accepted connection: calls `handOff(socket)` to keep it (now or later), or destroys it. */
export type AcceptConnection = (socket: Socket, handOff: (socket: Socket) => void) => void;

export class HandOffServer extends Server {
  readonly #target: Server;

  constructor(target: Server, accept: AcceptConnection) {
    super(inheritedSocketOptions(target));
    this.#target = target;
    const handOff = (socket: Socket): void => {
      target.emit('connection', socket);
    };
    this.on('connection', (socket: Socket) => accept(socket, handOff));
    // The target's own 'listening' listeners run too, and find target.address() null: ask this server instead.
    this.on('listening', () => target.emit('listening'));
  }

  /** Closes both, so the target drops idle keep-alive connections and stops its timeout sweep. */
  override close(callback?: (err?: Error) => void): this {
    super.close(callback);
    this.#target.close();
    return this;
  }
}

/**
 * Socket options the target would have applied had it accepted the connection itself; http sets
 * allowHalfOpen and noDelay, and its request handling depends on the former. Node keeps them as
 * instance fields (not in @types/node), hence the widening.
 */
function inheritedSocketOptions(target: Server): ServerOpts {
  const own = target as Server & ServerOpts;
  return {
    allowHalfOpen: own.allowHalfOpen ?? false,
    noDelay: own.noDelay ?? false,
    keepAlive: own.keepAlive ?? false,
    // Node keeps it in seconds and takes it in milliseconds.
    keepAliveInitialDelay: (own.keepAliveInitialDelay ?? 0) * 1_000,
    ...(own.highWaterMark !== undefined ? { highWaterMark: own.highWaterMark } : {}),
  };
}
