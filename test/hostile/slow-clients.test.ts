/**
 * Slow clients, over HTTP/1.1 and HTTP/2 alike (issue #9): slowloris heads, crawling request
 * bodies and responses nobody reads are cut within their limits, hold no upstream connection
 * while they crawl, and never delay anyone else.
 */
import { connect as http2Connect, constants, type ClientHttp2Session } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { get, HOST } from '../support/clients.js';
import { Cleanup, connectionsRefusedAt, getLine, hostileSetup, largeBody, LONDON, openRawH2, openSilentTls } from '../support/hostile.js';
import { openHttps1 } from '../support/https1.js';
import { rawRequest } from '../support/raw.js';
import { until } from '../support/until.js';

const cleanup = new Cleanup();
afterEach(cleanup.run);
const setup = (flags: string[]) => hostileSetup(cleanup, flags);

function h2Session(port: number, settings: { initialWindowSize?: number } = {}): Promise<ClientHttp2Session> {
  const session = http2Connect(`https://${HOST}:${port}`, { rejectUnauthorized: false, host: '127.0.0.1', servername: HOST, localAddress: LONDON, settings } as never);
  cleanup.add(() => session.destroy());
  session.on('error', () => undefined);
  return new Promise((resolve, reject) => {
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

describe('hostile clients: slow clients on every protocol', () => {
  it('closes slowloris connections at the head timeout while serving everyone else', async () => {
    const { fra, router, agent } = await setup(['--client-header-timeout', '1000']);
    // Fifty connections from one address, each sending one header line every 300 ms, never finishing.
    const lines = Array.from({ length: 20 }, (_, i) => `x-slow-${i}: 1\r\n`);
    const loris = Array.from({ length: 50 }, () =>
      rawRequest(router.httpsPort, [`GET /loris HTTP/1.1\r\nHost: ${HOST}\r\n`, ...lines], { tls: true, pauseMs: 300, timeoutMs: 8_000, untilClose: true, localAddress: '127.8.3.1' }),
    );
    expect((await get(agent, router.httpsPort, '/meanwhile')).status).toBe(200);
    const results = await Promise.all(loris);
    expect(results.every((r) => r.closedByServer)).toBe(true);
    expect(results.every((r) => r.status === 408 || r.status === null)).toBe(true);
    // Closed at the head timeout, long before the client would have finished (20 × 300 ms).
    expect(Math.max(...results.map((r) => r.elapsedMs))).toBeLessThan(20 * 300);
    expect(fra.requests.map((r) => r.url)).toEqual(['/meanwhile']);
  });

  it('answers 408 to a crawling HTTP/2 request body and sends none of it to a region', async () => {
    const { fra, router } = await setup(['--body-idle-timeout', '800', '--body-min-rate', '1KiB']);
    const session = await h2Session(router.httpsPort);
    const stream = session.request({ ':method': 'POST', ':path': '/h2-upload', ':authority': HOST, 'content-length': '100000' });
    stream.on('error', () => undefined);
    let status = 0;
    let body = '';
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('data', (c: Buffer) => (body += c.toString()));
    const writer = setInterval(() => {
      if (!stream.destroyed && !stream.writableEnded) stream.write('0123456789');
    }, 100);
    cleanup.add(() => clearInterval(writer));
    await until('the router answered', () => status !== 0, 8_000);
    clearInterval(writer);
    expect(status).toBe(408);
    await until('body read', () => body.includes('request_timeout') || stream.destroyed, 3_000);
    expect(fra.requests).toEqual([]);
    expect(router.access.find((a) => a.path === '/h2-upload')).toMatchObject({ status: 408, error: 'body_too_slow', protocol: 'HTTP/2.0' });
  });

  it("answers 408 at the function's time limit to a body still arriving at a pace the router accepts, asking no region", async () => {
    const { fra, router } = await setup(['--timeout-standard', '1000', '--body-min-rate', '100']);
    const { socket } = await openHttps1(router.httpsPort);
    cleanup.add(() => socket.destroy());
    let answer = '';
    socket.on('data', (c: Buffer) => (answer += c.toString('latin1')));
    socket.write(`POST /trickled HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 2000\r\n\r\n`);
    const started = Date.now();
    // 200 bytes every 200 ms: 1 KB/s, ten times the minimum rate, whole after 2 s, twice the limit.
    const writer = setInterval(() => {
      if (!socket.destroyed) socket.write('x'.repeat(200));
    }, 200);
    cleanup.add(() => clearInterval(writer));
    await until('the router answered', () => answer.includes('\r\n\r\n'), 8_000);
    clearInterval(writer);
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(Date.now() - started).toBeLessThan(1_900);
    expect(fra.requests).toEqual([]);
    await until('logged', () => router.access.some((a) => a.path === '/trickled'));
    expect(router.access.find((a) => a.path === '/trickled')).toMatchObject({ status: 408, error: 'request_timeout', tried: [] });
  });

  it('cuts an HTTP/2 stream whose client stops reading, freeing its upstream connection', async () => {
    const { fra, router } = await setup(['--send-timeout', '1000']);
    fra.handler = largeBody();
    const session = await h2Session(router.httpsPort, { initialWindowSize: 65_535 });
    const stream = session.request({ ':method': 'GET', ':path': '/h2-never-read', ':authority': HOST });
    stream.on('error', () => undefined);
    stream.pause(); // flow control: the window fills and the router sees backpressure
    await until('/h2-never-read logged', () => router.access.some((a) => a.path === '/h2-never-read'), 10_000);
    expect(router.access.find((a) => a.path === '/h2-never-read')).toMatchObject({ status: 200, error: 'send_timeout' });
    await until('fra idle', () => fra.openRequests === 0 && router.router.outstanding('fra').active === 0);
  });

  it("cuts an HTTP/2 stream whose client never opens its window, also when the region's whole answer was already handed to it", async () => {
    // An answer smaller than the stream's write buffer never pushes back: the exchange ended, gave
    // everything back and logged a 200, and the stream then waited for a window that never came,
    // holding the answer, without any bound (the idle timeout only asks such a session to go).
    const { fra, router } = await setup(['--send-timeout', '1000']);
    fra.handler = (_req, res) => res.end('x'.repeat(8_000));
    const session = await h2Session(router.httpsPort, { initialWindowSize: 0 });
    /** Asks for `path` and waits until the router closes the stream; its RST_STREAM code. */
    const cutCode = async (path: string, what: string): Promise<number> => {
      const stream = session.request({ ':method': 'GET', ':path': path, ':authority': HOST });
      stream.on('error', () => undefined);
      let closed = false;
      stream.on('close', () => (closed = true));
      await until(what, () => closed, 10_000);
      return stream.rstCode;
    };
    expect(await cutCode('/h2-window-shut', 'the router cut the stream')).toBe(constants.NGHTTP2_CANCEL);
    expect(router.access.find((a) => a.path === '/h2-window-shut')).toMatchObject({ status: 200 });
    // So is an error answer the router gave without asking any region.
    expect(await cutCode('/_edge/window-shut', 'the router cut the refused stream')).toBe(constants.NGHTTP2_CANCEL);
  });

  it('closes an HTTP/1.1 connection whose client reads none of the answers it asked for, after --send-timeout', async () => {
    // Pipelined requests the router answers itself (404), none of them read, on the plain port
    // (TLS ends at a load balancer). Once the kernel's buffers are full, Node stops reading the
    // connection and keeps what it answered from the last chunk it read in the socket's buffer. No
    // exchange watches an answer the router gave itself or one already ended, and Node runs no
    // timer while a response is unfinished: the connection and its buffer were held for as long as
    // the client liked. (Over TLS, Node's parser fails on the pipelined rest and closes it itself.)
    const { router, agent } = await setup(['--send-timeout', '1000', '--plain-http', 'serve']);
    const silent = netConnect({ port: router.httpPort, host: '127.0.0.1', localAddress: '127.8.5.1' });
    silent.pause(); // read nothing
    silent.on('error', () => undefined);
    cleanup.add(() => silent.destroy());
    await new Promise((resolve) => silent.once('connect', resolve));
    let closed = false;
    silent.on('close', () => (closed = true));
    const started = Date.now();
    // 20,000 refused requests (404, about 450 bytes each): megabytes of answers, more than loopback's buffers take.
    silent.write(Array.from({ length: 20_000 }, (_, i) => getLine(`/_edge/unread/${i}`)).join(''));
    await until('the router counted the connection closed', async () => (await connectionsRefusedAt(router.adminPort, 'send_stalled')) === 1, 15_000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    const answered = router.access.filter((a) => a.clientIp === '127.8.5.1').length;
    expect(answered).toBeGreaterThan(0);
    expect(answered).toBeLessThan(20_000); // it stopped answering when no one read
    // The client sees it go once it reads.
    silent.resume();
    await until('the client saw the connection close', () => closed, 10_000);
    expect((await get(agent, router.httpsPort, '/meanwhile')).status).toBe(200);
  });

  /** A TCP connection to `port` that sends nothing; resolves with it once connected, and records when the router closes it. */
  async function silentConnection(port: number): Promise<{ socket: Socket; closedAfterMs: () => Promise<number>; closedAt: () => Promise<number> }> {
    const socket = netConnect({ port, host: '127.0.0.1', localAddress: '127.8.4.1' });
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('connect', resolve));
    cleanup.add(() => socket.destroy());
    const opened = Date.now();
    const closedAt = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
    return { socket, closedAfterMs: async () => (await closedAt) - opened, closedAt: () => closedAt };
  }

  it('cuts a connection that never finishes its TLS handshake at the handshake timeout', async () => {
    const { router, agent } = await setup(['--tls-handshake-timeout', '500']);
    const silent = await silentConnection(router.httpsPort);
    // And one that sends half a ClientHello, then nothing.
    const half = await silentConnection(router.httpsPort);
    half.socket.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]));
    expect((await get(agent, router.httpsPort, '/meanwhile')).status).toBe(200);
    for (const connection of [silent, half]) {
      const after = await connection.closedAfterMs();
      expect(after).toBeGreaterThanOrEqual(400);
      expect(after).toBeLessThan(5_000); // not Node's own default of 120 s
    }
  });

  it('lets new clients in while idle connections from many addresses fill --max-connections', async () => {
    // A cap of 256 keeps 4 places in reserve, enough for the newcomers that come between two looks.
    const { router, fra } = await setup(['--max-connections', '256']);
    // Sixteen addresses, sixteen connections each, in a burst: HTTP/2 connections that open no
    // stream and TLS connections that never send a request, the listener's whole cap.
    const held: Array<{ destroyed: boolean }> = [];
    for (let address = 1; address <= 16; address++) {
      for (let i = 0; i < 16; i++) {
        const localAddress = `127.66.0.${address}`;
        // Each reads, so that it sees the router close it.
        const socket = i % 2 === 0 ? (await openRawH2(router.httpsPort, { reading: true, localAddress })).socket : (await openSilentTls(router.httpsPort, localAddress)).resume();
        cleanup.add(() => socket.destroy());
        held.push(socket);
      }
    }
    // A second after the burst the listener has made room by itself: no new client is dropped.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    // Twenty new clients, each from an address of its own (London), each keeping its connection.
    for (let i = 0; i < 20; i++) {
      const client = await openHttps1(router.httpsPort, `127.8.1.${i + 1}`);
      cleanup.add(() => client.socket.destroy());
      expect(await client.get(`/newcomer/${i}`)).toMatch(/^HTTP\/1\.1 200/);
    }
    expect(fra.requests).toHaveLength(20);
    expect(await connectionsRefusedAt(router.adminPort, 'at_capacity')).toBe(0);
    const reclaimed = await connectionsRefusedAt(router.adminPort, 'idle_reclaimed');
    expect(reclaimed).toBeGreaterThanOrEqual(20);
    await until('the reclaimed connections closed on the client side too', () => held.filter((s) => s.destroyed).length === reclaimed);
  });

  it('keeps letting new clients in while a flood reopens each idle connection the router closes', async () => {
    const { router, fra } = await setup(['--max-connections', '256']);
    // 384 holders from 4 addresses, more than the cap: each holds a TCP connection that sends
    // nothing and opens another 100 ms after the router closes it (or refuses it), so every place
    // a look makes is taken again within milliseconds, and a third of the holders are always knocking.
    let stop = false;
    const open = new Set<Socket>();
    const holder = async (localAddress: string) => {
      while (!stop) {
        const socket = netConnect({ port: router.httpsPort, host: '127.0.0.1', localAddress });
        open.add(socket);
        socket.on('error', () => undefined);
        socket.resume();
        await new Promise((resolve) => socket.once('close', resolve));
        open.delete(socket);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };
    cleanup.add(() => {
      stop = true;
      for (const socket of open) socket.destroy();
    });
    const holders = Array.from({ length: 384 }, (_, i) => holder(`127.67.0.${(i % 4) + 1}`));
    await new Promise((resolve) => setTimeout(resolve, 1_500)); // the first ones quiet long enough to go
    for (let i = 0; i < 20; i++) {
      const client = await openHttps1(router.httpsPort, `127.8.1.${i + 1}`);
      cleanup.add(() => client.socket.destroy());
      expect(await client.get(`/newcomer/${i}`)).toMatch(/^HTTP\/1\.1 200/);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(fra.requests).toHaveLength(20);
    expect(await connectionsRefusedAt(router.adminPort, 'idle_reclaimed')).toBeGreaterThan(0);
    // The flood's knocks were refused near the cap as its addresses' (each holds far more than its
    // share), and did not push idle connections out for themselves.
    expect(await connectionsRefusedAt(router.adminPort, 'heavy_near_capacity')).toBeGreaterThan(100);
    stop = true;
    for (const socket of open) socket.destroy();
    await Promise.all(holders);
  });

  it('closes connections no request is on yet when the drain times out', async () => {
    const { router } = await setup(['--drain-timeout', '200']); // the handshake timeout stays at 10 s
    const silent = await silentConnection(router.httpsPort);
    const plain = await silentConnection(router.httpPort);
    const started = Date.now();
    await router.close();
    const closedBy = Date.now();
    expect(closedBy - started).toBeLessThan(5_000);
    // Each closed by the router's close (forceClose at the drain's end), not left to the 10 s
    // handshake timeout or the header timeout: the client sees the close within moments of it.
    for (const connection of [silent, plain]) expect(await connection.closedAt()).toBeLessThan(closedBy + 1_000);
  });
});
