import { EventEmitter } from 'node:events';
import { connect, constants, type ClientHttp2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnyRequest, AnyResponse } from '../../src/ingress/edge-handler.js';
import { asksForTrailers, Http2StreamResponse } from '../../src/ingress/http2-stream-pair.js';
import type { PublicServers } from '../../src/ingress/public-servers.js';
import { startPublicListeners } from '../support/public-listeners.js';
import { until } from '../support/until.js';

/**
 * The HTTPS listener hands HTTP/2 streams to the handler through the stream API (no
 * compatibility-layer objects) and HTTP/1.1 over the same port through node:http, over real TLS
 * sockets; what the compatibility layer used to do for free (CONNECT, Expect, HEAD, writes to a
 * stream the client has reset) still holds.
 */
describe('asksForTrailers', () => {
  // Node's own client sends only `trailers` (it refuses any other spelling), so the other spellings
  // nghttp2 lets through are checked here: `TE: Trailers` got no trailers.
  it.each([
    ['trailers', true],
    ['Trailers', true],
    ['TRAILERS', true],
    ['trailers, trailers', true],
    [' trailers\t', true],
    ['gzip', false],
    ['trailers, gzip', false],
    ['trailersx', false],
    ['', false],
    [undefined, false],
  ])('%j → %s', (te, expected) => expect(asksForTrailers(te)).toBe(expected));
});

describe('HTTP/2 streams on the public HTTPS listener', () => {
  let servers: PublicServers;
  let port: number;
  const seen: { kind: string; method: string | undefined; url: string | undefined }[] = [];
  /** Responses to a stream the client reset: written later, must not throw. */
  const late: AnyResponse[] = [];
  /** Server streams answered before their request body was read to its end, and whether each emitted 'close'. */
  const early: Array<{ closed: boolean }> = [];

  const handle = (req: AnyRequest, anyRes: AnyResponse) => {
    const res = anyRes as Http2StreamResponse; // writeHead and end as every response kind has them
    seen.push({ kind: req.constructor.name, method: req.method, url: req.url });
    if (req.url === '/late') {
      late.push(anyRes);
      return;
    }
    if (req.url === '/early') {
      // A function that refuses an upload after its first bytes (an authorisation check, a size
      // limit of its own): the answer ends while the body is still coming, or still unread.
      const stream = (req as unknown as { stream: { on(event: 'close', listener: () => void): unknown } }).stream;
      const record = { closed: false };
      early.push(record);
      stream.on('close', () => (record.closed = true));
      void (async () => {
        await (req as AsyncIterable<Buffer>)[Symbol.asyncIterator]().next();
        res.writeHead(401, { 'content-type': 'text/plain' });
        res.addTrailers({ 'x-why': 'early' }); // kept only for a client that sent TE: trailers
        res.end('x'.repeat(200_000));
      })();
      return;
    }
    if (req.url === '/body') {
      // As the exchange does: 100 Continue when the body is wanted, before the answer.
      if (req.headers.expect !== undefined) res.writeContinue();
      res.writeHead(200, { 'content-type': 'text/plain', 'x-kind': req.constructor.name });
      void (async () => {
        let size = 0;
        for await (const chunk of req as AsyncIterable<Buffer>) size += chunk.length;
        res.end(`read ${size}\n`);
      })();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'x-kind': req.constructor.name });
    res.end('hello\n');
  };

  beforeAll(async () => {
    ({ servers, https: port } = await startPublicListeners(handle));
  });
  afterAll(() => servers.forceClose());

  const session = () => connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false, servername: 'echo-demo.telnyxcompute.com' });
  const exchange = (client: ClientHttp2Session, headers: Record<string, string>, body?: string) =>
    new Promise<{ headers: IncomingHttpHeaders; body: string; continued: boolean }>((resolve, reject) => {
      const stream = client.request({ ':authority': 'echo-demo.telnyxcompute.com', ...headers }, { endStream: body === undefined && headers.expect === undefined });
      let continued = false;
      stream.on('continue', () => {
        continued = true;
        stream.end(body ?? '');
      });
      if (body !== undefined && headers.expect === undefined) stream.end(body);
      let responseHeaders: IncomingHttpHeaders = {};
      let text = '';
      stream.on('response', (h) => (responseHeaders = h));
      stream.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      stream.on('end', () => resolve({ headers: responseHeaders, body: text, continued }));
      stream.on('error', reject);
    });

  it('hands HTTP/2 requests over as streams, HTTP/1.1 on the same port through node:http', async () => {
    const client = session();
    try {
      const h2 = await exchange(client, { ':path': '/a?b=1' });
      expect(h2.headers[':status']).toBe(200);
      expect(h2.headers['x-kind']).toBe('Http2StreamRequest');
      expect(h2.body).toBe('hello\n');
      const posted = await exchange(client, { ':path': '/body', ':method': 'POST' }, 'x'.repeat(70_000));
      expect(posted.body).toBe('read 70000\n');
    } finally {
      client.close();
    }
    const h1 = await new Promise<{ kind: unknown; body: string }>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port, path: '/one', servername: 'echo-demo.telnyxcompute.com', rejectUnauthorized: false, headers: { host: 'echo-demo.telnyxcompute.com' } }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ kind: res.headers['x-kind'], body }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(h1).toEqual({ kind: 'IncomingMessage', body: 'hello\n' });
    expect(seen.find((s) => s.url === '/a?b=1')).toEqual({ kind: 'Http2StreamRequest', method: 'GET', url: '/a?b=1' });
  });

  it('leaves 100-continue to the handler (writeContinue), and other expectations (its admission answers 417, logged), and hands a plain CONNECT to the handler (whose admission answers 405, logged)', async () => {
    const client = session();
    const before = seen.length;
    try {
      const continued = await exchange(client, { ':path': '/body', ':method': 'PUT', expect: '100-continue' }, 'abc');
      expect(continued.continued).toBe(true);
      expect(continued.body).toBe('read 3\n');
      // A handler that answers without the body sends no 100 (the listener sent one to every stream).
      const answered = await exchange(client, { ':path': '/', ':method': 'PUT', expect: '100-continue' }, 'abc');
      expect({ status: answered.headers[':status'], continued: answered.continued }).toEqual({ status: 200, continued: false });
      expect((await exchange(client, { ':path': '/teapot', expect: 'teapot' })).headers[':status']).toBe(200);
      const tunnel = client.request({ ':method': 'CONNECT', ':authority': 'elsewhere.example:443' });
      const status = await new Promise<unknown>((resolve) => tunnel.on('response', (h) => resolve(h[':status'])));
      expect(status).toBe(200);
      tunnel.close();
    } finally {
      client.close();
    }
    expect(seen.slice(before).map((s) => [s.method, s.url])).toEqual([['PUT', '/body'], ['PUT', '/'], ['GET', '/teapot'], ['CONNECT', '']]);
  });

  it('sends no body to HEAD, and lets writes to a stream its client reset fall away', async () => {
    const client = session();
    try {
      const head = await exchange(client, { ':path': '/', ':method': 'HEAD' });
      expect(head.headers[':status']).toBe(200);
      expect(head.body).toBe('');
      const stream = client.request({ ':authority': 'echo-demo.telnyxcompute.com', ':path': '/late' });
      stream.on('error', () => undefined);
      await until(() => late.length === 1);
      stream.close();
      await until(() => (late[0] as { stream: { closed: boolean } }).stream.closed);
      const res = late[0] as Http2StreamResponse;
      expect(() => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write(Buffer.from('too late'));
        res.end('\n');
      }).not.toThrow();
      expect(res.headersSent).toBe(true);
      // The session is still good for the next request.
      expect((await exchange(client, { ':path': '/' })).body).toBe('hello\n');
    } finally {
      client.close();
    }
  });

  it('ends a stream whose answer is complete before its request body was read: RST_STREAM NO_ERROR to a client still sending, and its unread body let go', async () => {
    // Seen in review: a client that kept uploading after its answer kept the stream open for as
    // long as it liked (its window full, up to 64 KiB of body held, no request counted for it),
    // and one whose whole body had arrived kept the stream object and that body until the
    // connection closed: the stream was closed on the wire but never emitted 'close'.
    const client = session();
    try {
      const before = early.length;
      const open = async (endBody: boolean, te: Record<string, string> = {}) => {
        const stream = client.request({ ':authority': 'echo-demo.telnyxcompute.com', ':path': '/early', ':method': 'POST', ...te });
        stream.on('error', () => undefined);
        let status: unknown;
        let received = 0;
        let ended = false;
        let why: unknown;
        stream.on('response', (h) => (status = h[':status']));
        stream.on('trailers', (t) => (why = t['x-why']));
        stream.on('data', (chunk: Buffer) => (received += chunk.length));
        stream.on('end', () => (ended = true));
        if (endBody) stream.end(Buffer.alloc(40_000, 1));
        else stream.write(Buffer.alloc(8_000, 1)); // and never ends it
        await until(() => stream.closed, 3_000);
        return { status, received, ended, why, rstCode: stream.rstCode };
      };
      // Still sending: the whole answer, then RST_STREAM NO_ERROR (RFC 9113 §8.1).
      expect(await open(false)).toEqual({ status: 401, received: 200_000, ended: true, why: undefined, rstCode: 0 });
      // The same after the trailers, for a client that asked for them (a gRPC status is there).
      expect(await open(false, { te: 'trailers' })).toEqual({ status: 401, received: 200_000, ended: true, why: 'early', rstCode: 0 });
      // Its body all sent, most of it unread: the router's stream is done with, not kept.
      expect(await open(true)).toMatchObject({ status: 401, received: 200_000, ended: true });
      await until(() => early.length === before + 3 && early.slice(before).every((r) => r.closed), 3_000);
    } finally {
      client.close();
    }
  });
});

/**
 * The trailers an HTTP/2 response sends when its stream asks for them (`wantTrailers`), against a
 * stand-in stream: node:http2 refusing a field cannot be made to happen through undici, which
 * delivers none it would refuse, but the answer to it must still end the stream.
 */
describe('Http2StreamResponse trailers', () => {
  /** A stream whose `sendTrailers` throws its first `refusals` times. */
  function standInStream(refusals: number) {
    const stream = Object.assign(new EventEmitter(), {
      destroyed: false,
      closed: false,
      headersSent: false,
      writableEnded: false,
      sent: [] as Record<string, string>[],
      respondOptions: undefined as unknown,
      respond(_head: unknown, options?: unknown) {
        stream.headersSent = true;
        stream.respondOptions = options;
      },
      end() {
        stream.writableEnded = true;
      },
      sendTrailers(fields: Record<string, string>) {
        if (refusals-- > 0) throw new Error('ERR_HTTP2_INVALID_HEADER_VALUE');
        stream.sent.push(fields);
      },
      destroy() {
        stream.destroyed = true;
      },
    });
    return stream;
  }

  it('waits for trailers only for a client that accepts them, and sends the region\'s', () => {
    const plain = standInStream(0);
    new Http2StreamResponse(plain as never).writeHead(200, ['content-type', 'text/plain']);
    expect(plain.respondOptions).toBeUndefined();

    const stream = standInStream(0);
    const res = new Http2StreamResponse(stream as never, true);
    res.writeHead(200, ['content-type', 'text/plain']);
    res.addTrailers({ 'x-checksum': 'abc' });
    res.end();
    expect(stream.respondOptions).toEqual({ waitForTrailers: true });
    stream.emit('wantTrailers');
    expect(stream.sent).toEqual([{ 'x-checksum': 'abc' }]);
  });

  it('ends the stream without the fields node:http2 refuses, and resets it if even that fails', () => {
    const refusedOnce = standInStream(1);
    const res = new Http2StreamResponse(refusedOnce as never, true);
    res.writeHead(200, []);
    res.addTrailers({ 'x-bad': 'value' });
    res.end();
    expect(() => refusedOnce.emit('wantTrailers')).not.toThrow();
    expect(refusedOnce).toMatchObject({ sent: [{}], destroyed: false });

    const refusedTwice = standInStream(2);
    const other = new Http2StreamResponse(refusedTwice as never, true);
    other.writeHead(200, []);
    other.end();
    expect(() => refusedTwice.emit('wantTrailers')).not.toThrow();
    expect(refusedTwice).toMatchObject({ sent: [], destroyed: true });
  });
});

/**
 * An ended answer waits at most --send-timeout for its client to take the rest (limitUnsent). The
 * stream's timer is armed only for an answer still unsent a turn after its end: one the client
 * took at once needs none (a timer per stream cost every request about 4,500 instructions).
 */
describe('the send timeout of an ended HTTP/2 answer', () => {
  const SEND_TIMEOUT_MS = 400;
  let servers: PublicServers;
  let port: number;
  /** Per request path: whether its stream's timer was ever armed, and when its answer ended. */
  const streams = new Map<string, { armed: boolean; endedAt: number; stream: ServerHttp2Stream }>();

  const handle = (req: AnyRequest, anyRes: AnyResponse) => {
    const res = anyRes as Http2StreamResponse;
    const record = { armed: false, endedAt: 0, stream: res.stream };
    streams.set(req.url ?? '', record);
    const stream = res.stream;
    const setTimeout = stream.setTimeout.bind(stream);
    stream.setTimeout = (ms: number, callback?: () => void) => {
      if (ms > 0) record.armed = true;
      return setTimeout(ms, callback);
    };
    res.writeHead(200, ['content-type', 'text/plain']);
    if (req.url === '/end-on-empty-window') {
      // All the bytes first, the end a little later (as an exchange ends once its region has):
      // only the END_STREAM frame is left to send then.
      res.write(Buffer.alloc(8_000, 'x'));
      globalThis.setTimeout(() => {
        res.end();
        record.endedAt = Date.now();
      }, 100);
      return;
    }
    res.end('x'.repeat(8_000));
    record.endedAt = Date.now();
  };

  beforeAll(async () => {
    ({ servers, https: port } = await startPublicListeners(handle, { sendTimeoutMs: SEND_TIMEOUT_MS }, ['localhost']));
  });
  afterAll(() => servers.forceClose());

  /** Asks for `path` on a new connection and waits for the stream to close: its RST_STREAM code, bytes read, and when it closed. */
  const ask = async (path: string, initialWindowSize?: number) => {
    const client = connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false, ...(initialWindowSize === undefined ? {} : { settings: { initialWindowSize } }) });
    try {
      const stream = client.request({ ':path': path, ':authority': 'localhost' });
      stream.on('error', () => undefined);
      let received = 0;
      let closedAt = 0;
      stream.on('data', (chunk: Buffer) => (received += chunk.length));
      stream.on('close', () => (closedAt = Date.now()));
      await until(`${path} closed`, () => closedAt !== 0, 5_000);
      return { rstCode: stream.rstCode, received, closedAt };
    } finally {
      client.close();
    }
  };

  it('arms no timer for an answer its client took at once', async () => {
    for (let i = 0; i < 5; i++) expect(await ask(`/read-${i}`)).toMatchObject({ rstCode: constants.NGHTTP2_NO_ERROR, received: 8_000 });
    expect([...streams].filter(([path]) => path.startsWith('/read-')).map(([, record]) => record.armed)).toEqual([false, false, false, false, false]);
  });

  it('lets go of a stream its client reset with NO_ERROR while the ended answer waited for its window', async () => {
    // node:http2 waited for a 'finish' that could no longer come, emitted neither 'aborted' nor
    // 'close', and cleared the stream's send timeout: the stream, its unsent answer and its
    // session stayed until the client left (http2-stranded-streams.ts).
    const client = connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false, settings: { initialWindowSize: 100 } });
    try {
      client.on('error', () => undefined);
      const stream = client.request({ ':path': '/reset-no-error', ':authority': 'localhost' });
      stream.on('error', () => undefined);
      await new Promise((resolve) => stream.once('response', resolve));
      // Past the turn that arms the send timeout, well before that timeout.
      await new Promise((resolve) => setTimeout(resolve, 100));
      stream.close(constants.NGHTTP2_NO_ERROR);
      const record = streams.get('/reset-no-error')!;
      expect(record.armed).toBe(true);
      await until('the router destroyed the stream', () => record.stream.destroyed, 3_000);
    } finally {
      client.close();
    }
  });

  it('cancels an answer whose END_STREAM its client\'s window holds back, once the send timeout has passed', async () => {
    // The window lets exactly the answer's bytes through; the client reads none of them, so it
    // never opens the window again. nghttp2 holds even the read that would end the stream (here
    // the one asking for trailers, `te: trailers`; or an empty END_STREAM frame) for a window of 0:
    // the stream had finished ('finish'), so no timer was armed, and it stayed open for good.
    // (Without trailers, and with a request body nobody read, Node closes such a stream itself.)
    const client = connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false, settings: { initialWindowSize: 8_000 } });
    try {
      client.on('error', () => undefined);
      const stream = client.request({ ':path': '/end-on-empty-window', ':authority': 'localhost', te: 'trailers' });
      stream.on('error', () => undefined);
      stream.pause();
      await until('the answer ended', () => (streams.get('/end-on-empty-window')?.endedAt ?? 0) !== 0, 3_000);
      const record = streams.get('/end-on-empty-window')!;
      await until('the router cancelled the stream', () => record.stream.destroyed, 5_000);
      expect(record.armed).toBe(true);
      expect(record.stream.rstCode).toBe(constants.NGHTTP2_CANCEL);
      expect(Date.now() - record.endedAt).toBeGreaterThanOrEqual(SEND_TIMEOUT_MS - 5);
    } finally {
      client.close();
    }
  });

  it('cancels an answer its client never lets out, once the send timeout has passed', async () => {
    const { rstCode, received, closedAt } = await ask('/window-shut', 0);
    expect({ rstCode, received }).toEqual({ rstCode: constants.NGHTTP2_CANCEL, received: 0 });
    const record = streams.get('/window-shut')!;
    expect(record.armed).toBe(true);
    expect(closedAt - record.endedAt).toBeGreaterThanOrEqual(SEND_TIMEOUT_MS - 5);
  });
});
