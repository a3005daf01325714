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

/** Sends `pieces` and collects everything until the server closes or the timeout passes. */
export function rawRequest(port: number, pieces: Array<string | Buffer>, options: RawOptions = {}): Promise<RawResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = options.tls
      ? tlsConnect({ port, host: '127.0.0.1', servername: options.servername ?? 'echo-demo.telnyxcompute.com', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'], ...(options.localAddress ? { localAddress: options.localAddress } : {}) })
      : netConnect({ port, host: '127.0.0.1', ...(options.localAddress ? { localAddress: options.localAddress } : {}) });
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (closedByServer: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ text, status: match ? Number(match[1]) : null, closedByServer, elapsedMs: Date.now() - started });
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
