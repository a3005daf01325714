/**
 * WebSocket over HTTP/2 (RFC 8441) through the edge: an extended CONNECT stream becomes an
 * HTTP/1.1 upgrade to the region, with a Sec-WebSocket-Key of the router's own whose answer the
 * router checks; the client gets 200 and the stream carries the bytes both ways. The same
 * admission, failover, access line and limits as an HTTP/1.1 upgrade.
 */
import type { IncomingMessage } from 'node:http';
import { connect as http2Connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { HOST } from '../support/clients.js';
import { ADMIN_TOKEN, connectionsRefused, h2Frame, H2_FLAG, H2_FRAME, hpackLiteral, hpackNewField, openRawH2 } from '../support/hostile.js';
import { TestOrigin } from '../support/origin.js';
import { startTestRouter, type TestRouter } from '../support/router.js';
import type { ResolvedRouter } from '../../src/cli/router-command.js';
import { until } from '../support/until.js';
import { echoWebSockets, serverOf, webSocketAccept } from '../support/websocket-origin.js';

const cleanup: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** The SETTINGS frame's ACK flag (RFC 9113 §6.5). */
const SETTINGS_ACK = 0x1;

const acceptOf = (key: string) => webSocketAccept(key);

/** What a region's upgrade handler saw. */
interface SeenUpgrade {
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
}

/** The origin accepts WebSockets (subprotocol `chat`) and echoes what it receives, prefixed; `accept` can be spoiled. */
function acceptWebSockets(origin: TestOrigin, seen: SeenUpgrade[] = [], accept: (key: string) => string = acceptOf): SeenUpgrade[] {
  echoWebSockets(origin, {
    acceptLine: (key) => `Sec-WebSocket-Accept: ${accept(String(key))}\r\n`,
    extraLines: () => 'Sec-WebSocket-Protocol: chat\r\nx-edge-region: spoofed\r\nx-fn: yes\r\n',
    onUpgrade: (req) => seen.push({ url: req.url ?? '', headers: req.headers }),
  });
  return seen;
}

/** An HTTP/2 session to the router, once the router's SETTINGS have arrived. */
async function session(port: number): Promise<ClientHttp2Session> {
  const s = http2Connect(`https://${HOST}:${port}`, { rejectUnauthorized: false, host: '127.0.0.1', servername: HOST } as never);
  cleanup.push(() => void s.destroy());
  s.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    s.once('remoteSettings', () => resolve());
    s.once('error', reject);
  });
  return s;
}

/** Opens an extended CONNECT stream and waits for the response head. */
async function openWebSocket(s: ClientHttp2Session, path = '/ws?token=secret', extra: Record<string, string> = {}): Promise<{ stream: ClientHttp2Stream; head: IncomingHttpHeaders }> {
  const stream = s.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'https', ':path': path, ':authority': HOST, 'sec-websocket-version': '13', 'sec-websocket-protocol': 'chat, superchat', ...extra });
  stream.on('error', () => undefined);
  const head = await new Promise<IncomingHttpHeaders>((resolve, reject) => {
    stream.once('response', resolve);
    stream.once('close', () => reject(new Error(`stream closed before a response (code ${stream.rstCode})`)));
  });
  return { stream, head };
}

/** Reads from `stream` until `text` has arrived. */
function readUntil(stream: ClientHttp2Stream, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onClose = () => reject(new Error(`closed after ${JSON.stringify(got)}`));
    const onData = (d: Buffer) => {
      got += d.toString('latin1');
      if (got.includes(text)) {
        stream.off('data', onData);
        stream.off('close', onClose);
        resolve(got);
      }
    };
    stream.on('data', onData);
    stream.once('close', onClose);
  });
}

/** The whole answer of a stream that ends (a refusal). */
function bodyOf(stream: ClientHttp2Stream): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    stream.on('data', (d: Buffer) => chunks.push(d));
    stream.once('close', () => resolve(Buffer.concat(chunks).toString()));
  });
}

/** nyc accepting WebSockets, a router in front of it, and an HTTP/2 session to the router. */
async function oneRegion(flags: string[] = [], adjust?: (resolved: ResolvedRouter) => ResolvedRouter): Promise<{ seen: SeenUpgrade[]; router: TestRouter; s: ClientHttp2Session }> {
  const nyc = await TestOrigin.start('nyc');
  cleanup.push(() => nyc.kill());
  const seen = acceptWebSockets(nyc);
  const router = await startTestRouter({ nyc: nyc.url }, flags, {}, undefined, adjust);
  cleanup.push(() => router.close());
  return { seen, router, s: await session(router.httpsPort) };
}

describe('WebSocket over HTTP/2 (RFC 8441)', () => {
  it('announces extended CONNECT, relays both ways under its own handshake with the region, and logs the tunnel when it closes', async () => {
    const { seen, router, s } = await oneRegion();
    expect(s.remoteSettings.enableConnectProtocol).toBe(true);
    // A client's own Sec-WebSocket-Key means nothing over HTTP/2: the region gets the router's.
    const { stream, head } = await openWebSocket(s, '/ws?token=secret', { 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' });
    expect(head[':status']).toBe(200);
    expect(head['sec-websocket-protocol']).toBe('chat');
    expect(head['x-fn']).toBe('yes');
    expect(head['x-edge-region']).toBe('nyc');
    expect(head['sec-websocket-accept']).toBeUndefined();
    expect(head['upgrade']).toBeUndefined();
    stream.write('ping');
    expect(await readUntil(stream, 'echo:ping')).toBe('echo:ping');
    stream.write('pong');
    expect(await readUntil(stream, 'echo:pong')).toBe('echo:pong');

    // The region saw an HTTP/1.1 WebSocket handshake, the forwarded headers and the function's name.
    expect(seen).toHaveLength(1);
    const upgrade = seen[0]!;
    expect(upgrade.url).toBe('/ws?token=secret');
    expect(upgrade.headers).toMatchObject({ upgrade: 'websocket', connection: 'upgrade', 'sec-websocket-version': '13', 'sec-websocket-protocol': 'chat, superchat', 'x-edge-fn': 'echo', 'x-edge-org': 'demo', host: HOST });
    expect(upgrade.headers['sec-websocket-key']).toMatch(/^[A-Za-z0-9+/]{22}==$/);
    expect(upgrade.headers['sec-websocket-key']).not.toBe('dGhlIHNhbXBsZSBub25jZQ==');

    // The client's END_STREAM is the tunnel's half-close: the region ends too, and the stream closes.
    stream.end();
    await new Promise((r) => stream.once('close', r));
    await until('the access line of the closed tunnel', () => router.access.some((a) => a.method === 'CONNECT'));
    expect(router.access.find((a) => a.method === 'CONNECT')).toMatchObject({ status: 200, protocol: 'HTTP/2.0', path: '/ws', region: 'nyc', tried: ['nyc'], error: null, bytesIn: 8, bytesOut: 18 });
  });

  it('delivers what the region wrote before it closed to a client that reads slowly, then ends the stream', async () => {
    const nyc = await TestOrigin.start('nyc');
    cleanup.push(() => nyc.kill());
    const size = 1024 * 1024;
    let regionDone!: () => void;
    const regionFinished = new Promise<void>((r) => (regionDone = r));
    serverOf(nyc).on('upgrade', (req: IncomingMessage, socket: Duplex) => {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptOf(String(req.headers['sec-websocket-key']))}\r\n\r\n`);
      // A last message, then the region goes: far more than HTTP/2 flow control lets through unread.
      socket.end(Buffer.alloc(size, 0x61));
      socket.once('finish', regionDone);
    });
    const router = await startTestRouter({ nyc: nyc.url });
    cleanup.push(() => router.close());
    const { stream } = await openWebSocket(await session(router.httpsPort));
    stream.pause();
    await regionFinished; // all of it sent, and the region's FIN: only the router holds the rest now
    let received = 0;
    stream.on('data', (d: Buffer) => (received += d.length));
    const ended = await new Promise<boolean>((resolve) => {
      stream.once('end', () => resolve(true));
      stream.once('close', () => resolve(false));
      stream.resume();
    });
    expect(received).toBe(size);
    expect(ended).toBe(true);
  });

  it('keeps the connection for other requests while tunnels are open on it', async () => {
    const { s } = await oneRegion();
    const tunnels = await Promise.all([openWebSocket(s), openWebSocket(s), openWebSocket(s)]);
    const get = s.request({ ':path': '/plain', ':authority': HOST });
    get.end();
    const getHead = await new Promise<IncomingHttpHeaders>((resolve) => get.once('response', resolve));
    await bodyOf(get);
    expect(getHead[':status']).toBe(200);
    for (const [i, { stream }] of tunnels.entries()) {
      stream.write(`t${i}`);
      expect(await readUntil(stream, `echo:t${i}`)).toBe(`echo:t${i}`);
    }
  });

  it('fails over from a region whose 101 does not answer the router\'s key, and says 502 when no region does', async () => {
    const nyc = await TestOrigin.start('nyc');
    const fra = await TestOrigin.start('fra');
    cleanup.push(() => nyc.kill(), () => fra.kill());
    acceptWebSockets(nyc, [], () => 'bm90IHRoZSBhbnN3ZXI=');
    acceptWebSockets(fra);
    const router = await startTestRouter({ nyc: nyc.url, fra: fra.url });
    cleanup.push(() => router.close());
    const s = await session(router.httpsPort);
    const { stream, head } = await openWebSocket(s);
    expect(head[':status']).toBe(200);
    expect(head['x-edge-region']).toBe('fra');
    expect(head['x-edge-route']).toBe('failover:nyc-error');
    stream.write('hi');
    await readUntil(stream, 'echo:hi');
    stream.close();

    // With fra gone as well, nothing can take it.
    await fra.kill();
    const onlyBad = await startTestRouter({ nyc: nyc.url });
    cleanup.push(() => onlyBad.close());
    const refused = await openWebSocket(await session(onlyBad.httpsPort));
    expect(refused.head[':status']).toBe(502);
    expect(JSON.parse(await bodyOf(refused.stream))).toMatchObject({ error: { code: 'upstream_unavailable' } });
    await until('the refusal logged', () => onlyBad.access.some((a) => a.method === 'CONNECT'));
    expect(onlyBad.access.find((a) => a.method === 'CONNECT')).toMatchObject({ status: 502, error: 'bad_websocket_accept', region: 'nyc' });
  });

  it("relays a function's refusal as it is, and moves on from a region at capacity", async () => {
    const nyc = await TestOrigin.start('nyc');
    const fra = await TestOrigin.start('fra');
    cleanup.push(() => nyc.kill(), () => fra.kill());
    const refusal = JSON.stringify({ error: 'websockets are for members' });
    let nycAnswer = `HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\nx-fn-reason: members\r\ncontent-length: ${refusal.length}\r\nconnection: close\r\n\r\n${refusal}`;
    serverOf(nyc).on('upgrade', (_req: IncomingMessage, socket: Duplex) => socket.end(nycAnswer));
    acceptWebSockets(fra);
    const router = await startTestRouter({ nyc: nyc.url, fra: fra.url });
    cleanup.push(() => router.close());
    const s = await session(router.httpsPort);
    const refused = await openWebSocket(s);
    expect(refused.head).toMatchObject({ ':status': 403, 'x-fn-reason': 'members', 'x-edge-region': 'nyc', 'content-type': 'application/json' });
    expect(await bodyOf(refused.stream)).toBe(refusal);

    nycAnswer = 'HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n';
    const moved = await openWebSocket(s);
    expect(moved.head).toMatchObject({ ':status': 200, 'x-edge-region': 'fra', 'x-edge-route': 'failover:nyc-error' });
  });

  // RFC 9110 §8.6: a 304's Content-Length is the 200's. The router wrote `0` on one without, and
  // one with (which undici counts as bytes missing) was a 502.
  it.each([
    ['no length of its own making', '', undefined],
    ["the length it states (its 200's)", 'content-length: 42\r\n', '42'],
  ])("relays a function's 304 with %s", async (_name, lengthField, length) => {
    const nyc = await TestOrigin.start('nyc');
    cleanup.push(() => nyc.kill());
    serverOf(nyc).on('upgrade', (_req: IncomingMessage, socket: Duplex) => socket.end(`HTTP/1.1 304 Not Modified\r\netag: "v1"\r\n${lengthField}connection: close\r\n\r\n`));
    const router = await startTestRouter({ nyc: nyc.url });
    cleanup.push(() => router.close());
    const refused = await openWebSocket(await session(router.httpsPort));
    expect(refused.head).toMatchObject({ ':status': 304, etag: '"v1"', 'x-edge-region': 'nyc' });
    expect(refused.head['content-length']).toBe(length);
    expect(await bodyOf(refused.stream)).toBe('');
  });

  it('refuses an extended CONNECT for another protocol, and a plain CONNECT', async () => {
    const { seen, s, router } = await oneRegion();
    const other = s.request({ ':method': 'CONNECT', ':protocol': 'webtransport', ':scheme': 'https', ':path': '/x', ':authority': HOST });
    other.on('error', () => undefined);
    const otherHead = await new Promise<IncomingHttpHeaders>((resolve) => other.once('response', resolve));
    expect(otherHead[':status']).toBe(400);
    expect(JSON.parse(await bodyOf(other))).toMatchObject({ error: { code: 'bad_request', message: 'only the websocket upgrade is supported' } });
    const plain = s.request({ ':method': 'CONNECT', ':authority': 'example.com:443' });
    plain.on('error', () => undefined);
    const plainHead = await new Promise<IncomingHttpHeaders>((resolve) => plain.once('response', resolve));
    expect(plainHead[':status']).toBe(405);
    // The same answer as an HTTP/1 CONNECT's, and logged: it was a bare 405, with no access line.
    expect(JSON.parse(await bodyOf(plain))).toMatchObject({ error: { code: 'method_not_allowed' } });
    await until('the plain CONNECT logged', () => router.access.some((a) => a.status === 405));
    expect(router.access.find((a) => a.status === 405)).toMatchObject({ method: 'CONNECT', protocol: 'HTTP/2.0', error: 'method_not_allowed', region: null });
    expect(seen).toHaveLength(0);
  });

  it('resets a refused extended CONNECT whose client never opens its window to read the refusal, after --send-timeout', async () => {
    // The refusal waits for the stream's window; ended but never sent, it kept the stream open
    // for as long as the connection lived.
    const { router } = await oneRegion(['--send-timeout', '500']);
    const shut = http2Connect(`https://${HOST}:${router.httpsPort}`, { rejectUnauthorized: false, host: '127.0.0.1', servername: HOST, settings: { initialWindowSize: 0 } } as never);
    cleanup.push(() => void shut.destroy());
    shut.on('error', () => undefined);
    await new Promise<void>((resolve) => shut.once('remoteSettings', () => resolve()));
    const other = shut.request({ ':method': 'CONNECT', ':protocol': 'webtransport', ':scheme': 'https', ':path': '/x', ':authority': HOST });
    other.on('error', () => undefined);
    let closed = false;
    other.on('close', () => (closed = true));
    await until('the router reset the stream', () => closed, 10_000);
    expect(other.rstCode).toBe(constants.NGHTTP2_CANCEL);
  });

  it('counts an open tunnel against the per-address limit, and gives the place back when it closes', async () => {
    const { router, s } = await oneRegion(['--max-requests-per-ip', '2']);
    const first = await openWebSocket(s);
    const second = await openWebSocket(s);
    const third = await openWebSocket(s);
    expect(third.head[':status']).toBe(429);
    first.stream.close();
    await until('the first tunnel logged as closed', () => router.access.some((a) => a.method === 'CONNECT' && a.status === 200));
    const fourth = await openWebSocket(s);
    expect(fourth.head[':status']).toBe(200);
    second.stream.close();
  });

  it('does not judge a connection that opens and resets WebSockets one after another a rapid-reset flood', async () => {
    const { router, s } = await oneRegion(['--admin-token', ADMIN_TOKEN]);
    // A page that reconnects: each WebSocket is answered, used, then dropped by a reset.
    for (let i = 0; i < 120; i++) {
      const { stream, head } = await openWebSocket(s);
      expect(head[':status']).toBe(200);
      stream.write('x');
      await readUntil(stream, 'echo:x');
      stream.close(constants.NGHTTP2_CANCEL);
      await new Promise((r) => stream.once('close', r));
    }
    const last = await openWebSocket(s);
    expect(last.head[':status']).toBe(200);
    expect(s.destroyed).toBe(false);
    const metrics = await (await request(`http://127.0.0.1:${router.adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body.text();
    expect(connectionsRefused(metrics, 'reset_flood')).toBe(0);
    // The 120 closed tunnels are gone from the gauge; the last one is open.
    expect(metrics).toMatch(/^edge_router_websockets_open\{protocol="http2"\} 1$/m);
    expect(metrics).toMatch(/^edge_router_websockets_open\{protocol="http1"\} 0$/m);
  }, 30_000);

  it('counts streams refused while tunnels hold the address\'s allowance toward the rapid-reset verdict', async () => {
    const { router, s } = await oneRegion(['--max-requests-per-ip', '4', '--admin-token', ADMIN_TOKEN]);
    for (let i = 0; i < 4; i++) expect((await openWebSocket(s)).head[':status']).toBe(200);
    // The connection holds the whole allowance in tunnels, then floods requests that can only be refused.
    const closed = new Promise((r) => s.once('close', r));
    for (let i = 0; i < 150 && !s.closed && !s.destroyed; i++) {
      const get = s.request({ ':path': `/flood/${i}`, ':authority': HOST });
      get.on('error', () => undefined);
      get.end();
      get.resume();
      await new Promise((r) => get.once('close', r));
    }
    await closed;
    const metrics = await (await request(`http://127.0.0.1:${router.adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body.text();
    expect(connectionsRefused(metrics, 'reset_flood')).toBe(1);
  }, 30_000);

  it('does no work for extended CONNECTs reset in the same read: one log line each, as for requests', async () => {
    const { seen, router } = await oneRegion();
    const connection = await openRawH2(router.httpsPort, { reading: true });
    const frames: Buffer[] = [h2Frame(H2_FRAME.SETTINGS, SETTINGS_ACK, 0)]; // the router's SETTINGS (extended CONNECT) acknowledged
    const streams = 40;
    for (let i = 0; i < streams; i++) {
      const id = 2 * i + 1;
      const block = Buffer.concat([hpackLiteral(0x02, 'CONNECT'), Buffer.from([0x87]), hpackLiteral(0x04, `/burst/${i}`), hpackLiteral(0x01, HOST), hpackNewField(':protocol', 'websocket'), hpackNewField('sec-websocket-version', '13')]);
      frames.push(h2Frame(H2_FRAME.HEADERS, H2_FLAG.END_HEADERS, id, block), h2Frame(H2_FRAME.RST_STREAM, 0, id, Buffer.from([0, 0, 0, 0x8])));
    }
    await connection.send(Buffer.concat(frames));
    await until('a line for every stream', () => router.access.filter((a) => a.path.startsWith('/burst/')).length === streams);
    // Logged as gone before anything looked at them: no route, no function, no region.
    expect(router.access.filter((a) => a.path.startsWith('/burst/')).every((a) => a.status === 499 && a.error === 'client_closed' && a.fn === null && a.region === null)).toBe(true);
    expect(seen).toHaveLength(0);
    connection.socket.destroy();
  });

  it('answers 502 when the region answers 2xx without switching: over HTTP/2 a 2xx would open the tunnel', async () => {
    const nyc = await TestOrigin.start('nyc'); // no upgrade listener: Node answers the request as a plain GET, 200
    cleanup.push(() => nyc.kill());
    const router = await startTestRouter({ nyc: nyc.url });
    cleanup.push(() => router.close());
    const { stream, head } = await openWebSocket(await session(router.httpsPort));
    expect(head[':status']).toBe(502);
    expect(JSON.parse(await bodyOf(stream))).toMatchObject({ error: { code: 'upstream_unavailable', message: 'the function answered 200 instead of accepting the WebSocket' } });
    await until('the refusal logged', () => router.access.some((a) => a.method === 'CONNECT'));
    expect(router.access.find((a) => a.method === 'CONNECT')).toMatchObject({ status: 502, error: 'region answered 200', region: 'nyc' });
  });

  it("passes the region's FIN to the client as END_STREAM, and what the client sends after it still reaches the region", async () => {
    const nyc = await TestOrigin.start('nyc');
    cleanup.push(() => nyc.kill());
    let received = '';
    let regionSawEnd = false;
    serverOf(nyc).on('upgrade', (req: IncomingMessage, socket: Socket) => {
      socket.on('error', () => undefined);
      socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
      socket.on('end', () => (regionSawEnd = true));
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptOf(String(req.headers['sec-websocket-key']))}\r\n\r\n`);
      socket.end('going'); // a half-close: the region still reads
    });
    const router = await startTestRouter({ nyc: nyc.url });
    cleanup.push(() => router.close());
    const { stream } = await openWebSocket(await session(router.httpsPort));
    let got = '';
    stream.on('data', (d: Buffer) => (got += d.toString('latin1')));
    await new Promise((resolve) => stream.once('end', resolve));
    expect(got).toBe('going');
    stream.end('closing too');
    await until("the client's last message reached the region", () => regionSawEnd);
    expect(received).toBe('closing too');
    await until('the tunnel logged', () => router.access.some((a) => a.method === 'CONNECT'));
    expect(router.access.find((a) => a.method === 'CONNECT')).toMatchObject({ status: 200, error: null, bytesIn: 'closing too'.length, bytesOut: 'going'.length });
  });

  it('resets the stream with CANCEL when the region resets its connection', async () => {
    const nyc = await TestOrigin.start('nyc');
    cleanup.push(() => nyc.kill());
    serverOf(nyc).on('upgrade', (req: IncomingMessage, socket: Socket) => {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptOf(String(req.headers['sec-websocket-key']))}\r\n\r\n`);
      socket.once('data', () => socket.resetAndDestroy());
    });
    const router = await startTestRouter({ nyc: nyc.url });
    cleanup.push(() => router.close());
    const { stream } = await openWebSocket(await session(router.httpsPort));
    stream.write('boom');
    await new Promise((r) => stream.once('close', r));
    expect(stream.rstCode).toBe(constants.NGHTTP2_CANCEL);
  });

  it('closes a tunnel that carried nothing either way for --websocket-idle-timeout, and only then', async () => {
    const { router, s } = await oneRegion(['--websocket-idle-timeout', '1000']);
    const { stream } = await openWebSocket(s);
    let closedAt = 0;
    stream.once('close', () => (closedAt = Date.now()));
    // Traffic every 100 ms for one and a half times the timeout keeps it open.
    let lastEchoAt = 0;
    for (let i = 0; i < 15; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 100));
      stream.write(`m${i}`);
      await readUntil(stream, `echo:m${i}`);
      lastEchoAt = Date.now();
    }
    expect(closedAt).toBe(0);
    await until('the idle tunnel closed', () => closedAt > 0, 5_000);
    // Counted from the router's last write, which the client saw a moment later: a margin for that.
    expect(closedAt - lastEchoAt).toBeGreaterThanOrEqual(900);
    expect(stream.rstCode).toBe(constants.NGHTTP2_CANCEL);
    await until('the tunnel logged', () => router.access.some((a) => a.method === 'CONNECT'));
    expect(router.access.find((a) => a.method === 'CONNECT')).toMatchObject({ status: 200, error: 'idle_timeout', bytesIn: 2 * 10 + 3 * 5 });
    expect(s.destroyed).toBe(false); // the connection stays for other requests
  });

  it('closes a tunnel whose client takes none of what the function sends for --send-timeout, though it keeps sending', async () => {
    const { router, s } = await oneRegion(['--send-timeout', '1000']);
    const { stream } = await openWebSocket(s);
    let closedAt = 0;
    stream.once('close', () => (closedAt = Date.now()));
    // Megabytes of echo come back; the client's window stays shut (it reads nothing) while it sends now and then.
    stream.pause();
    stream.write(Buffer.alloc(4 * 1024 * 1024, 0x61));
    const sentAt = Date.now();
    const keepSending = setInterval(() => stream.destroyed || stream.write('still here'), 200);
    cleanup.push(() => clearInterval(keepSending));
    await until('the tunnel logged', () => router.access.some((a) => a.method === 'CONNECT'), 15_000);
    clearInterval(keepSending);
    expect(router.access.find((a) => a.method === 'CONNECT')).toMatchObject({ status: 200, error: 'send_timeout' });
    await until('the stream closed', () => closedAt > 0);
    expect(closedAt - sentAt).toBeGreaterThanOrEqual(1_000);
    expect(s.destroyed).toBe(false); // the connection stays for other requests
  });

  it('keeps a quiet tunnel past the idle timeout of HTTP/2 connections, and still closes an idle connection after its tunnel', async () => {
    // An HTTP/2 connection that carries no frame for 600 ms is closed (60 s with the defaults).
    const { router, s: idle } = await oneRegion([], (r) => ({ ...r, config: { ...r.config, limits: { ...r.config.limits, keepAliveTimeoutMs: 50, headersTimeoutMs: 100, http2IdleTimeoutMs: 600 } } }));
    const idleClosed = new Promise((r) => idle.once('close', r));
    const s = await session(router.httpsPort);
    const sClosed = new Promise((r) => s.once('close', r));
    const { stream } = await openWebSocket(s);
    await idleClosed; // the plain idle connection went at its timeout
    await new Promise((r) => setTimeout(r, 1_500));
    expect(s.closed || s.destroyed).toBe(false);
    stream.write('still here');
    expect(await readUntil(stream, 'echo:still here')).toBe('echo:still here');
    // The client resets its tunnel: the connection is idle again, and goes.
    stream.close();
    await sClosed;
  });

  it('lets a tunnel run through the drain on its connection (which got GOAWAY), then cuts it at --drain-timeout', async () => {
    const { router, s } = await oneRegion(['--drain-timeout', '1500']);
    const { stream } = await openWebSocket(s);
    const goaway = new Promise((r) => s.once('goaway', r));
    let closedAt = 0;
    stream.once('close', () => (closedAt = Date.now()));
    const drainStartedAt = Date.now();
    const closing = router.close();
    await goaway;
    await new Promise((r) => setTimeout(r, 500));
    stream.write('during');
    expect(await readUntil(stream, 'echo:during')).toBe('echo:during');
    await closing;
    await until('the tunnel closed', () => closedAt > 0);
    expect(closedAt - drainStartedAt).toBeGreaterThanOrEqual(1_400);
    expect(stream.rstCode).toBe(constants.NGHTTP2_CANCEL);
    await until('the tunnel logged', () => router.access.some((a) => a.method === 'CONNECT'));
    expect(router.access.find((a) => a.method === 'CONNECT')).toMatchObject({ status: 200, error: 'shutdown' });
  });

  it('with --websocket-over-http2 off announces nothing, and an extended CONNECT is a protocol error', async () => {
    const { seen, s } = await oneRegion(['--websocket-over-http2', 'off']);
    expect(s.remoteSettings.enableConnectProtocol).toBe(false);
    const stream = s.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'https', ':path': '/ws', ':authority': HOST, 'sec-websocket-version': '13' });
    stream.on('error', () => undefined);
    let answered = false;
    stream.once('response', () => (answered = true));
    await new Promise((r) => stream.once('close', r));
    expect(answered).toBe(false);
    expect(stream.rstCode).toBe(constants.NGHTTP2_PROTOCOL_ERROR);
    expect(seen).toHaveLength(0);
  });
});
