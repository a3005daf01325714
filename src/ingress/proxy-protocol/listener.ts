/**
 * Takes the PROXY protocol header off a freshly accepted TCP connection, puts back whatever came
 * after it, and remembers the client address the load balancer announced, then hands the socket on.
 * It serves nothing itself; acceptProxyProtocol never destroys a socket (ProxyProtocolServer
 * destroys the ones it rejects).
 * Spec: haproxy doc/proxy-protocol.txt (§1: a listener that expects the header must require it).
 *
 * Hand-off to the server that answers: hand-off-server.ts.
 * After TLS the handler's `req.socket` is the TLSSocket (http2 compat: a Proxy of it), not the
 * socket we saw; `proxyInfoOf` follows `_parent` (undocumented but long-standing) back to it.
 */
import type { Server, Socket } from 'node:net';
import { HandOffServer } from '../hand-off-server.js';
import { unmapAddress } from '../../core/ip.js';
import { parseProxyHeader, PROXY_HEADER_MAX_BYTES, type ProxyInfo } from './header.js';

export type { ProxyInfo } from './header.js';

export interface AcceptProxyProtocolOptions {
  /** Deadline for the whole header from accept, not an idle timer: dribbling a byte at a time does not extend it. */
  readonly timeoutMs: number;
  /**
   * Peers allowed to send a header (`::ffff:` already stripped). Anyone who can reach the port can
   * claim any client address, so without this the port must be reachable by the balancer only.
   */
  readonly isTrustedPeer?: (ip: string) => boolean;
  /** The header was valid; `socket` holds exactly the bytes that followed it. */
  readonly onReady: (socket: Socket, info: ProxyInfo) => void;
  /** No usable header (invalid, timed out, closed, socket error, untrusted peer). The caller destroys the socket. */
  readonly onReject: (socket: Socket, reason: string) => void;
}

/** Keyed by the accepted socket; entries go when the socket is collected. */
const infoBySocket = new WeakMap<object, ProxyInfo>();

export function acceptProxyProtocol(socket: Socket, options: AcceptProxyProtocolOptions): void {
  const { timeoutMs, isTrustedPeer, onReady, onReject } = options;
  const peer = unmapAddress(socket.remoteAddress ?? '');
  if (isTrustedPeer !== undefined && !isTrustedPeer(peer)) {
    onReject(socket, `peer ${peer || '(unknown)'} is not a trusted proxy`);
    return;
  }

  let buffered: Buffer = Buffer.alloc(0);
  let settled = false;
  const timer = setTimeout(() => reject(`no complete PROXY protocol header within ${timeoutMs} ms`), timeoutMs);

  const onReadable = (): void => {
    let chunk: Buffer | null;
    while (!settled && (chunk = socket.read() as Buffer | null) !== null) {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      const result = parseProxyHeader(buffered);
      if (result.status === 'invalid') return reject(result.reason);
      if (result.status === 'incomplete') {
        // The parser bounds itself; this guards the buffer should that ever regress.
        if (buffered.length > PROXY_HEADER_MAX_BYTES) return reject('PROXY protocol header too long');
        continue;
      }
      settle();
      // Listeners first, then unshift: the payload must wait in the buffer for the next owner.
      socket.removeListener('error', onError);
      const payload = buffered.subarray(result.length);
      if (payload.length > 0) socket.unshift(payload);
      infoBySocket.set(socket, result.info);
      onReady(socket, result.info);
      return;
    }
  };
  const onEnd = (): void => reject('connection closed before the PROXY protocol header was complete');
  const onError = (err: NodeJS.ErrnoException): void => reject(`socket error before the PROXY protocol header: ${err.code ?? err.message}`);

  function settle(): void {
    settled = true;
    clearTimeout(timer);
    socket.removeListener('readable', onReadable);
    socket.removeListener('end', onEnd);
    socket.removeListener('close', onEnd);
  }
  function reject(reason: string): void {
    if (settled) return;
    settle();
    // onError stays attached (now a no-op): an error racing the caller's destroy() must not crash the process.
    onReject(socket, reason);
  }

  // 'readable' + read() keeps the stream paused, which is what makes unshift() safe (Node stream docs).
  socket.on('readable', onReadable);
  socket.on('end', onEnd);
  socket.on('close', onEnd);
  socket.on('error', onError);
}

/**
 * The header that arrived on this connection, or undefined if it did not come through
 * acceptProxyProtocol. Pass `req.socket` as is from http, https (a TLSSocket over ours) or the
 * http2 compat API (a Proxy of that TLSSocket).
 */
export function proxyInfoOf(socket: object): ProxyInfo | undefined {
  let current: unknown = socket;
  // Two hops cover TLSSocket → Socket; the Proxy forwards the `_parent` read to its TLSSocket.
  for (let hop = 0; hop < 3 && typeof current === 'object' && current !== null; hop++) {
    const info = infoBySocket.get(current);
    if (info !== undefined) return info;
    current = (current as { _parent?: unknown })._parent;
  }
  return undefined;
}

/**
 * The address to treat as the connection's peer: the announced source for a PROXY command with a
 * TCP family, else the socket's own peer (LOCAL health checks, UNKNOWN, or no header at all).
 */
export function peerAddressOf(socket: Socket): string | undefined {
  const info = proxyInfoOf(socket);
  return info?.command === 'proxy' && info.sourceAddress !== undefined ? info.sourceAddress : socket.remoteAddress;
}

/** The peer as one address string (IPv4-mapped IPv6 unmapped, '' when unknown): what quotas and logs key on. */
export function peerOfSocket(socket: Socket): string {
  return unmapAddress(peerAddressOf(socket) ?? '');
}

export interface ProxyProtocolServerOptions {
  readonly timeoutMs: number;
  readonly isTrustedPeer?: (ip: string) => boolean;
  /** Told why a connection was refused, just before it is destroyed; for logs and metrics. */
  readonly onReject?: (socket: Socket, reason: string) => void;
  /**
   * Asked once the header is read (so the announced client is known), before the target sees the
   * connection: false destroys it (the caller's per-address limits).
   */
  readonly admit?: (socket: Socket) => boolean;
  /**
   * Asked at accept, before the header is read: false destroys the connection (the listener's
   * --max-connections), so that connections waiting for their header are bounded by it too.
   */
  readonly hasRoom?: () => boolean;
}

/** The listening half: accepts raw TCP, requires the header, then hands the connection to the target (hand-off-server.ts). */
export type ProxyProtocolServer = HandOffServer;

export function proxyProtocolServer(target: Server, options: ProxyProtocolServerOptions): ProxyProtocolServer {
  const { timeoutMs, isTrustedPeer, onReject, admit, hasRoom } = options;
  return new HandOffServer(target, (socket, handOff) => {
    if (hasRoom !== undefined && !hasRoom()) {
      socket.destroy();
      return;
    }
    acceptProxyProtocol(socket, {
      timeoutMs,
      ...(isTrustedPeer !== undefined ? { isTrustedPeer } : {}),
      onReady: (ready) => {
        if (admit === undefined || admit(ready)) handOff(ready);
        else ready.destroy();
      },
      onReject: (rejected, reason) => {
        onReject?.(rejected, reason);
        rejected.destroy();
      },
    });
  });
}
