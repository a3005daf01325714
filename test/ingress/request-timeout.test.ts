/**
 * A request whose upload is still coming when `--client-request-timeout` runs out is answered
 * 408 `request_timeout` by the router, and its access line says so: status 408 and that code, under
 * its own method and path, counted in requests_total as a 4xx. Over HTTP/1.1 (Node's request
 * timeout answers it, outside the request's handler) it was logged 499 `client_closed`, as if the
 * client had left; an HTTP/2 stream had no such bound at all. Raw clients, over TCP, TLS and h2.
 */
import { connect as http2Connect } from 'node:http2';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOST } from '../support/clients.js';
import { ADMIN_TOKEN } from '../support/hostile.js';
import { echo, TestOrigin } from '../support/origin.js';
import { rawRequest } from '../support/raw.js';
import { startTestRouter, type TestRouter } from '../support/router.js';
import { until } from '../support/until.js';

describe('a request past --client-request-timeout', () => {
  let origin: TestOrigin;
  let router: TestRouter;

  beforeAll(async () => {
    origin = await TestOrigin.start('fra');
    router = await startTestRouter({ fra: origin.url }, [
      '--plain-http',
      'serve',
      '--admin-token',
      ADMIN_TOKEN,
      '--client-header-timeout',
      '600',
      '--client-request-timeout',
      '1200',
      // Well past the request timeout: what cuts the stalled bodies here is the request timeout.
      '--body-idle-timeout',
      '8000',
    ]);
  });
  afterAll(async () => {
    await router.close();
    await origin.kill();
  });

  const linesOf = (path: string) => router.access.filter((a) => a.path === path);

  /** requests_total's 4xx requests, all regions and routes together. */
  async function clientErrorsCounted(): Promise<number> {
    const metrics = await (await request(`http://127.0.0.1:${router.adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body.text();
    let sum = 0;
    for (const match of metrics.matchAll(/^edge_router_requests_total\{[^}]*status_class="4xx"[^}]*\} (\d+)$/gm)) sum += Number(match[1]);
    return sum;
  }

  for (const transport of ['tcp', 'tls'] as const) {
    it(`logs an HTTP/1.1 upload that stalled (over ${transport}) with the 408 its client got`, async () => {
      const path = `/upload/${transport}`;
      const before = await clientErrorsCounted();
      const refusalsBefore = router.access.filter((a) => a.requestId === '-').length;
      const port = transport === 'tls' ? router.httpsPort : router.httpPort;
      const res = await rawRequest(port, [`POST ${path} HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 100\r\n\r\n0123456789`], { tls: transport === 'tls', timeoutMs: 5_000 });
      expect(res.status, res.text).toBe(408);
      expect(JSON.parse(res.text.slice(res.text.indexOf('\r\n\r\n') + 4)).error.code).toBe('request_timeout');
      await until('the upload logged', () => linesOf(path).length > 0);
      expect(linesOf(path)).toEqual([expect.objectContaining({ status: 408, error: 'request_timeout', method: 'POST', host: HOST, fn: expect.any(String) })]);
      // Its own line only: not a second one as a request the parser refused.
      expect(router.access.filter((a) => a.requestId === '-').length).toBe(refusalsBefore);
      await until('counted as a client error', async () => (await clientErrorsCounted()) === before + 1);
    });
  }

  it('cancels the region request of a streamed upload that stalled, and logs it 408', async () => {
    origin.recordBodies = false;
    const seen = origin.requests.length;
    origin.handler = (req) => req.resume(); // reads the upload, never answers
    try {
      const path = '/upload/streamed';
      // More than --body-buffer (64 KiB): sent on to the region while it arrives.
      const res = await rawRequest(router.httpPort, [`POST ${path} HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 1000000\r\n\r\n${'u'.repeat(100_000)}`], { timeoutMs: 5_000 });
      expect(res.status, res.text).toBe(408);
      await until('the upload logged', () => linesOf(path).length > 0);
      expect(linesOf(path)).toEqual([expect.objectContaining({ status: 408, error: 'request_timeout', tried: ['fra'] })]);
      const forwarded = origin.requests.slice(seen).find((r) => r.url === path)!;
      expect(forwarded).toBeDefined();
      await until('the region request cancelled', () => forwarded.done && forwarded.aborted);
    } finally {
      origin.recordBodies = true;
      origin.handler = echo;
    }
  });

  it('answers and logs an HTTP/2 stream whose body stalls the same way', async () => {
    const path = '/upload/h2';
    const before = await clientErrorsCounted();
    const session = http2Connect(`https://127.0.0.1:${router.httpsPort}`, { rejectUnauthorized: false, servername: HOST } as never);
    session.on('error', () => undefined);
    try {
      const started = Date.now();
      const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const stream = session.request({ ':method': 'POST', ':path': path, ':authority': HOST, 'content-length': '100' }, { endStream: false });
        let status = 0;
        let body = '';
        stream.on('response', (headers) => (status = Number(headers[':status'])));
        stream.setEncoding('utf8');
        stream.on('data', (chunk: string) => (body += chunk));
        stream.on('error', () => undefined); // reset after its answer: the rest of the body is not wanted
        stream.on('close', () => (status === 0 ? reject(new Error('no answer')) : resolve({ status, body })));
        stream.write('0123456789');
      });
      expect(answer.status).toBe(408);
      expect(JSON.parse(answer.body).error.code).toBe('request_timeout');
      // The request timeout cut it, not the body idle timeout (8 s).
      expect(Date.now() - started).toBeLessThan(5_000);
      await until('the stream logged', () => linesOf(path).length > 0);
      expect(linesOf(path)).toEqual([expect.objectContaining({ status: 408, error: 'request_timeout', protocol: 'HTTP/2.0' })]);
      await until('counted as a client error', async () => (await clientErrorsCounted()) === before + 1);
    } finally {
      session.close();
    }
  });
});
