/**
 * The HTTP/2 receive windows a client is given. Node's defaults are 65,535 bytes for each stream
 * and for the whole connection; with the connection's at that, every upload on a connection
 * together could have only 64 KiB in flight per round trip. The router raises the connection's
 * (HTTP2_CONNECTION_WINDOW_BYTES) and leaves each stream's, which is what bounds the bytes a client
 * can make it buffer. Read from the client's side: what the server's SETTINGS and WINDOW_UPDATE
 * granted, and an upload of several windows arriving whole.
 */
import { connect, type ClientHttp2Session } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnyRequest, AnyResponse } from '../../src/ingress/edge-handler.js';
const HTTP2_CONNECTION_WINDOW_BYTES = 1024 * 1024;
import { HOST } from '../support/clients.js';
import { startPublicListeners, type StartedListeners } from '../support/public-listeners.js';

/** Answers with the number of body bytes it read (an HTTP/2 request's body is its stream's). */
function countBody(req: AnyRequest, res: AnyResponse): void {
  let bytes = 0;
  const request = ('stream' in req ? req.stream : req) as NodeJS.ReadableStream;
  request.on('data', (chunk: Buffer) => (bytes += chunk.length));
  request.on('end', () => (res as unknown as { writeHead(s: number): { end(b: string): void } }).writeHead(200).end(String(bytes)));
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
    // The WINDOW_UPDATE may follow the SETTINGS in a later read.
    for (let i = 0; i < 50 && session.state.remoteWindowSize !== HTTP2_CONNECTION_WINDOW_BYTES; i++) await new Promise((r) => setTimeout(r, 10));
    expect(session.state.remoteWindowSize).toBe(HTTP2_CONNECTION_WINDOW_BYTES);
    expect(session.remoteSettings.initialWindowSize).toBe(65_535);
  });

  it('takes an upload of several connection windows whole', async () => {
    const body = Buffer.alloc(3 * HTTP2_CONNECTION_WINDOW_BYTES + 12_345, 'x');
    const answer = await new Promise<string>((resolve, reject) => {
      const stream = session.request({ ':method': 'POST', ':path': '/upload', ':authority': HOST });
      let text = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => (text += chunk));
      stream.on('end', () => resolve(text));
      stream.on('error', reject);
      stream.end(body);
    });
    expect(answer).toBe(String(body.length));
  });
});
