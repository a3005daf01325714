/**
 * How long an idle client connection is kept (--keep-alive-timeout for HTTP/1.1, --http2-idle-timeout
 * for HTTP/2): what the operator sets, past Node's 5 s default too, and said to HTTP/1.1 clients in
 * the Keep-Alive header so that they stop reusing a connection before the router closes it.
 */
import { connect as http2Connect } from 'node:http2';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { HOST } from '../support/clients.js';
import { ADMIN_TOKEN, Cleanup, hostileSetup, openRawH2 } from '../support/hostile.js';
import { until } from '../support/until.js';
import { HTTP2_CLOSE_GRACE_MS } from '../../src/ingress/public-servers.js';
import { openHttps1 } from '../support/https1.js';

const cleanup = new Cleanup();
afterEach(cleanup.run);

/** An HTTPS/1.1 connection that has sent one GET and read its whole answer. */
async function answeredConnection(port: number, path: string) {
  const connection = await openHttps1(port);
  cleanup.add(() => connection.socket.destroy());
  const head = await connection.get(path);
  return { ...connection, head, answeredAt: performance.now() };
}

const metricsText = async (adminPort: number) => (await request(`http://127.0.0.1:${adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body.text();

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('idle client connections', () => {
  it('closes an HTTP/1.1 connection idle for --keep-alive-timeout, having said so in Keep-Alive', async () => {
    const { router } = await hostileSetup(cleanup, ['--keep-alive-timeout', '1500']);
    const { head, answeredAt, closed } = await answeredConnection(router.httpsPort, '/short');
    expect(head).toMatch(/^HTTP\/1\.1 200/);
    expect(head).toMatch(/\r\nkeep-alive: timeout=1\r\n/i);
    const idleMs = (await closed) - answeredAt;
    expect(idleMs).toBeGreaterThanOrEqual(1_300);
    expect(idleMs).toBeLessThan(4_800); // before Node's own 5 s default would have closed it
    // The admin listener keeps the same time when it is that short.
    const admin = await request(`http://127.0.0.1:${router.adminPort}/healthz`);
    await admin.body.dump();
    expect(admin.headers['keep-alive']).toBe('timeout=1');
  });

  it('keeps an HTTP/1.1 connection past Node\'s 5 s default when told to, and serves the next request on it', async () => {
    const { router, fra } = await hostileSetup(cleanup, ['--keep-alive-timeout', '9000']);
    const { socket, head, get } = await answeredConnection(router.httpsPort, '/first');
    expect(head).toMatch(/\r\nkeep-alive: timeout=9\r\n/i);
    await sleep(5_800);
    expect(socket.destroyed).toBe(false);
    expect(await get('/second')).toMatch(/^HTTP\/1\.1 200/);
    expect(fra.requests.map((r) => r.url)).toEqual(['/first', '/second']);
    // The admin listener keeps its own at most 5 s: 256 connections held idle for long would shut operators out.
    const admin = await request(`http://127.0.0.1:${router.adminPort}/healthz`);
    await admin.body.dump();
    expect(admin.headers['keep-alive']).toBe('timeout=5');
  }, 40_000);

  it('asks an HTTP/2 session idle for --http2-idle-timeout to go (GOAWAY), then it closes', async () => {
    const { router } = await hostileSetup(cleanup, ['--http2-idle-timeout', '1500']);
    const session = http2Connect(`https://${HOST}:${router.httpsPort}`, { rejectUnauthorized: false, host: '127.0.0.1', servername: HOST } as never);
    cleanup.add(() => session.destroy());
    session.on('error', () => undefined);
    const goaway = new Promise<number>((resolve) => session.once('goaway', () => resolve(performance.now())));
    const closed = new Promise<void>((resolve) => session.once('close', () => resolve()));
    const stream = session.request({ ':path': '/h2', ':authority': HOST });
    const status = await new Promise<number>((resolve) => stream.once('response', (h) => resolve(Number(h[':status']))));
    await new Promise<void>((resolve) => stream.on('end', () => resolve()).resume());
    const answeredAt = performance.now();
    expect(status).toBe(200);
    const idleMs = (await goaway) - answeredAt;
    expect(idleMs).toBeGreaterThanOrEqual(1_300);
    expect(idleMs).toBeLessThan(10_000); // not the default minute
    await closed;
  });

  it('cuts an HTTP/2 connection whose client keeps its side open after the GOAWAY, HTTP2_CLOSE_GRACE_MS after the router\'s FIN', async () => {
    const { router } = await hostileSetup(cleanup, ['--http2-idle-timeout', '1000']);
    const client = await openRawH2(router.httpsPort, { reading: true });
    cleanup.add(() => client.socket.destroy());
    client.socket.allowHalfOpen = true; // it reads the router's FIN and keeps its own side open
    const finAt = await new Promise<number>((resolve) => client.socket.once('end', () => resolve(performance.now())));
    expect(client.resets()).toEqual([{ streamId: 0, code: 0 }]); // GOAWAY, NO_ERROR
    const openConnections = async () => Number(/^edge_router_open_connections (\d+)$/m.exec(await metricsText(router.adminPort))?.[1]);
    expect(await openConnections()).toBe(1);
    await until('the router let go of it', async () => (await openConnections()) === 0, HTTP2_CLOSE_GRACE_MS + 3_000);
    expect(performance.now() - finAt).toBeGreaterThanOrEqual(HTTP2_CLOSE_GRACE_MS - 500);
    expect(client.socket.destroyed).toBe(false); // the client never closed
  }, 20_000);
});
