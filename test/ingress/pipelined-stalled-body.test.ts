/**
 * A POST whose body stalls while it waits, pipelined, behind a GET whose answer is still coming:
 * whichever bound cuts it (the exchange's --body-idle-timeout, or Node's --client-request-timeout,
 * which reaches answerClientError's branch for requests behind answers in progress), each request
 * gets exactly one access line, with what its client was sent. Raw TCP and TLS clients.
 */
import { once } from 'node:events';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOST } from '../support/clients.js';
import { ADMIN_TOKEN, getLine } from '../support/hostile.js';
import { echo, TestOrigin } from '../support/origin.js';
import { startTestRouter, type TestRouter } from '../support/router.js';
import { until } from '../support/until.js';

/** Writes `requests` at once and reads everything until the router closes the connection. */
async function pipeline(port: number, tls: boolean, requests: string): Promise<{ received: string; elapsedMs: number }> {
  const started = Date.now();
  const socket = tls ? tlsConnect({ port, host: '127.0.0.1', servername: HOST, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }) : netConnect({ port, host: '127.0.0.1' });
  socket.on('error', () => undefined);
  await once(socket, tls ? 'secureConnect' : 'connect');
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  const closed = once(socket, 'close');
  socket.write(requests);
  const timer = setTimeout(() => socket.destroy(), 10_000);
  await closed;
  clearTimeout(timer);
  return { received: text, elapsedMs: Date.now() - started };
}

/** The statuses of the HTTP/1.1 answers in `text`, in order. */
const statusesIn = (text: string) => [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));

describe.each([
  // Node's request timeout runs out while the GET is still awaited; the body-idle timeout, counted
  // from the POST's turn, would run out soon after it. Was: the 408 of the body-idle timeout, and a
  // second line, status 0 request_timeout, for the refusal that had waited for it.
  { cutBy: 'the request timeout, the body-idle timeout short', flags: ['--body-idle-timeout', '600', '--client-request-timeout', '1500'], slowMs: 2_500, error: 'request_timeout' },
  // The same with a body-idle timeout longer than the client waits. Was: no answer for the POST at
  // all (its refusal waited for its own answer, which waited for a body no longer read).
  { cutBy: 'the request timeout, the body-idle timeout long', flags: ['--body-idle-timeout', '8000', '--client-request-timeout', '1000'], slowMs: 2_500, error: 'request_timeout' },
  // The POST's turn comes before Node's request timeout: the exchange's body-idle timeout cuts it.
  { cutBy: 'the body-idle timeout', flags: ['--body-idle-timeout', '500', '--client-request-timeout', '5000'], slowMs: 1_000, error: 'body_idle_timeout' },
])('a stalled POST pipelined behind a slow GET, cut by $cutBy', ({ flags, slowMs, error }) => {
  let origin: TestOrigin;
  let router: TestRouter;

  beforeAll(async () => {
    origin = await TestOrigin.start('fra');
    origin.handler = (req, res, seen) => {
      if (!req.url!.startsWith('/slow/')) return echo(req, res, seen);
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '4' });
        res.end('slow');
      }, slowMs);
    };
    router = await startTestRouter({ fra: origin.url }, ['--plain-http', 'serve', '--admin-token', ADMIN_TOKEN, '--client-header-timeout', '600', ...flags]);
  });
  afterAll(async () => {
    await router.close();
    await origin.kill();
  });

  for (const tls of [false, true]) {
    it(`answers the GET, then the POST's 408, and logs one line each (${tls ? 'TLS' : 'TCP'})`, async () => {
      const tag = `${tls ? 'tls' : 'tcp'}`;
      const get = `/slow/${tag}`;
      const post = `/stalled/${tag}`;
      const refusalsBefore = router.access.filter((a) => a.requestId === '-').length;
      const { received, elapsedMs } = await pipeline(tls ? router.httpsPort : router.httpPort, tls, getLine(get) + `POST ${post} HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 100\r\n\r\n0123456789`);
      // The GET's answer whole, then one answer for the POST: the 408 its body earned.
      expect(statusesIn(received), received).toEqual([200, 408]);
      expect(received).toContain('\r\n\r\nslow');
      expect(JSON.parse(received.slice(received.lastIndexOf('\r\n\r\n') + 4)).error.code).toBe('request_timeout');
      // At the POST's turn (or its body-idle timeout after it), not when the client gave up.
      expect(elapsedMs).toBeLessThan(slowMs + 2_500);
      await until('both requests logged', () => router.access.some((a) => a.path === get) && router.access.some((a) => a.path === post));
      // Let any late second line come.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(router.access.filter((a) => a.path === get)).toEqual([expect.objectContaining({ status: 200, error: null })]);
      expect(router.access.filter((a) => a.path === post)).toEqual([expect.objectContaining({ status: 408, error, method: 'POST' })]);
      // No line of its own as a request the parser refused.
      expect(router.access.filter((a) => a.requestId === '-').length).toBe(refusalsBefore);
    });
  }
});
