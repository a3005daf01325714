/**
 * A client that leaves, however it leaves (its HTTP/1.1 connection closed, its HTTP/2 stream
 * reset, its HTTP/2 connection closed) and whenever it leaves (queued for a connection, mid-upload,
 * while its request moved on to another region, while its answer waits for it to read), gives
 * back everything it held: the region's request is cut or never sent, the gate's slot and queue
 * place, the upload share, its address's allowance of requests and connections, and the gauges
 * that show them read zero again. Each departure is checked over every protocol.
 */
import { once } from 'node:events';
import { connect as http2Connect, constants as h2, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { agentFor, get, HOST } from '../support/clients.js';
import { ADMIN_TOKEN, Cleanup, getLine, hostileSetup, LONDON, openSilentTls } from '../support/hostile.js';
import { echo, type OriginHandler, type SeenRequest, type TestOrigin } from '../support/origin.js';
import type { TestRouter } from '../support/router.js';
import { until } from '../support/until.js';

const cleanup = new Cleanup();
afterEach(cleanup.run);
const setup = (flags: string[]) => hostileSetup(cleanup, flags);

/** Another London client (fra is its nearest region too), with an allowance of its own. */
const NEIGHBOUR = '127.8.0.2';

type Departure = 'HTTP/1.1 connection closed' | 'HTTP/2 stream reset' | 'HTTP/2 connection closed';
const DEPARTURES: readonly Departure[] = ['HTTP/1.1 connection closed', 'HTTP/2 stream reset', 'HTTP/2 connection closed'];

/** One request from LONDON that its client abandons on `leave()`; it reads nothing meanwhile. */
interface Leaver {
  leave(): void;
}

function h2Session(port: number, localAddress = LONDON): Promise<ClientHttp2Session> {
  const session = http2Connect(`https://${HOST}:${port}`, { rejectUnauthorized: false, host: '127.0.0.1', servername: HOST, localAddress } as never);
  cleanup.add(() => session.destroy());
  session.on('error', () => undefined);
  return new Promise((resolve, reject) => {
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

/**
 * Sends `method path` (a POST carries `bodyStart` of an announced `bodyLength`, the rest never
 * comes) the way `departure` will leave, and reads nothing of the answer.
 */
async function sendAndLeaveLater(port: number, departure: Departure, path: string, upload?: { bodyStart: Buffer; bodyLength: number }): Promise<Leaver> {
  if (departure === 'HTTP/1.1 connection closed') {
    const socket: TLSSocket = await openSilentTls(port, LONDON);
    socket.on('error', () => undefined);
    cleanup.add(() => socket.destroy());
    if (upload === undefined) socket.write(getLine(path));
    else socket.write(Buffer.concat([Buffer.from(`POST ${path} HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: ${upload.bodyLength}\r\n\r\n`, 'latin1'), upload.bodyStart]));
    return { leave: () => socket.destroy() };
  }
  const session = await h2Session(port);
  const stream: ClientHttp2Stream = session.request(
    upload === undefined ? { ':method': 'GET', ':path': path, ':authority': HOST } : { ':method': 'POST', ':path': path, ':authority': HOST, 'content-length': String(upload.bodyLength) },
    { endStream: upload === undefined },
  );
  stream.on('error', () => undefined);
  stream.pause(); // reads nothing: the stream's window fills
  if (upload !== undefined) stream.write(upload.bodyStart);
  return { leave: () => (departure === 'HTTP/2 stream reset' ? stream.close(h2.NGHTTP2_CANCEL) : session.destroy()) };
}

/** An origin handler that holds every request until `releaseAll()`, then answers it (and later ones) as `echo`. */
function holdAll(origin: TestOrigin) {
  const held: Array<() => void> = [];
  let open = true;
  origin.handler = (req, res, seen) => (open ? held.push(() => echo(req, res, seen)) : echo(req, res, seen));
  return {
    held,
    releaseAll() {
      open = false;
      for (const answer of held.splice(0)) answer();
    },
  };
}

/**
 * An origin handler that reads every body and never answers: `received()` is the bytes read so far,
 * `seen()` the last request (its `done` and `aborted` say how it ended).
 */
function readNeverAnswer(origin: TestOrigin) {
  origin.recordBodies = false;
  let received = 0;
  let seen: SeenRequest | undefined;
  origin.handler = (req, _res, s) => {
    seen = s;
    req.on('data', (chunk: Buffer) => (received += chunk.length));
  };
  return { received: () => received, seen: () => seen };
}

const metricsOf = async (router: TestRouter) =>
  (await request(`http://127.0.0.1:${router.adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body.text();
const gauge = (metrics: string, name: string, labels: string) => Number(new RegExp(`^${name}\\{${labels}\\} (\\S+)$`, 'm').exec(metrics)?.[1] ?? 'NaN');

/**
 * LONDON may have exactly `allowance` requests in progress again: that many, held by fra (or
 * queued at its gate), are taken; one more is refused 429. Every one is answered afterwards.
 */
async function expectAllowance(router: TestRouter, fra: TestOrigin, allowance: number, tag: string): Promise<void> {
  const hold = holdAll(fra);
  const session = await h2Session(router.httpsPort);
  const statuses: number[] = [];
  const streams = Array.from({ length: allowance }, (_, i) => {
    const stream = session.request({ ':method': 'GET', ':path': `/${tag}/${i}`, ':authority': HOST });
    stream.on('error', () => undefined);
    stream.on('response', (h) => statuses.push(Number(h[':status'])));
    stream.resume();
    return stream;
  });
  // Each is either held by fra or waiting at its gate (with one connection, all but one wait).
  await until(`${allowance} of LONDON's requests at fra`, () => {
    const o = router.router.outstanding('fra');
    return o.active + o.queued === allowance;
  });
  const over = session.request({ ':method': 'GET', ':path': `/${tag}/over`, ':authority': HOST });
  over.on('error', () => undefined);
  over.resume();
  const [overHead] = (await once(over, 'response')) as [Record<string, unknown>];
  expect(Number(overHead[':status'])).toBe(429);
  hold.releaseAll();
  await Promise.all(streams.map((s) => (s.closed ? undefined : once(s, 'close'))));
  expect(statuses).toEqual(Array.from({ length: allowance }, () => 200));
  session.close();
}

type Transport = 'TLS' | 'plain TCP';

/**
 * A raw HTTP/1.1 connection from LONDON (over TLS, HTTP/1.1 by ALPN, or plain TCP) that reads
 * everything it is sent; `answer`: all of it, once the connection has closed.
 */
async function rawConnection(router: TestRouter, transport: Transport): Promise<{ socket: Socket; answer: Promise<string> }> {
  let socket: Socket;
  if (transport === 'TLS') socket = (await openSilentTls(router.httpsPort, LONDON)).resume();
  else {
    socket = netConnect({ port: router.httpPort, host: '127.0.0.1', localAddress: LONDON });
    await once(socket, 'connect');
  }
  cleanup.add(() => socket.destroy());
  socket.on('error', () => undefined);
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  return { socket, answer: once(socket, 'close').then(() => Buffer.concat(chunks).toString('latin1')) };
}

/** The router holds nothing at fra: no request dispatched, queued or uploading. */
function fraLetGo(router: TestRouter): boolean {
  const o = router.router.outstanding('fra') as { active: number; queued: number; uploadsActive?: number };
  return o.active === 0 && o.queued === 0 && o.uploadsActive === 0;
}

/** How a raw HTTP/1.1 upload's client ends it, with the whole body sent or only its start. */
type UploadEnd =
  | 'closes mid-body' // a FIN, and nothing read any more
  | 'resets mid-body' // an RST
  | 'half-closes mid-body' // a FIN, still reading: the same FIN as a close, until bytes meet the closed socket
  | 'half-closes after its whole body'; // Node's own handling of a FIN, for comparison
const UPLOAD_ENDS: ReadonlyArray<[UploadEnd, Transport]> = [
  ['closes mid-body', 'TLS'],
  ['closes mid-body', 'plain TCP'],
  ['resets mid-body', 'plain TCP'],
  ['half-closes mid-body', 'TLS'],
  ['half-closes mid-body', 'plain TCP'],
  ['half-closes after its whole body', 'plain TCP'],
];

describe('hostile clients: a client that leaves gives back everything it held', () => {
  it.each(DEPARTURES)('gives back the queue place and the allowance of a request waiting for a connection whose client left (%s), and never sends it', async (departure) => {
    const { fra, router } = await setup(['--pool-connections', '1', '--max-requests-per-ip', '3']);
    const hold = holdAll(fra);
    // Another address's request holds fra's only connection.
    const neighbour = agentFor(router.httpsPort, { localAddress: NEIGHBOUR });
    cleanup.add(() => neighbour.destroy());
    const holder = get(neighbour, router.httpsPort, '/hold');
    await until('fra holds /hold', () => hold.held.length === 1);
    const leaver = await sendAndLeaveLater(router.httpsPort, departure, '/abandoned');
    await until('/abandoned is queued', () => router.router.outstanding('fra').queued === 1);
    expect(gauge(await metricsOf(router), 'edge_router_region_outstanding', 'region="fra",state="queued"')).toBe(1);
    leaver.leave();
    await until('/abandoned logged', () => router.access.some((a) => a.path === '/abandoned'));
    expect(router.access.find((a) => a.path === '/abandoned')).toMatchObject({ status: 499, error: 'client_closed', tried: ['fra'] });
    expect(router.router.outstanding('fra')).toMatchObject({ active: 1, queued: 0 });
    const metrics = await metricsOf(router);
    expect(gauge(metrics, 'edge_router_region_outstanding', 'region="fra",state="queued"')).toBe(0);
    hold.releaseAll();
    expect((await holder).status).toBe(200);
    // The whole allowance is LONDON's again (3 taken, the 4th refused), and fra never got the abandoned request.
    await expectAllowance(router, fra, 3, 'again');
    expect(fra.requests.map((r) => r.url).filter((u) => !u.startsWith('/again/'))).toEqual(['/hold']);
    await until('fra idle', () => fra.openRequests === 0 && router.router.outstanding('fra').active === 0);
  });

  it.each(DEPARTURES)("cuts the region's request of an upload whose client left mid-body (%s), and gives back its slot, its upload share and its allowance", async (departure) => {
    const { fra, router } = await setup(['--body-buffer', '1KiB', '--max-requests-per-ip', '2']);
    const upload = readNeverAnswer(fra);
    const leaver = await sendAndLeaveLater(router.httpsPort, departure, '/upload-gone', { bodyStart: Buffer.alloc(8 * 1024, 0x61), bodyLength: 1024 * 1024 });
    await until('the upload streams to fra', () => upload.received() >= 8 * 1024);
    expect(router.router.outstanding('fra')).toMatchObject({ active: 1, uploadsActive: 1 });
    leaver.leave();
    await until("fra's request is over", () => upload.seen()?.done === true);
    // Cut, not ended: a truncated body must never reach the region as a whole one.
    expect(upload.seen()!.aborted).toBe(true);
    expect(upload.received()).toBeLessThan(1024 * 1024);
    await until('the gate lets go', () => {
      const o = router.router.outstanding('fra') as { active: number; queued: number; uploadsActive?: number };
      return o.active === 0 && o.queued === 0 && o.uploadsActive === 0;
    });
    await until('/upload-gone logged', () => router.access.some((a) => a.path === '/upload-gone'));
    // Over HTTP/1.1 too: the connection's end cut the body short (Node's parser says
    // HPE_INVALID_EOF_STATE), and that is its client leaving, not a request broken otherwise.
    expect(router.access.find((a) => a.path === '/upload-gone')).toMatchObject({ status: 499, error: 'client_closed' });
    await expectAllowance(router, fra, 2, 'after-upload');
  });

  it.each(UPLOAD_ENDS)("logs 499 client_closed for an HTTP/1.1 upload whose client %s (%s), cuts the region's request and gives everything back", async (end, transport) => {
    const { fra, router } = await setup(['--plain-http', 'serve', '--body-buffer', '1KiB']);
    const upload = readNeverAnswer(fra);
    const whole = end === 'half-closes after its whole body';
    const bodyLength = whole ? 8 * 1024 : 100_000;
    const { socket, answer } = await rawConnection(router, transport);
    socket.write(`POST /upload-ended HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: ${bodyLength}\r\n\r\n`);
    socket.write(Buffer.alloc(8 * 1024, 0x61));
    await until('the upload streams to fra', () => upload.received() >= 8 * 1024);
    expect(router.router.outstanding('fra')).toMatchObject({ active: 1, uploadsActive: 1 });
    if (end === 'resets mid-body') socket.resetAndDestroy();
    else if (end === 'closes mid-body') socket.destroy();
    else socket.end();
    await until("fra's request is over", () => upload.seen()?.done === true);
    // A body cut short must never reach the region as a whole one; a whole one left its answer unwanted.
    expect(upload.seen()!.aborted).toBe(true);
    await until('the gate lets go', () => fraLetGo(router));
    await until('/upload-ended logged', () => router.access.some((a) => a.path === '/upload-ended'));
    expect(router.access.filter((a) => a.path === '/upload-ended')).toEqual([
      expect.objectContaining({ method: 'POST', region: 'fra', status: 499, error: 'client_closed' }),
    ]);
    // The connection closes without an answer: the half-closed client, still reading, got none either.
    expect(await answer).toBe('');
    await until('no connection is open', async () => /^edge_router_open_connections 0$/m.test(await metricsOf(router)));
    const metrics = await metricsOf(router);
    expect(metrics).toMatch(/^edge_router_requests_total\{region="fra",status_class="4xx",route="[^"]+"\} 1$/m);
    expect(gauge(metrics, 'edge_router_region_outstanding', 'region="fra",state="active"')).toBe(0);
    expect(gauge(metrics, 'edge_router_region_outstanding', 'region="fra",state="queued"')).toBe(0);
    expect(metrics).toMatch(/^edge_router_region_in_flight\{region="fra"\} 0$/m);
  });

  it('logs 499 client_closed for a pipelined upload whose client half-closes mid-body, after the answer before it went out', async () => {
    const { fra, router } = await setup(['--plain-http', 'serve', '--body-buffer', '1KiB']);
    fra.recordBodies = false;
    let answerSlow: (() => void) | undefined;
    fra.handler = (req, res, s) => {
      if (req.url === '/slow') answerSlow = () => echo(req, res, s);
      else req.resume(); // never answered
    };
    const { socket, answer } = await rawConnection(router, 'plain TCP');
    // The upload waits for its turn (pipelined requests go to the regions one at a time).
    socket.write(`${getLine('/slow')}POST /behind HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 100000\r\n\r\n`);
    socket.write(Buffer.alloc(8 * 1024, 0x61));
    await until('/slow reaches fra', () => answerSlow !== undefined);
    socket.end();
    await new Promise((r) => setTimeout(r, 100)); // the FIN is read while /slow's answer waits
    answerSlow!();
    const text = await answer;
    // The answer before it went out whole, and nothing after it.
    expect(text.match(/^HTTP\/1\.1 \d{3}/gm)).toEqual(['HTTP/1.1 200']);
    await until('both logged', () => router.access.filter((a) => a.path === '/slow' || a.path === '/behind').length === 2);
    expect(router.access.find((a) => a.path === '/slow')).toMatchObject({ status: 200 });
    expect(router.access.find((a) => a.path === '/behind')).toMatchObject({ method: 'POST', status: 499, error: 'client_closed' });
    // Cut short, it never reaches the region as a whole request.
    await until('fra idle', () => fra.openRequests === 0 && fraLetGo(router));
    for (const r of fra.requests.filter((r) => r.url === '/behind')) expect(r.aborted).toBe(true);
  });

  it.each<Transport>(['TLS', 'plain TCP'])("answers 400 bad_request, readable, to an HTTP/1.1 upload whose chunked framing breaks while it streams, and cuts the region's request (%s)", async (transport) => {
    // Bytes that are no chunk size: a broken request, not a client that left; it still reads.
    const { fra, router } = await setup(['--plain-http', 'serve', '--body-buffer', '1KiB']);
    const upload = readNeverAnswer(fra);
    const { socket, answer } = await rawConnection(router, transport);
    socket.write(`POST /upload-broken HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked\r\n\r\n2000\r\n${'a'.repeat(8 * 1024)}\r\n`);
    await until('the upload streams to fra', () => upload.received() >= 8 * 1024);
    socket.write('zz\r\n');
    expect(await answer).toMatch(/^HTTP\/1\.1 400 [^]*"code":"bad_request"/);
    await until("fra's request is over", () => upload.seen()?.done === true);
    expect(upload.seen()!.aborted).toBe(true);
    await until('/upload-broken logged', () => router.access.some((a) => a.path === '/upload-broken'));
    expect(router.access.filter((a) => a.path === '/upload-broken')).toEqual([
      expect.objectContaining({ method: 'POST', region: 'fra', status: 400, error: 'bad_request' }),
    ]);
    await until('the gate lets go', () => fraLetGo(router));
  });

  it.each(DEPARTURES)('gives back the place a request that moved on to the next region waited in, when its client leaves there (%s)', async (departure) => {
    const { fra, nyc, router } = await setup(['--pool-connections', '1']);
    fra.handler = (_req, res) => res.writeHead(503, { 'content-type': 'text/plain' }).end('busy');
    const hold = holdAll(nyc);
    // The neighbour's request fails over from fra and holds nyc's only connection.
    const neighbour = agentFor(router.httpsPort, { localAddress: NEIGHBOUR });
    cleanup.add(() => neighbour.destroy());
    const holder = get(neighbour, router.httpsPort, '/hold-nyc');
    await until('nyc holds /hold-nyc', () => hold.held.length === 1);
    const leaver = await sendAndLeaveLater(router.httpsPort, departure, '/moved-then-gone');
    await until('/moved-then-gone waits at nyc', () => router.router.outstanding('nyc').queued === 1);
    expect(router.router.outstanding('fra')).toMatchObject({ active: 0, queued: 0 });
    leaver.leave();
    await until('/moved-then-gone logged', () => router.access.some((a) => a.path === '/moved-then-gone'));
    expect(router.access.find((a) => a.path === '/moved-then-gone')).toMatchObject({ status: 499, error: 'client_closed', tried: ['fra', 'nyc'] });
    expect(router.router.outstanding('nyc')).toMatchObject({ active: 1, queued: 0 });
    hold.releaseAll();
    expect((await holder).status).toBe(200);
    await until('nyc idle', () => nyc.openRequests === 0 && router.router.outstanding('nyc').active === 0);
    expect(nyc.requests.map((r) => r.url)).toEqual(['/hold-nyc']);
  });

  it.each(DEPARTURES)('pauses the region while its client reads none of a large answer, holding a bounded amount, and cuts it when the client leaves (%s)', async (departure) => {
    const { fra, router } = await setup(['--send-timeout', '60000']);
    const total = 1024 * 1024 * 1024;
    let written = 0;
    let seen: SeenRequest | undefined;
    const endless: OriginHandler = (_req, res, s) => {
      seen = s;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      const pump = () => {
        while (written < total && !res.destroyed) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
      };
      pump();
    };
    fra.handler = endless;
    const leaver = await sendAndLeaveLater(router.httpsPort, departure, '/unread');
    // The region is paused once every buffer between it and the client is full: what it wrote stops growing.
    let last = -1;
    await until(
      'the region is paused',
      async () => {
        const now = written;
        const still = now > 0 && now === last;
        last = now;
        await new Promise((r) => setTimeout(r, 300));
        return still && written === now;
      },
      15_000,
    );
    // Kernel buffers on both sides of the router, and the router's own: megabytes, not the gigabyte on offer.
    expect(written).toBeLessThan(64 * 1024 * 1024);
    expect(router.router.outstanding('fra')).toMatchObject({ active: 1 });
    leaver.leave();
    await until("fra's answer is cut", () => seen?.done === true && seen.aborted);
    await until('fra idle', () => fra.openRequests === 0 && router.router.outstanding('fra').active === 0);
    await until('/unread logged', () => router.access.some((a) => a.path === '/unread'));
    expect(router.access.find((a) => a.path === '/unread')).toMatchObject({ status: 499, error: 'client_closed' });
  }, 30_000);

  it('returns every count to zero after many clients leave abruptly, at every stage, over every protocol', async () => {
    const { fra, router } = await setup(['--max-conns-per-ip', '6', '--max-requests-per-ip', '6', '--body-buffer', '1KiB', '--drain-timeout', '5000']);
    fra.recordBodies = false;
    fra.handler = (req, res) => {
      if (req.url!.startsWith('/big/')) {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        const chunk = Buffer.alloc(64 * 1024, 0x61);
        const pump = () => {
          while (!res.destroyed) if (!res.write(chunk)) return void res.once('drain', pump);
        };
        pump();
        return;
      }
      req.resume(); // /hang/ and /upload/: read everything, answer nothing
    };
    const port = router.httpsPort;
    const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const ways: Array<(i: number) => Promise<void>> = [
      // Gone before the TLS handshake ends.
      async () => {
        const socket = netConnect({ port, host: '127.0.0.1', localAddress: LONDON });
        socket.on('error', () => undefined);
        await once(socket, 'connect');
        socket.write(Buffer.from([0x16, 0x03, 0x01]));
        socket.resetAndDestroy();
      },
      // Half a request head.
      async (i) => {
        const socket = await openSilentTls(port, LONDON);
        socket.on('error', () => undefined);
        socket.write(`GET /half/${i} HTTP/1.1\r\nHost: ${HOST}\r\n`);
        await pause(20);
        socket.destroy();
      },
      // Waiting for an answer, and one more pipelined behind it.
      async (i) => {
        const socket = await openSilentTls(port, LONDON);
        socket.on('error', () => undefined);
        socket.write(getLine(`/hang/${i}`) + getLine(`/hang/${i}/next`));
        await until(`/hang/${i} reaches fra`, () => fra.requests.some((r) => r.url === `/hang/${i}`));
        socket.destroy();
      },
      // Mid-answer, reading none of it.
      async (i) => {
        const leaver = await sendAndLeaveLater(port, 'HTTP/1.1 connection closed', `/big/${i}`);
        await until(`/big/${i} reaches fra`, () => fra.requests.some((r) => r.url === `/big/${i}`));
        await pause(50);
        leaver.leave();
      },
      // Mid-upload.
      async (i) => {
        const leaver = await sendAndLeaveLater(port, 'HTTP/1.1 connection closed', `/upload/${i}`, { bodyStart: Buffer.alloc(4096, 0x61), bodyLength: 100_000 });
        await until(`/upload/${i} reaches fra`, () => fra.requests.some((r) => r.url === `/upload/${i}`));
        leaver.leave();
      },
      // An HTTP/2 connection with several streams at every stage, dropped at once.
      async (i) => {
        const session = await h2Session(port);
        for (const path of [`/hang/h2-${i}`, `/big/h2-${i}`]) session.request({ ':method': 'GET', ':path': path, ':authority': HOST }).on('error', () => undefined).pause();
        const upload = session.request({ ':method': 'POST', ':path': `/upload/h2-${i}`, ':authority': HOST }, { endStream: false });
        upload.on('error', () => undefined);
        upload.write(Buffer.alloc(4096, 0x61));
        await until(`h2-${i}'s streams reach fra`, () => fra.requests.filter((r) => r.url.endsWith(`h2-${i}`)).length === 3);
        session.destroy();
      },
      // HTTP/2 streams reset one by one mid-answer and mid-upload, then the connection closed politely.
      async (i) => {
        const session = await h2Session(port);
        const big = session.request({ ':method': 'GET', ':path': `/big/reset-${i}`, ':authority': HOST });
        big.on('error', () => undefined);
        big.pause();
        const upload = session.request({ ':method': 'POST', ':path': `/upload/reset-${i}`, ':authority': HOST }, { endStream: false });
        upload.on('error', () => undefined);
        upload.write(Buffer.alloc(4096, 0x61));
        await until(`reset-${i}'s streams reach fra`, () => fra.requests.filter((r) => r.url.endsWith(`reset-${i}`)).length === 2);
        big.close(h2.NGHTTP2_CANCEL);
        upload.close(h2.NGHTTP2_CANCEL);
        session.close();
      },
    ];
    // Rounds of three at a time: within the address's six connections and six requests.
    for (let round = 0; round < 7; round++) await Promise.all([0, 1, 2].map((k) => ways[(round * 3 + k) % ways.length]!(round * 3 + k)));

    await until('fra is let go of', () => fra.openRequests === 0 && router.router.outstanding('fra').active === 0 && router.router.outstanding('fra').queued === 0, 10_000);
    await until('no connection is open', async () => /^edge_router_open_connections 0$/m.test(await metricsOf(router)), 10_000);
    const metrics = await metricsOf(router);
    expect(gauge(metrics, 'edge_router_region_outstanding', 'region="fra",state="active"')).toBe(0);
    expect(gauge(metrics, 'edge_router_region_outstanding', 'region="fra",state="queued"')).toBe(0);
    expect(metrics).toMatch(/^edge_router_region_in_flight\{region="fra"\} 0$/m);
    // Not one departure was mistaken for a flood.
    expect(metrics).not.toMatch(/^edge_router_connections_refused_total\{reason="(?:reset_flood|frame_flood|penalty|per_address)"\} [1-9]/m);

    // The address's whole allowance of requests, and of connections, is its own again.
    await expectAllowance(router, fra, 6, 'after-all');
    await until('the allowance check closed its connection', async () => /^edge_router_open_connections 0$/m.test(await metricsOf(router)));
    const sockets = await Promise.all(Array.from({ length: 6 }, () => openSilentTls(port, LONDON)));
    for (const s of sockets) {
      s.on('error', () => undefined);
      cleanup.add(() => s.destroy());
    }
    const seventh = await openSilentTls(port, LONDON).then(
      (s) => {
        s.destroy();
        return 'accepted';
      },
      () => 'refused',
    );
    expect(seventh).toBe('refused');
    for (const s of sockets) s.destroy();

    // Nothing is left in flight: the drain ends at once, not at its timeout.
    fra.handler = echo;
    const neighbour = agentFor(port, { localAddress: NEIGHBOUR });
    expect((await get(neighbour, port, '/still-served')).status).toBe(200);
    await neighbour.close();
    const drainStarted = Date.now();
    await router.close();
    expect(router.logs.filter((l) => l.event === 'drain_timeout')).toEqual([]);
    expect(Date.now() - drainStarted).toBeLessThan(4_000);
  }, 60_000);
});
