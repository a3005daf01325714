/** Raw bytes over TCP or TLS, for framing cases no well-behaved client would send. */
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

export interface RawOptions {
  readonly tls?: boolean;
  readonly servername?: string;
  readonly localAddress?: string;
  /** Give up reading after this long (default 3 s). */
  readonly timeoutMs?: number;
  /** Keep reading until the server closes, even after a complete response. */
  readonly untilClose?: boolean;
  /** Pieces sent with a pause between them (slow clients). */
  readonly pauseMs?: number;
}

export interface RawResult {
  readonly text: string;
  readonly status: number | null;
  /** The server closed the connection (rather than us timing out). */
  readonly closedByServer: boolean;
  readonly elapsedMs: number;
}

/** A connection to the router on loopback, over TLS (HTTP/1.1 by ALPN) or plain TCP. */
function rawConnect(port: number, options: Pick<RawOptions, 'tls' | 'servername' | 'localAddress'>) {
  const local = options.localAddress ? { localAddress: options.localAddress } : {};
  return options.tls
    ? tlsConnect({ port, host: '127.0.0.1', servername: options.servername ?? 'echo-demo.telnyxcompute.com', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'], ...local })
    : netConnect({ port, host: '127.0.0.1', ...local });
}

/** The status of the first HTTP/1 answer in `text`, or null. */
function statusOf(text: string): number | null {
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  return match ? Number(match[1]) : null;
}

/** Sends `pieces` and collects everything until the server closes or the timeout passes. */
export function rawRequest(port: number, pieces: Array<string | Buffer>, options: RawOptions = {}): Promise<RawResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = rawConnect(port, options);
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (closedByServer: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      resolve({ text, status: statusOf(text), closedByServer, elapsedMs: Date.now() - started });
    };
    const timer = setTimeout(() => finish(false), options.timeoutMs ?? 3_000);
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      if (options.untilClose) return;
      // A complete response with a Content-Length: no need to wait for the server to close.
      const text = Buffer.concat(chunks).toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end));
      if (end !== -1 && length && Buffer.byteLength(text, 'latin1') >= end + 4 + Number(length[1])) finish(false);
    });
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    socket.once(options.tls ? 'secureConnect' : 'connect', async () => {
      for (const piece of pieces) {
        if (done) return;
        socket.write(piece);
        if (options.pauseMs) await new Promise((r) => setTimeout(r, options.pauseMs));
      }
    });
  });
}

export interface UploadOptions {
  readonly tls?: boolean;
  readonly localAddress?: string;
  /** Each piece framed as a chunk, and the last chunk after them (the head says Transfer-Encoding: chunked). */
  readonly chunked?: boolean;
  /** Body bytes to send after the head (the head may announce more). */
  readonly bodyBytes: number;
  /** Sent in pieces of this size (default 16 KiB)… */
  readonly chunkBytes?: number;
  /** …one every this many ms (default 2): slowly but steadily, as over a real uplink. */
  readonly pauseMs?: number;
  /** Give up, sending or reading, after this long (default 5 s). */
  readonly timeoutMs?: number;
}

export interface UploadResult {
  readonly text: string;
  readonly status: number | null;
  /** Body bytes handed to the socket before the last write (or the connection) failed. */
  readonly sent: number;
  /** How the connection failed (ECONNRESET, EPIPE, …), or null: every write went out and the read ended cleanly. */
  readonly error: string | null;
  readonly elapsedMs: number;
}

/**
 * A client that sends its head, then its body piece by piece, and reads nothing until it has sent
 * all of it (or a write failed): then it reads until the server closes. Many upload clients work
 * this way (a script writing the whole request, then reading), so an early answer (413) reaches
 * them only if the server's close did not reset the connection under the unread body.
 */
export function uploadThenRead(port: number, head: string, options: UploadOptions): Promise<UploadResult> {
  const started = Date.now();
  const chunk = Buffer.alloc(options.chunkBytes ?? 16 * 1024, 'u');
  const pauseMs = options.pauseMs ?? 2;
  const timeoutMs = options.timeoutMs ?? 5_000;
  return new Promise((resolve) => {
    const socket = rawConnect(port, options);
    const chunks: Buffer[] = [];
    let sent = 0;
    let error: string | null = null;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      resolve({ text, status: statusOf(text), sent, error, elapsedMs: Date.now() - started });
    };
    const timer = setTimeout(() => {
      error ??= 'client timeout';
      finish();
    }, timeoutMs);
    socket.on('error', (err: NodeJS.ErrnoException) => {
      error ??= err.code ?? err.message;
      finish();
    });
    socket.on('close', finish);
    const read = () => {
      if (done) return;
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('end', finish);
      socket.resume();
    };
    socket.once(options.tls ? 'secureConnect' : 'connect', async () => {
      socket.pause(); // nothing read while sending (after the TLS handshake, which must read)
      socket.write(head);
      while (!done && sent < options.bodyBytes) {
        const piece = chunk.subarray(0, Math.min(chunk.length, options.bodyBytes - sent));
        const framed = options.chunked ? Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]) : piece;
        if (!socket.write(framed)) await new Promise((r) => socket.once('drain', r).once('close', r));
        sent += piece.length;
        await new Promise((r) => setTimeout(r, pauseMs));
      }
      if (options.chunked && !done) socket.write('0\r\n\r\n');
      read();
    });
  });
}
