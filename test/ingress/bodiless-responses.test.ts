/**
 * Answers that carry no body whatever their framing fields say: a 304 Not Modified may state the
 * Content-Length its 200 would have had (RFC 9110 §8.6), and a 204 from a careless function may too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request, type Agent } from 'undici';
import { agentFor, get, getH2, HOST } from '../support/clients.js';
import { rawRequest } from '../support/raw.js';
import { until } from '../support/until.js';
import { echo, TestOrigin } from '../support/origin.js';
import { startTestRouter, type TestRouter } from '../support/router.js';

const ADMIN_TOKEN = 'bodiless-test-token-0123456789';
const metricsOf = async (router: TestRouter) =>
  (await request(`http://127.0.0.1:${router.adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body.text();

describe('bodiless answers with a Content-Length', () => {
  let origin: TestOrigin;
  let router: TestRouter;
  let agent: Agent;

  beforeAll(async () => {
    origin = await TestOrigin.start('nyc');
    origin.handler = (req, res, seen) => {
      if (req.url === '/not-modified') {
        // What a conditional GET's 200 would have carried: Node's server sends it as given.
        res.writeHead(304, { etag: '"v1"', 'content-length': '42' });
        res.end();
      } else if (req.url === '/no-content') {
        res.writeHead(204, { 'content-length': '5' });
        res.end();
      } else if (req.url === '/reset-content') {
        res.writeHead(205, { 'content-length': '4' });
        res.end();
      } else if (req.url === '/reset-content-chunked') {
        // An empty chunked body whose end comes later: the answer is whole with its head all the same.
        res.writeHead(205, { 'transfer-encoding': 'chunked' });
        setTimeout(() => res.end(), 300);
      } else echo(req, res, seen);
    };
    router = await startTestRouter({ nyc: origin.url }, ['--admin-token', ADMIN_TOKEN]);
    agent = agentFor(router.httpsPort);
  });
  afterAll(async () => {
    await agent.close();
    await router.close();
    await origin.kill();
  });

  it('passes on a 304 that states its 200\'s Content-Length, whole, to HTTP/1.1 and HTTP/2 clients', async () => {
    // Before: undici reported the missing 42 bytes as a length mismatch after the head was written,
    // and the client's connection was cut with nothing received (logged 304 UND_ERR_RES_CONTENT_LENGTH_MISMATCH).
    // (A raw client: undici refuses such a 304 itself, as browsers and curl do not.)
    const res = await rawRequest(router.httpsPort, [`GET /not-modified HTTP/1.1\r\nHost: ${HOST}\r\nIf-None-Match: "v1"\r\n\r\n`], { tls: true, timeoutMs: 1_000 });
    expect(res.status).toBe(304);
    expect(res.text).toMatch(/\r\netag: "v1"\r\n/);
    expect(res.text.endsWith('\r\n\r\n')).toBe(true);
    expect(res.closedByServer).toBe(false);
    const h2 = await getH2(router.httpsPort, '/not-modified');
    expect(h2.headers[':status']).toBe(304);
    expect(h2.headers.etag).toBe('"v1"');
    const lines = router.access.filter((a) => a.path === '/not-modified');
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(line).toMatchObject({ status: 304, error: null });
    await until('the region slot is back', async () => /^edge_router_region_outstanding\{region="nyc",state="active"\} 0$/m.test(await metricsOf(router)), 2_000);
  });

  it('passes on a 204 that carries a Content-Length it must not', async () => {
    const res = await rawRequest(router.httpsPort, [`GET /no-content HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`], { tls: true, timeoutMs: 1_000 });
    expect(res.status).toBe(204);
    expect(res.closedByServer).toBe(false);
    expect(router.access.findLast((a) => a.path === '/no-content')).toMatchObject({ status: 204, error: null });
    expect((await get(agent, router.httpsPort, '/after')).status).toBe(200);
  });

  it('leaves out the Content-Length of a 204, which an HTTP/2 client refuses the stream for', async () => {
    // RFC 9110 §8.6: a server must not send Content-Length in a 204. nghttp2 (curl, Node's client)
    // resets a 204 stream stating any length but 0 (PROTOCOL_ERROR): the client got nothing, while
    // the router logged a 204 delivered.
    const h2 = await getH2(router.httpsPort, '/no-content');
    expect(h2.headers[':status']).toBe(204);
    expect(h2.headers['content-length']).toBeUndefined();
    const res = await rawRequest(router.httpsPort, [`GET /no-content HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`], { tls: true, timeoutMs: 1_000 });
    expect(res.status).toBe(204);
    expect(res.text).not.toMatch(/\r\ncontent-length:/i);
  });

  it('answers a 205 (Reset Content) to an HTTP/2 client as a 204: no Content-Length, and logged as delivered', async () => {
    // node:http2 ends a 205's stream with its head, as a 204's. Its Content-Length reached the
    // client, which reset the stream (curl exit 92) while the router logged 205; and a 205 whose
    // empty chunked body ended later was logged 499 client_closed, its request to the region cut.
    const stated = await getH2(router.httpsPort, '/reset-content');
    expect(stated.headers[':status']).toBe(205);
    expect(stated.headers['content-length']).toBeUndefined();
    const chunked = await getH2(router.httpsPort, '/reset-content-chunked');
    expect(chunked.headers[':status']).toBe(205);
    // Over HTTP/1.1 the empty chunked body is relayed as it comes; the connection stays.
    const h1 = await rawRequest(router.httpsPort, [`GET /reset-content-chunked HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`], { tls: true, timeoutMs: 1_000 });
    expect([h1.status, h1.closedByServer], JSON.stringify(h1.text)).toEqual([205, false]);
    await until('the three access lines', () => router.access.filter((a) => a.path.startsWith('/reset-content')).length === 3);
    for (const line of router.access.filter((a) => a.path.startsWith('/reset-content'))) expect(line).toMatchObject({ status: 205, error: null });
  });
});
