/**
 * A test region that accepts WebSockets: its 101 answers the client's key (or spoils the answer
 * when a test asks), and it echoes what it receives, prefixed `echo:`.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TestOrigin } from './origin.js';

/** The origin's node:http server, for tests that answer upgrades themselves. */
export const serverOf = (origin: TestOrigin): Server => (origin as unknown as { server: Server }).server;

/** Sec-WebSocket-Accept's value for `key` (RFC 6455 §4.2.2). */
export const webSocketAccept = (key: unknown): string => createHash('sha1').update(`${String(key)}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');

export interface EchoingWebSocketsOptions {
  /** The 101's accept line with its CRLF (default: the right answer to the key; '' leaves it out). */
  readonly acceptLine?: (key: unknown) => string;
  /** More lines for the 101, each with its CRLF. */
  readonly extraLines?: (req: IncomingMessage) => string;
  /** Told of each upgrade before it is answered. */
  readonly onUpgrade?: (req: IncomingMessage) => void;
}

/** The origin accepts every WebSocket upgrade and echoes what it receives, prefixed `echo:`. */
export function echoWebSockets(origin: TestOrigin, options: EchoingWebSocketsOptions = {}): void {
  const { acceptLine = (key: unknown) => `Sec-WebSocket-Accept: ${webSocketAccept(key)}\r\n`, extraLines = () => '', onUpgrade } = options;
  serverOf(origin).on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    onUpgrade?.(req);
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${acceptLine(req.headers['sec-websocket-key'])}${extraLines(req)}\r\n`);
    socket.on('data', (d: Buffer) => socket.write(Buffer.concat([Buffer.from('echo:'), d])));
    // The client's FIN reaches the region as a FIN (a half-close): a WebSocket server closes then (ws does).
    socket.on('end', () => socket.end());
    socket.on('error', () => undefined); // the router cuts tunnels (idle, drain, a client that reads nothing)
  });
}
