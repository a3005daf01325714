/**
 * Requests Node's HTTP/1 parser refuses (bad bytes, a head too large, a head that does not arrive
 * in time), and HTTP/1 request lines of another version, which it takes and the router refuses,
 * get one access line each and count in requests_total, like every other request
 * answered before it had a route; a connection that sent nothing, or a client resetting mid-head,
 * gets none. Real sockets, raw bytes.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOST } from '../support/clients.js';
import { ADMIN_TOKEN } from '../support/hostile.js';
import { TestOrigin } from '../support/origin.js';
import { rawRequest } from '../support/raw.js';
import { startTestRouter, type TestRouter } from '../support/router.js';
import { until } from '../support/until.js';

const GARBAGE = '\x01\x02 not HTTP at all\r\n\r\n';

async function metricsOf(router: TestRouter): Promise<string> {
  return (await request(`http://127.0.0.1:${router.adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body.text();
}

/** `edge_router_requests_total` for requests answered 4xx before they had a route (0 when absent). */
function unrouted4xx(metrics: string): number {
  return Number(/^edge_router_requests_total\{region="none",status_class="4xx",route="rejected"\} (\d+)$/m.exec(metrics)?.[1] ?? 0);
}

const linesFrom = (router: TestRouter, clientIp: string) => router.access.filter((a) => a.clientIp === clientIp);

/** A plain TCP connection from `localAddress` to `port`, once connected. */
async function tcp(port: number, localAddress: string): Promise<Socket> {
  const socket = netConnect({ port, host: '127.0.0.1', localAddress });
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('connect', resolve));
  return socket;
}

describe('requests the HTTP/1 parser refuses', () => {
  let origin: TestOrigin;
  let router: TestRouter;

  beforeAll(async () => {
    origin = await TestOrigin.start('fra');
    router = await startTestRouter({ fra: origin.url, nyc: origin.url }, ['--admin-token', ADMIN_TOKEN, '--plain-http', 'serve', '--max-header-size', '4KiB', '--client-header-timeout', '600']);
  });
  afterAll(async () => {
    await router.close();
    await origin.kill();
  });

  it('logs bytes that are no HTTP as 400 bad_request from the peer, and counts them', async () => {
    const before = unrouted4xx(await metricsOf(router));
    const { status } = await rawRequest(router.httpPort, [GARBAGE], { localAddress: '127.8.9.1' });
    expect(status).toBe(400);
    await until('the access line', () => linesFrom(router, '127.8.9.1').length > 0);
    expect(linesFrom(router, '127.8.9.1')).toEqual([
      expect.objectContaining({ requestId: '-', method: '', host: '', path: '', protocol: 'HTTP/1.1', fn: null, region: null, reason: null, status: 400, error: 'bad_request', bytesIn: 0, bytesOut: 0 }),
    ]);
    expect(unrouted4xx(await metricsOf(router))).toBe(before + 1);
    expect(origin.requests).toEqual([]);
  });

  it('logs a head too large, over TLS, as 431 headers_too_large', async () => {
    const head = `GET /big HTTP/1.1\r\nHost: ${HOST}\r\nX-Big: ${'a'.repeat(6_000)}\r\n\r\n`;
    const { status } = await rawRequest(router.httpsPort, [head], { tls: true, localAddress: '127.8.9.2' });
    expect(status).toBe(431);
    await until('the access line', () => linesFrom(router, '127.8.9.2').length > 0);
    expect(linesFrom(router, '127.8.9.2')).toEqual([expect.objectContaining({ status: 431, error: 'headers_too_large', method: '', path: '' })]);
  });

  it('logs a head that does not arrive in time as 408 request_timeout', async () => {
    const { status } = await rawRequest(router.httpPort, [`GET /slow HTTP/1.1\r\nHost: ${HOST}\r\n`], { localAddress: '127.8.9.3', untilClose: true, timeoutMs: 8_000 });
    expect(status).toBe(408);
    await until('the access line', () => linesFrom(router, '127.8.9.3').length > 0);
    expect(linesFrom(router, '127.8.9.3')).toEqual([expect.objectContaining({ status: 408, error: 'request_timeout' })]);
  });

  it('logs an HTTP/1 request line of another version as 400 bad_request, as the parser-refused ones, and counts it', async () => {
    // HTTP/2.0 and HTTP/0.9 lines Node's parser takes and the router refuses; HTTP/1.2 the parser refuses itself.
    const upgrade = ['Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='];
    const cases: Array<{ client: string; line: string; tls: boolean; extra?: string[] }> = [
      { client: '127.8.9.21', line: 'GET / HTTP/2.0', tls: false },
      { client: '127.8.9.22', line: 'GET / HTTP/0.9', tls: false },
      { client: '127.8.9.23', line: 'GET / HTTP/1.2', tls: false },
      { client: '127.8.9.24', line: 'GET / HTTP/2.0', tls: true },
      { client: '127.8.9.25', line: 'GET /ws HTTP/2.0', tls: false, extra: upgrade },
      { client: '127.8.9.26', line: 'GET /ws HTTP/2.0', tls: true, extra: upgrade },
    ];
    const before = unrouted4xx(await metricsOf(router));
    for (const { client, line, tls, extra = [] } of cases) {
      const head = [line, `Host: ${HOST}`, ...extra].join('\r\n') + '\r\n\r\n';
      const { status } = await rawRequest(tls ? router.httpsPort : router.httpPort, [head], { tls, localAddress: client, untilClose: true });
      expect(status, line).toBe(400);
      await until(`the access line of ${line}`, () => linesFrom(router, client).length > 0);
      expect(linesFrom(router, client), `${line}${tls ? ' over TLS' : ''}${extra.length > 0 ? ', an upgrade' : ''}`).toEqual([
        expect.objectContaining({ requestId: '-', method: '', host: '', path: '', protocol: 'HTTP/1.1', fn: null, region: null, reason: null, status: 400, error: 'bad_request', bytesIn: 0, bytesOut: 0, totalMs: 0 }),
      ]);
    }
    expect(unrouted4xx(await metricsOf(router))).toBe(before + cases.length);
    expect(origin.requests).toEqual([]);
  });

  it('answers a CONNECT 405 method_not_allowed and closes, logged and counted like the refusals above, plain or TLS', async () => {
    // Nothing listened for the server's 'connect' event: Node destroyed the connection, no answer, no line.
    const before = unrouted4xx(await metricsOf(router));
    for (const [client, tls] of [['127.8.9.31', false], ['127.8.9.32', true]] as const) {
      const { status, text, closedByServer } = await rawRequest(tls ? router.httpsPort : router.httpPort, [`CONNECT ${HOST}:443 HTTP/1.1\r\nHost: ${HOST}:443\r\n\r\nbytes for the tunnel`], { tls, localAddress: client, untilClose: true });
      expect(status, text).toBe(405);
      expect(closedByServer).toBe(true);
      expect(text).toMatch(/\r\nconnection: close\r\n/i);
      expect(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)).error).toEqual({ code: 'method_not_allowed', message: 'CONNECT is not served: this router tunnels no TCP', requestId: '-' });
      await until('the access line', () => linesFrom(router, client).length > 0);
      expect(linesFrom(router, client)).toEqual([expect.objectContaining({ requestId: '-', protocol: 'HTTP/1.1', fn: null, region: null, status: 405, error: 'method_not_allowed' })]);
    }
    expect(unrouted4xx(await metricsOf(router))).toBe(before + 2);
    expect(origin.requests).toEqual([]);
  });

  it('logs nothing for a connection that sent nothing before its head timeout, plain or TLS', async () => {
    for (const tls of [false, true]) {
      const client = tls ? '127.8.9.4' : '127.8.9.5';
      // Answered 408 by Node all the same; nobody asked anything.
      const { closedByServer } = await rawRequest(tls ? router.httpsPort : router.httpPort, [], { tls, localAddress: client, untilClose: true, timeoutMs: 8_000 });
      expect(closedByServer).toBe(true);
      // A refusal from the same address afterwards: its line is the only one.
      await rawRequest(router.httpPort, [GARBAGE], { localAddress: client });
      await until('the later access line', () => linesFrom(router, client).length > 0);
      expect(linesFrom(router, client).map((a) => a.status)).toEqual([400]);
    }
  });

  it('logs nothing for a client that resets its connection mid-head', async () => {
    const socket = await tcp(router.httpPort, '127.8.9.6');
    socket.write(`GET /reset HTTP/1.1\r\nHost: ${HOST}\r\n`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    socket.resetAndDestroy();
    await new Promise((resolve) => setTimeout(resolve, 100));
    await rawRequest(router.httpPort, [GARBAGE], { localAddress: '127.8.9.6' });
    await until('the later access line', () => linesFrom(router, '127.8.9.6').length > 0);
    expect(linesFrom(router, '127.8.9.6').map((a) => a.status)).toEqual([400]);
  });
});

describe('requests the HTTP/1 parser refuses, behind a PROXY protocol balancer', () => {
  let router: TestRouter;

  beforeAll(async () => {
    router = await startTestRouter({}, ['--admin-token', ADMIN_TOKEN, '--proxy-protocol', '--proxy-protocol-from', '127.0.0.1/32', '--plain-http', 'serve', '--client-header-timeout', '600'], {}, []);
  });
  afterAll(() => router.close());

  const header = (source: string) => `PROXY TCP4 ${source} 192.0.2.10 51234 80\r\n`;

  it("logs the announced client, and nothing for one that sent nothing after the balancer's header", async () => {
    // The header alone, then silence: the header is no request.
    const silent = await rawRequest(router.httpPort, [header('203.0.113.8')], { untilClose: true, timeoutMs: 8_000 });
    expect(silent.closedByServer).toBe(true);
    expect((await rawRequest(router.httpPort, [header('203.0.113.7') + GARBAGE])).status).toBe(400);
    expect((await rawRequest(router.httpPort, [header('203.0.113.8') + GARBAGE])).status).toBe(400);
    await until('the access lines', () => linesFrom(router, '203.0.113.8').length > 0 && linesFrom(router, '203.0.113.7').length > 0);
    expect(linesFrom(router, '203.0.113.7')).toEqual([expect.objectContaining({ status: 400, error: 'bad_request' })]);
    expect(linesFrom(router, '203.0.113.8').map((a) => a.status)).toEqual([400]);
  });
});

describe('a connection the HTTP/1 parser refused, whose client keeps its side open and says nothing more', () => {
  const openConnections = async (router: TestRouter) => Number(/^edge_router_open_connections (\d+)$/m.exec(await metricsOf(router))?.[1]);

  /** Sends `bytes` from a client that reads the router's FIN and keeps its own side open; resolves with the answer once that FIN came. */
  async function refusedAndHeldOpen(port: number, bytes: string): Promise<{ socket: Socket; answer: string }> {
    const socket = netConnect({ port, host: '127.0.0.1', allowHalfOpen: true });
    socket.on('error', () => undefined);
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(bytes);
    await new Promise((resolve) => socket.once('end', resolve));
    return { socket, answer };
  }

  it.each([
    ['lingering (its idle timeout)', ['--lingering-timeout', '1000']],
    ['no lingering', ['--lingering-time', '0']],
  ])('lets go of it after a 408 or a 400, with %s, where it was held for ever', async (_how, flags) => {
    const origin = await TestOrigin.start('fra');
    const router = await startTestRouter({ fra: origin.url, nyc: origin.url }, ['--admin-token', ADMIN_TOKEN, '--client-header-timeout', '1000', ...flags]);
    const sockets: Socket[] = [];
    try {
      const late = await refusedAndHeldOpen(router.httpPort, `GET / HTTP/1.1\r\nHost: ${HOST}\r\n`);
      const garbage = await refusedAndHeldOpen(router.httpPort, GARBAGE);
      sockets.push(late.socket, garbage.socket);
      expect(late.answer).toMatch(/^HTTP\/1\.1 408 /);
      expect(garbage.answer).toMatch(/^HTTP\/1\.1 400 /);
      expect(late.socket.destroyed || garbage.socket.destroyed).toBe(false); // the clients never close
      await until('the router let go of both', async () => (await openConnections(router)) === 0, 8_000);
    } finally {
      for (const socket of sockets) socket.destroy();
      await router.close();
      await origin.kill();
    }
  }, 30_000);
});
