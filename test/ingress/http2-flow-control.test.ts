/**
 * The HTTP/2 receive windows a client is given. Node's defaults are 65,535 bytes for each stream
 * and for the whole connection; with the connection's at that, every upload on a connection
 * together could have only 64 KiB in flight per round trip. The router raises the connection's
 * (HTTP2_CONNECTION_WINDOW_BYTES) and leaves each stream's, which is what bounds the bytes a client
 * can make it buffer. Read from the client's side: what the server's SETTINGS and WINDOW_UPDATE
 * granted, and an upload of several windows arriving whole, even beside streams nobody reads.
 */
import { connect, type ClientHttp2Session } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnyRequest, AnyResponse } from '../../src/ingress/edge-handler.js';
import { HTTP2_CONNECTION_WINDOW_BYTES } from '../../src/ingress/public-servers.js';
import { HOST } from '../support/clients.js';
import { answer, startPublicListeners, type StartedListeners } from '../support/public-listeners.js';

/** Streams of `/stall` are never read nor answered: their bytes stay in their windows. */
const STALL_PATH = '/stall';

/** Answers with the number of body bytes it read (an HTTP/2 request's body is its stream's); `/stall` is left alone. */
function countBody(req: AnyRequest, res: AnyResponse): void {
  if (req.url === STALL_PATH) return;
  let bytes = 0;
  const request = ('stream' in req ? req.stream : req) as NodeJS.ReadableStream;
  request.on('data', (chunk: Buffer) => (bytes += chunk.length));
  request.on('end', () => answer(res, 200, String(bytes)));
}

describe('HTTP/2 flow-control windows', () => {
  let listeners: StartedListeners;
  let session: ClientHttp2Session;

  beforeAll(async () => {
    listeners = await startPublicListeners(countBody);
    session = connect(`https://${HOST}:${listeners.https}`, { rejectUnauthorized: false, host: '127.0.0.1', servername: HOST } as never);
    await new Promise<void>((resolve, reject) => {
      session.once('error', reject);
      session.once('remoteSettings', () => resolve());
    });
  });
  afterAll(() => {
    session?.destroy();
    listeners?.servers.forceClose();
  });

  it("grants the connection a window of HTTP2_CONNECTION_WINDOW_BYTES and keeps each stream's at HTTP/2's initial 65,535", async () => {
    expect(HTTP2_CONNECTION_WINDOW_BYTES).toBeGreaterThan(65_535);
    // The WINDOW_UPDATE may come after 'remoteSettings' was told; the server sent it before reading
    // anything of ours, so it has been read once our PING's answer is (a bound in ms would flake on a loaded host).
    await new Promise<void>((resolve, reject) => session.ping((err) => (err ? reject(err) : resolve())));
    expect(session.state.remoteWindowSize).toBe(HTTP2_CONNECTION_WINDOW_BYTES);
    expect(session.remoteSettings.initialWindowSize).toBe(65_535);
  });

  it('takes an upload of several connection windows whole', async () => {
    const body = Buffer.alloc(3 * HTTP2_CONNECTION_WINDOW_BYTES + 12_345, 'x');
    expect(await upload(session, body)).toBe(String(body.length));
  });

  // What makes the larger connection window cost no memory: Node gives it back as DATA arrives,
  // so only the streams' own windows hold unread bytes. Were it given back only as handlers read,
  // streams that fill their windows unread (more than the connection window together) would
  // leave nothing for the connection's other uploads, and this one would never finish.
  it('keeps taking uploads on a connection whose unread streams hold more than its window', async () => {
    const stalled = Array.from({ length: Math.ceil(HTTP2_CONNECTION_WINDOW_BYTES / 65_535) + 2 }, () => {
      const stream = session.request({ ':method': 'POST', ':path': STALL_PATH, ':authority': HOST });
      stream.on('error', () => {});
      stream.write(Buffer.alloc(2 * 65_535, 'y'));
      return stream;
    });
    try {
      const body = Buffer.alloc(HTTP2_CONNECTION_WINDOW_BYTES + 12_345, 'x');
      expect(await upload(session, body)).toBe(String(body.length));
    } finally {
      for (const stream of stalled) stream.close();
    }
  });
});

/** POSTs `body` on `session` and resolves with the answer's text. */
function upload(session: ClientHttp2Session, body: Buffer): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', ':path': '/upload', ':authority': HOST });
    let text = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => (text += chunk));
    stream.on('end', () => resolve(text));
    stream.on('error', reject);
    stream.end(body);
  });
}
