/**
 * HTTP/2 in front, HTTP/1.1 behind. A region's head that HTTP/2 cannot carry as it is (a field
 * HTTP/2 allows once, sent twice; a status outside 1xx–5xx): over HTTP/1.1 the client gets what
 * the region sent; over HTTP/2 a field's first value, or a 502 that says why — never a reset
 * stream. And the cookies an HTTP/2 client sends field by field reach the region as one line.
 */
import { once } from 'node:events';
import { connect as http2Connect } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentFor, get, getH2, HOST } from '../support/clients.js';
import { TestOrigin } from '../support/origin.js';
import { startTestRouter, type TestRouter } from '../support/router.js';

describe('a region head HTTP/2 cannot carry as sent', () => {
  let origin: TestOrigin;
  let router: TestRouter;
  beforeAll(async () => {
    origin = await TestOrigin.start('fra');
    origin.handler = (req, res) => {
      if (req.url === '/cookies') {
        res.end(JSON.stringify(req.headers.cookie));
        return;
      }
      if (req.url === '/object-names') {
        res.writeHead(200, ['content-type', 'text/plain', 'constructor', 'a', '__proto__', 'b', 'toString', 'c']);
        res.end('named');
        return;
      }
      if (req.url === '/status-600') {
        res.writeHead(600, { 'content-type': 'text/plain' });
        res.end('odd');
        return;
      }
      res.setHeader('content-type', ['text/plain', 'text/html']);
      res.setHeader('date', ['Mon, 30 Nov 2026 10:00:00 GMT', 'Tue, 01 Dec 2026 10:00:00 GMT']);
      res.setHeader('vary', ['accept', 'origin']);
      res.end('twice');
    };
    router = await startTestRouter({ fra: origin.url, nyc: origin.url });
  });
  afterAll(async () => {
    await router.close();
    await origin.kill();
  });

  it('keeps the first value of a field HTTP/2 allows once, and every value of the others', async () => {
    const h2 = await getH2(router.httpsPort, '/twice');
    expect(h2.alpn).toBe('h2');
    expect([h2.headers[':status'], h2.headers['content-type'], h2.headers.date, h2.body]).toEqual([200, 'text/plain', 'Mon, 30 Nov 2026 10:00:00 GMT', 'twice']);
    expect(h2.headers.vary).toBe('accept, origin');
    const h1 = await get(agentFor(router.httpsPort), router.httpsPort, '/twice');
    expect([h1.status, h1.body]).toEqual([200, 'twice']);
  });

  it("passes fields named like an object's own members as they are over HTTP/2", async () => {
    // `constructor` read Object's own ("function Object() { [native code] }, a"), `__proto__` was lost.
    const h2 = await getH2(router.httpsPort, '/object-names');
    expect([h2.headers[':status'], h2.headers.constructor, h2.headers.tostring, h2.body]).toEqual([200, 'a', 'c', 'named']);
    expect(Object.getOwnPropertyDescriptor(h2.headers, '__proto__')?.value).toBe('b');
  });

  it('answers a status over 599 with 502 over HTTP/2, saying why, and passes it on over HTTP/1.1', async () => {
    const h2 = await getH2(router.httpsPort, '/status-600');
    expect(h2.headers[':status']).toBe(502);
    expect(JSON.parse(h2.body).error).toMatchObject({ code: 'upstream_unavailable', message: 'the function answered with status 600, which HTTP/2 cannot carry' });
    const h1 = await get(agentFor(router.httpsPort), router.httpsPort, '/status-600');
    expect([h1.status, h1.body]).toEqual([600, 'odd']);
    expect(router.access.filter((a) => a.path === '/status-600').map((a) => a.status).sort()).toEqual([502, 600]);
  });

  it('joins the cookie fields of an HTTP/2 request into one Cookie line for the region', async () => {
    const session = http2Connect(`https://${HOST}:${router.httpsPort}`, { rejectUnauthorized: false, host: '127.0.0.1', servername: HOST } as never);
    try {
      const stream = session.request({ ':path': '/cookies', ':authority': HOST, cookie: ['a=1', 'b=2'] });
      stream.setEncoding('utf8');
      let body = '';
      stream.on('data', (c: string) => (body += c));
      await once(stream, 'end');
      expect(JSON.parse(body)).toBe('a=1; b=2');
      expect(origin.requests.at(-1)!.rawHeaders.filter((h) => h.toLowerCase() === 'cookie')).toHaveLength(1);
    } finally {
      session.close();
    }
  });
});
