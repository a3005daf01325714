/**
 * At --max-connections, the router makes room for new connections by closing the idle ones used
 * least recently (idle-reclaim.ts), as nginx reuses its keep-alive connections: real listeners, real
 * clients, and the Node internals idle-connections.ts reads. With a cap of 4 a listener keeps one
 * place in reserve: from 3 connections open it closes idle ones (quiet for a second or more) down to 2.
 */
import { once } from 'node:events';
import { createServer as createHttpServer, type ServerResponse } from 'node:http';
import { connect as http2Connect, createServer as createHttp2Server, type ClientHttp2Session, type Http2Session } from 'node:http2';
import { connect as netConnect, createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HOST } from '../support/clients.js';
import { ADMIN_TOKEN, Cleanup, connectionsRefusedAt, hostileSetup, LONDON } from '../support/hostile.js';
import { openHttps1, type Https1Connection } from '../support/https1.js';
import { until } from '../support/until.js';
import { rawRequest } from '../support/raw.js';
import { answer, startPublicListeners } from '../support/public-listeners.js';
import { proxyProtocolServer } from '../../src/ingress/proxy-protocol/listener.js';
import { DEFAULT_LIMITS } from '../../src/ingress/server-limits.js';
import { idleHttp1Connections, idleHttp2Sessions, silentConnections, stillIdle, type ConnectionFacts, type IdleConnection } from '../../src/ingress/idle-connections.js';
import type { ReclaimCandidate } from '../../src/ingress/idle-reclaim.js';

const cleanup = new Cleanup();
afterEach(cleanup.run);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Longer than idle-reclaim's one second of quiet before a connection may go. */
const QUIET_MS = 1_200;

async function https1(port: number): Promise<Https1Connection> {
  const connection = await openHttps1(port);
  cleanup.add(() => connection.socket.destroy());
  return connection;
}

const isClosed = (connection: { closed: Promise<number> }) => Promise.race([connection.closed.then(() => true), sleep(0).then(() => false)]);

/** An origin handler that holds each answer until `release()`. */
function holding() {
  const held: ServerResponse[] = [];
  return {
    held,
    handler: (_req: unknown, res: ServerResponse) => void held.push(res),
    release: () => held.splice(0).forEach((res) => res.end('late')),
  };
}

function h2Session(port: number): Promise<ClientHttp2Session & { goneAway: Promise<void>; closedAt: Promise<void> }> {
  const session = http2Connect(`https://${HOST}:${port}`, { rejectUnauthorized: false, host: '127.0.0.1', servername: HOST, localAddress: LONDON } as never);
  cleanup.add(() => session.destroy());
  session.on('error', () => undefined);
  const goneAway = new Promise<void>((resolve) => session.once('goaway', () => resolve()));
  const closedAt = new Promise<void>((resolve) => session.once('close', () => resolve()));
  return new Promise((resolve, reject) => {
    session.once('connect', () => resolve(Object.assign(session, { goneAway, closedAt })));
    session.once('close', () => reject(new Error('closed before connecting')));
  });
}

function h2Get(session: ClientHttp2Session, path: string): Promise<{ status: number; body: string }> {
  const stream = session.request({ ':path': path, ':authority': HOST });
  return new Promise((resolve, reject) => {
    let status = 0;
    let body = '';
    stream.on('response', (headers) => (status = Number(headers[':status'])));
    stream.on('data', (chunk: Buffer) => (body += chunk.toString()));
    stream.on('end', () => resolve({ status, body }));
    stream.on('error', reject);
  });
}

describe('idle connections at --max-connections', () => {
  it('closes the HTTPS/1.1 connections used least recently to let new ones in, and keeps the one in use', async () => {
    const { router, fra } = await hostileSetup(cleanup, ['--max-connections', '4']);
    const [a, b, c] = [await https1(router.httpsPort), await https1(router.httpsPort), await https1(router.httpsPort)];
    for (const [connection, path] of [[a, '/a'], [b, '/b'], [c, '/c']] as const) expect(await connection.get(path)).toMatch(/^HTTP\/1\.1 200/);
    await sleep(QUIET_MS);
    expect(await c.get('/c-again')).toMatch(/^HTTP\/1\.1 200/); // c used just now
    // The fourth fills the listener to its cap: the two quiet longest go, c stays.
    const d = await https1(router.httpsPort);
    await Promise.all([a.closed, b.closed]);
    expect(await isClosed(c)).toBe(false);
    expect(await d.get('/d')).toMatch(/^HTTP\/1\.1 200/);
    // Room for a fifth, which a full listener would have dropped.
    await sleep(50);
    const e = await https1(router.httpsPort);
    expect(await e.get('/e')).toMatch(/^HTTP\/1\.1 200/);
    expect(await c.get('/c-last')).toMatch(/^HTTP\/1\.1 200/);
    expect(fra.requests.map((r) => r.url)).toEqual(['/a', '/b', '/c', '/c-again', '/d', '/e', '/c-last']);
    expect(await connectionsRefusedAt(router.adminPort, 'idle_reclaimed')).toBe(2);
    expect(await connectionsRefusedAt(router.adminPort, 'at_capacity')).toBe(0);
  });

  it('never closes a connection whose answer is under way, whose upload is coming or whose next request has begun', async () => {
    const { router, fra } = await hostileSetup(cleanup, ['--max-connections', '5']);
    const origin = holding();
    fra.handler = origin.handler;
    const busy = await https1(router.httpsPort);
    const answer = busy.get('/held');
    await until('the request reached the origin', () => origin.held.length === 1);
    fra.handler = (_req, res) => res.end('ok');
    const midHead = await https1(router.httpsPort);
    expect(await midHead.get('/first')).toMatch(/^HTTP\/1\.1 200/);
    midHead.socket.write(`GET /second HTTP/1.1\r\nHost: ${HOST}\r\n`); // the head's end not sent
    // An upload whose body has come in part: its request is under way.
    const upload = await https1(router.httpsPort);
    upload.socket.write(`POST /upload HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 20\r\n\r\n0123456789`);
    const idle = await https1(router.httpsPort);
    expect(await idle.get('/idle')).toMatch(/^HTTP\/1\.1 200/);
    await sleep(QUIET_MS);
    // The fifth brings the listener of five to its reserve; only the idle one may go.
    const fifth = await https1(router.httpsPort);
    await idle.closed;
    await sleep(100);
    expect(await isClosed(busy)).toBe(false);
    expect(await isClosed(midHead)).toBe(false);
    expect(await isClosed(upload)).toBe(false);
    origin.release();
    expect(await answer).toMatch(/^HTTP\/1\.1 200/);
    const uploaded = new Promise<string>((resolve) => upload.socket.on('data', (d: Buffer) => resolve(d.toString('latin1'))));
    upload.socket.write('abcdefghij');
    expect(await uploaded).toMatch(/^HTTP\/1\.1 200/);
    expect(await fifth.get('/fifth')).toMatch(/^HTTP\/1\.1 200/);
    expect(await connectionsRefusedAt(router.adminPort, 'idle_reclaimed')).toBe(1);
  });

  it('asks an HTTP/2 connection without a stream to go (GOAWAY), and keeps one with a stream open', async () => {
    const { router, fra } = await hostileSetup(cleanup, ['--max-connections', '4']);
    const origin = holding();
    fra.handler = origin.handler;
    const busy = await h2Session(router.httpsPort);
    const answer = h2Get(busy, '/held');
    await until('the request reached the origin', () => origin.held.length === 1);
    fra.handler = (_req, res) => res.end('ok');
    const idle = await h2Session(router.httpsPort);
    expect((await h2Get(idle, '/idle')).status).toBe(200);
    await sleep(QUIET_MS);
    const third = await h2Session(router.httpsPort); // one wanted at 3 of 4
    await idle.goneAway;
    await idle.closedAt;
    expect(busy.closed || busy.destroyed).toBe(false);
    expect((await h2Get(third, '/third')).status).toBe(200);
    origin.release();
    expect(await answer).toEqual({ status: 200, body: 'late' });
    expect(await connectionsRefusedAt(router.adminPort, 'idle_reclaimed')).toBe(1);
  });

  for (const listener of ['plain', 'TLS'] as const) {
    it(`closes ${listener} connections that never sent a byte${listener === 'TLS' ? ' (no ClientHello)' : ''}, silent longest first, once they have been silent a while`, async () => {
      const { router } = await hostileSetup(cleanup, ['--max-connections', '4']);
      const port = listener === 'TLS' ? router.httpsPort : router.httpPort;
      const open = async () => {
        const socket = netConnect({ port, host: '127.0.0.1', localAddress: LONDON });
        cleanup.add(() => socket.destroy());
        socket.on('error', () => undefined);
        const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now())));
        await new Promise((resolve) => socket.once('connect', resolve));
        return { socket, closed };
      };
      const first = await open();
      const second = await open();
      await sleep(QUIET_MS);
      // The third brings the listener to its reserve: one wanted, the one silent longest.
      const third = await open();
      await first.closed;
      expect(await isClosed(second)).toBe(false);
      // Another wanted; the look is made now, or by a timer as soon as the looks' pace allows.
      const fourth = await open();
      await second.closed;
      await sleep(100);
      expect(await isClosed(third)).toBe(false); // silent, but not for long enough
      expect(await isClosed(fourth)).toBe(false);
      if (listener === 'TLS') expect(await (await https1(port)).get('/served')).toMatch(/^HTTP\/1\.1 200/);
      else expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
      expect(await connectionsRefusedAt(router.adminPort, 'idle_reclaimed')).toBe(2);
      // Not also a handshake its client aborted.
      const metrics = await (await fetch(`http://127.0.0.1:${router.adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text();
      expect(metrics).toMatch(/^edge_router_tls_handshake_failures_total\{reason="aborted"\} 0$/m);
    });
  }

  it('drops a new connection when every connection is in use, and counts it', async () => {
    const { router, fra } = await hostileSetup(cleanup, ['--max-connections', '3']);
    const origin = holding();
    fra.handler = origin.handler;
    const first = await https1(router.httpsPort);
    const second = await https1(router.httpsPort);
    const answers = [first.get('/one'), second.get('/two')];
    await until('both requests reached the origin', () => origin.held.length === 2);
    await sleep(QUIET_MS);
    const third = await https1(router.httpsPort);
    // At the cap with nothing idle: the fourth is dropped as it comes.
    await expect(openHttps1(router.httpsPort)).rejects.toThrow();
    expect(await connectionsRefusedAt(router.adminPort, 'at_capacity')).toBe(1);
    expect(await connectionsRefusedAt(router.adminPort, 'idle_reclaimed')).toBe(0);
    // Said in the log, once per 10 s at most: a second refusal at once adds no line.
    await expect(openHttps1(router.httpsPort)).rejects.toThrow();
    expect(router.logs.filter((l) => l.event === 'connections_at_capacity')).toEqual([expect.objectContaining({ listener: 'https', maxConnections: 3 })]);
    origin.release();
    for (const answer of answers) expect(await answer).toMatch(/^HTTP\/1\.1 200/);
    third.socket.destroy();
  });

  it('near the cap, refuses an address holding more than its share without a look, and makes room for a light one', async () => {
    const { router } = await hostileSetup(cleanup, ['--max-connections', '64']);
    // One address holds 62 silent connections: below the reserve (a cap of 64 keeps 1), so all kept.
    const held: Socket[] = [];
    for (let i = 0; i < 62; i++) {
      const socket = netConnect({ port: router.httpsPort, host: '127.0.0.1', localAddress: '127.68.0.1' });
      cleanup.add(() => socket.destroy());
      socket.on('error', () => undefined);
      held.push(socket);
      await once(socket, 'connect');
    }
    await sleep(QUIET_MS); // all accepted, and quiet long enough to go
    expect(held.every((socket) => !socket.destroyed)).toBe(true);
    // Its 63rd reaches the reserve: the address holds more than 16 and half the cap, so it is closed
    // as it comes, and nothing is closed for it.
    await expect(openHttps1(router.httpsPort, '127.68.0.1')).rejects.toThrow();
    expect(await connectionsRefusedAt(router.adminPort, 'heavy_near_capacity')).toBe(1);
    expect(await connectionsRefusedAt(router.adminPort, 'idle_reclaimed')).toBe(0);
    // Another address's first connection is light: the look makes room for it.
    const light = await https1(router.httpsPort);
    expect(await light.get('/light')).toMatch(/^HTTP\/1\.1 200/);
    expect(await connectionsRefusedAt(router.adminPort, 'idle_reclaimed')).toBeGreaterThan(0);
    expect(await connectionsRefusedAt(router.adminPort, 'at_capacity')).toBe(0);
  });

  it('holds the cap behind the PROXY protocol at accept: connections still waiting for their header count', async () => {
    const { servers, http } = await startPublicListeners((_req, res) => answer(res, 200, 'ok'), {
      plainHttp: 'serve',
      limits: { ...DEFAULT_LIMITS, maxConnections: 2 },
      wrapListener: (server, admit, hasRoom) => proxyProtocolServer(server, { timeoutMs: 2_000, admit, hasRoom }),
    });
    cleanup.add(() => servers.forceClose());
    const header = (client: string) => `PROXY TCP4 ${client} 127.0.0.1 40000 80\r\n`;
    // One client in the middle of a request head, one connection that has not sent its header yet.
    const waiting = [rawRequest(http, [header('203.0.113.1') + 'GET / HTTP/1.1\r\n'], { timeoutMs: 3_000 }), rawRequest(http, ['PROXY TCP4 '], { timeoutMs: 3_000 })];
    await until('one handed over', () => servers.openConnections === 1);
    await sleep(100);
    const third = await rawRequest(http, [header('203.0.113.9') + 'GET / HTTP/1.1\r\nHost: a\r\n\r\n'], { untilClose: true, timeoutMs: 3_000 });
    expect(third.status).toBeNull();
    expect(third.closedByServer).toBe(true);
    expect(servers.droppedAtCapacity).toBe(1);
    servers.forceClose();
    await Promise.all(waiting);
  });

  it('behind the PROXY protocol, closes no idle connection for a newcomer its per-address limit then refuses', async () => {
    // The look for room ran at accept, before the header named the client: an address at its
    // limit (or penalised, or over its connect rate) had others' idle connections closed at every
    // look its pacing allowed, then was refused anyway (seen in review).
    const { servers, http } = await startPublicListeners((_req, res) => answer(res, 200, 'ok'), {
      plainHttp: 'serve',
      // Two open are below the cap's reserve (no look for room), a third reaches it.
      limits: { ...DEFAULT_LIMITS, maxConnections: 4 },
      maxConnectionsPerAddress: 1,
      wrapListener: (server, admit, hasRoom) => proxyProtocolServer(server, { timeoutMs: 5_000, admit, hasRoom }),
    });
    cleanup.add(() => servers.forceClose());
    const header = (client: string) => `PROXY TCP4 ${client} 127.0.0.1 40000 80\r\n`;
    // One client answered and idle on its keep-alive connection, another holding its one place.
    const idle = netConnect({ port: http, host: '127.0.0.1' });
    cleanup.add(() => idle.destroy());
    idle.on('error', () => undefined);
    let idleRead = '';
    idle.on('data', (d: Buffer) => (idleRead += d.toString('latin1')));
    idle.write(`${header('203.0.113.1')}GET / HTTP/1.1\r\nHost: a\r\n\r\n`);
    await until('the idle client answered', () => idleRead.startsWith('HTTP/1.1 200'));
    const holder = rawRequest(http, [`${header('203.0.113.2')}GET / HTTP/1.1\r\n`], { timeoutMs: 4_000 });
    await until('both handed over', () => servers.openConnections === 2);
    await sleep(QUIET_MS); // the idle one quiet long enough to be closed for room
    // The holder's address again, into the reserve: refused for its address, and no one closed for it.
    const refused = await rawRequest(http, [`${header('203.0.113.2')}GET / HTTP/1.1\r\nHost: a\r\n\r\n`], { untilClose: true, timeoutMs: 3_000 });
    expect(refused.status).toBeNull();
    expect(refused.closedByServer).toBe(true);
    expect(servers.reclaimedIdleConnections).toBe(0);
    expect(idle.destroyed).toBe(false);
    servers.forceClose();
    await holder;
  });

  it('never lets a burst at the cap past it: each idle connection closed makes room for one newcomer, no more', async () => {
    const held: unknown[] = [];
    const { servers, http } = await startPublicListeners((_req, res) => void held.push(res), { plainHttp: 'serve', limits: { ...DEFAULT_LIMITS, maxConnections: 8 } });
    cleanup.add(() => servers.forceClose());
    // Eight connections that never send a byte: the cap, all of them quiet long enough to go.
    const silent = Array.from({ length: 8 }, () => rawRequest(http, [], { untilClose: true, timeoutMs: 6_000 }));
    await until('the cap reached', () => servers.openConnections === 8);
    await sleep(QUIET_MS);
    // Twelve more at once, each a whole request its handler holds unanswered: each one let in keeps its place.
    const burst = Array.from({ length: 12 }, (_, i) => rawRequest(http, [`GET /${i} HTTP/1.1\r\nHost: a\r\n\r\n`], { timeoutMs: 2_000 }));
    await until('each newcomer let in or closed', () => held.length + servers.droppedAtCapacity === 12);
    expect(held.length).toBeGreaterThan(0);
    // Open at any time: the newcomers let in and the silent ones not closed, never more than the cap.
    expect(held.length + (8 - servers.reclaimedIdleConnections)).toBeLessThanOrEqual(8);
    servers.forceClose();
    await Promise.all([...silent, ...burst]);
  });
});

describe('stillIdle: a connection a walk found idle, checked again on its own', () => {
  /** Facts as the public listeners keep them: accepted when the server saw it, nothing sent while no byte was read. */
  function factsFor(server: NetServer): ConnectionFacts {
    const acceptedAt = new WeakMap<Socket, number>();
    server.on('connection', (socket: Socket) => acceptedAt.set(socket, performance.now()));
    return { acceptedAtMs: (socket) => acceptedAt.get(socket), sentNothing: (socket) => socket.bytesRead === 0 };
  }

  async function listening<S extends NetServer>(server: S): Promise<number> {
    cleanup.add(() => void server.close());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return (server.address() as { port: number }).port;
  }

  const found = (walk: (into: ReclaimCandidate<IdleConnection>[]) => void) => {
    const into: ReclaimCandidate<IdleConnection>[] = [];
    walk(into);
    return into;
  };

  it('HTTP/1: idle until the next request begins, or until it is closed', async () => {
    const server = createHttpServer((_req, res) => res.end('ok'));
    const facts = factsFor(server);
    const port = await listening(server);
    const between = netConnect(port, '127.0.0.1');
    cleanup.add(() => between.destroy());
    between.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    expect(String((await once(between, 'data'))[0])).toMatch(/^HTTP\/1\.1 200/);
    const silent = netConnect(port, '127.0.0.1');
    cleanup.add(() => silent.destroy());
    await once(silent, 'connect');
    await until('both connections known to the server', () => found((into) => idleHttp1Connections(server, facts, into)).length === 2);
    await sleep(20);
    const [first, second] = found((into) => idleHttp1Connections(server, facts, into));
    for (const candidate of [first!, second!]) expect(stillIdle(candidate, facts)).toBe(true);
    between.write('GET /next HTTP/1.1\r\n'); // a head begun
    silent.write('G');
    await until('both heads read', () => [first!, second!].every((c) => (c.connection as Socket).bytesRead > 0 && !stillIdle(c, facts)));
    expect(found((into) => idleHttp1Connections(server, facts, into))).toHaveLength(0);
  });

  it('a connection that has sent nothing: idle until its first byte', async () => {
    const server = createNetServer(() => undefined);
    const facts = factsFor(server);
    const port = await listening(server);
    const accepted = new Set<Socket>();
    server.on('connection', (socket: Socket) => accepted.add(socket));
    const client = netConnect(port, '127.0.0.1');
    cleanup.add(() => client.destroy());
    await until('accepted', () => accepted.size === 1);
    const [candidate] = found((into) => silentConnections(accepted, server, facts, into));
    expect(stillIdle(candidate!, facts)).toBe(true);
    client.write('\x16');
    await until('its byte read', () => !stillIdle(candidate!, facts));
    [...accepted][0]!.destroy();
    expect(found((into) => silentConnections(accepted, server, facts, into))).toHaveLength(0);
  });

  it('HTTP/2: idle until a stream comes (even one that has gone again), or until it is asked to go', async () => {
    const server = createHttp2Server();
    server.on('stream', (stream) => stream.respond({ ':status': 200 }, { endStream: true }));
    const sessions = new Set<Http2Session>();
    server.on('session', (session) => {
      sessions.add(session);
      session.setTimeout(60_000); // the inactivity timer the router sets (--http2-idle-timeout)
    });
    const port = await listening(server);
    const client = http2Connect(`http://127.0.0.1:${port}`);
    cleanup.add(() => client.destroy());
    const first = client.request({ ':path': '/' });
    first.resume();
    await once(first, 'close');
    await sleep(20);
    const [candidate] = found((into) => idleHttp2Sessions(sessions, into));
    expect(stillIdle(candidate!, { acceptedAtMs: () => 0, sentNothing: () => false })).toBe(true);
    const second = client.request({ ':path': '/second' });
    second.resume();
    await once(second, 'close'); // no stream open again, but used since the walk
    expect(stillIdle(candidate!, { acceptedAtMs: () => 0, sentNothing: () => false })).toBe(false);
    const [again] = found((into) => idleHttp2Sessions(sessions, into));
    expect(stillIdle(again!, { acceptedAtMs: () => 0, sentNothing: () => false })).toBe(true);
    [...sessions][0]!.close();
    expect(stillIdle(again!, { acceptedAtMs: () => 0, sentNothing: () => false })).toBe(false);
  });
});
