/**
 * An HTTPS/1.1 keep-alive connection driven by hand, one request at a time: for tests of what the
 * router does with a client's connection between requests (idle timeouts, reclaiming at the cap).
 */
import type { TcpSocketConnectOpts } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { HOST } from './clients.js';
import { LONDON } from './hostile.js';

export interface Https1Connection {
  readonly socket: TLSSocket;
  /** Resolves with performance.now() when the connection closes, whoever closed it. */
  readonly closed: Promise<number>;
  /** Sends a GET for `path` and resolves with the answer's head once the whole answer is in. */
  get(path: string): Promise<string>;
}

/**
 * A connection from a London address (the router sends it to Frankfurt) that has finished its TLS
 * handshake (ALPN http/1.1) and sent nothing yet.
 */
export async function openHttps1(port: number, localAddress = LONDON): Promise<Https1Connection> {
  const options: ConnectionOptions & TcpSocketConnectOpts = { port, host: '127.0.0.1', localAddress, servername: HOST, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] };
  const socket = tlsConnect(options);
  socket.on('error', () => undefined);
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now())));
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => resolve());
    socket.once('close', () => reject(new Error('closed before the TLS handshake was done')));
  });
  return { socket, closed, get: (path) => getOn(socket, path) };
}

/** A GET on `socket`; resolves with the head once the whole answer (Content-Length) is in. */
function getOn(socket: TLSSocket, path: string): Promise<string> {
  let text = '';
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end === -1) return;
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end))?.[1] ?? NaN);
      if (text.length - end - 4 < length) return;
      socket.off('data', onData);
      socket.off('close', onClose);
      resolve(text.slice(0, end));
    };
    const onClose = () => reject(new Error(`closed before the answer was whole: ${JSON.stringify(text.slice(0, 200))}`));
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
  });
}
