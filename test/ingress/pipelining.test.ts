/**
 * Requests pipelined on an HTTP/1.1 connection that the router closes before their turn: the
 * answer before them was cut (here by its region failing mid-body; the tier deadline and the send
 * timeout cut through the same path), or the drain made it the last on its connection. Their
 * client did not leave, so they are not logged 499 `client_closed`, but status 0 `router_closed`
 * (no answer went out); a client that does close its connection is still 499 `client_closed`. Raw
 * TCP clients on the plain port, which write their requests in one go.
 */
import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOST } from '../support/clients.js';
import { getLine, ADMIN_TOKEN, openConnectionsAt } from '../support/hostile.js';
import { echo, TestOrigin } from '../support/origin.js';
import { startTestRouter, type TestRouter } from '../support/router.js';
import { until } from '../support/until.js';

describe('pipelined requests on a connection the router closes', () => {
  let origin: TestOrigin;
  let router: TestRouter;
  /** `/partial/…`: a head and the start of a 1,000-byte body, then nothing until the test calls `breakOff`. */
  let breakOff: Array<() => void> = [];
  /** `/ending/…`: a head and half of a 10-byte body, the rest when the test calls `finish`. */
  let finish: Array<() => void> = [];

  beforeAll(async () => {
    origin = await TestOrigin.start('nyc');
    origin.handler = (req, res, seen) => {
      if (req.url!.startsWith('/ending/')) {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '10' });
        res.write('01234');
        finish.push(() => res.end('56789'));
        return;
      }
      if (!req.url!.startsWith('/partial/')) return echo(req, res, seen);
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' });
      res.write('partial');
      breakOff.push(() => req.socket.destroy());
    };
    router = await startTestRouter({ nyc: origin.url }, ['--plain-http', 'serve', '--admin-token', ADMIN_TOKEN]);
  });
  afterAll(async () => {
    await router.close();
    await origin.kill();
  });

  /** A connection that writes `requests` at once and reads everything until it closes. */
  async function pipeline(requests: string[], port = router.httpPort): Promise<{ socket: Socket; received: () => string; closed: Promise<unknown> }> {
    const socket = netConnect({ port, host: '127.0.0.1' });
    socket.on('error', () => undefined);
    await once(socket, 'connect');
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    const closed = once(socket, 'close');
    socket.write(requests.join(''));
    return { socket, received: () => text, closed };
  }

  const lineOf = (path: string) => router.access.find((a) => a.path === path);

  it('logs a request pipelined behind an answer its region broke off mid-body as closed by the router, and never sends it on', async () => {
    breakOff = [];
    const client = await pipeline([getLine('/partial/cut'), getLine('/behind/cut')]);
    await until('the start of the first answer reached the client', () => client.received().includes('partial'));
    breakOff.forEach((cut) => cut());
    await client.closed; // the router closed it: the first answer is cut off
    await until('both requests logged', () => lineOf('/partial/cut') !== undefined && lineOf('/behind/cut') !== undefined);
    expect(lineOf('/partial/cut')).toMatchObject({ status: 200, region: 'nyc' });
    expect(lineOf('/partial/cut')!.error).not.toBeNull();
    expect(lineOf('/behind/cut')).toMatchObject({ status: 0, error: 'router_closed', region: null, tried: [] });
    expect(client.received()).not.toMatch(/HTTP\/1\.1 \d{3}[\s\S]*HTTP\/1\.1/); // one answer's head, no more
    expect(origin.requests.map((r) => r.url)).not.toContain('/behind/cut');
    // Counted as a request without a status, not as a client error (499 is 4xx).
    const metrics = await (await request(`http://127.0.0.1:${router.adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body.text();
    expect(metrics).toMatch(/^edge_router_requests_total\{region="none",status_class="none",route="[^"]+"\} 1$/m);
    expect(metrics).not.toMatch(/^edge_router_requests_total\{region="none",status_class="4xx"/m);
  });

  it('logs a request pipelined behind the answer that the drain made the last on its connection as closed by the router', async () => {
    // A router of its own: this one drains. The answer streaming as the drain begins ends with the
    // connection (Connection: close can no longer go in its head), and what waits behind it is dropped.
    const draining = await startTestRouter({ nyc: origin.url }, ['--plain-http', 'serve', '--drain-timeout', '5000']);
    let closing: Promise<void> | undefined;
    try {
      finish = [];
      const client = await pipeline([getLine('/ending/drain'), getLine('/behind/drain')], draining.httpPort);
      await until('the start of the first answer reached the client', () => client.received().includes('01234'));
      closing = draining.close(); // the drain begins at once
      finish.forEach((end) => end());
      await client.closed;
      const line = (path: string) => draining.access.find((a) => a.path === path);
      await until('both requests logged', () => line('/ending/drain') !== undefined && line('/behind/drain') !== undefined);
      expect(line('/ending/drain')).toMatchObject({ status: 200, error: null });
      expect(line('/behind/drain')).toMatchObject({ status: 0, error: 'router_closed', tried: [] });
      expect(client.received()).toMatch(/56789$/); // the first answer whole
      expect(origin.requests.map((r) => r.url)).not.toContain('/behind/drain');
    } finally {
      await (closing ?? draining.close());
    }
  });

  it('logs a request pipelined behind an error the router answered itself during the drain as closed by the router', async () => {
    // The error (a host the router does not serve) is answered without any region, from the edge
    // handler: during the drain it says `Connection: close`, and what waits behind it is dropped.
    const draining = await startTestRouter({ nyc: origin.url }, ['--plain-http', 'serve', '--drain-timeout', '5000']);
    let closing: Promise<void> | undefined;
    try {
      // A head begun before the drain keeps its connection open through it (an idle one is closed).
      const client = await pipeline(['GET /unserved/drain HTTP/1.1\r\nHost: nobody.example.org\r\n'], draining.httpPort);
      await new Promise((r) => setTimeout(r, 100));
      closing = draining.close(); // the drain begins at once
      client.socket.write(`\r\n${getLine('/behind/unserved')}`);
      await client.closed;
      const line = (path: string) => draining.access.find((a) => a.path === path);
      const unserved = () => draining.access.find((a) => a.host === 'nobody.example.org');
      await until('both requests logged', () => unserved() !== undefined && line('/behind/unserved') !== undefined);
      expect(unserved()).toMatchObject({ status: 404, error: 'unknown_host' });
      expect(line('/behind/unserved')).toMatchObject({ status: 0, error: 'router_closed', tried: [] });
      expect(client.received()).toMatch(/^HTTP\/1\.1 404 [\s\S]*\r\nConnection: close\r\n/i);
      expect(origin.requests.map((r) => r.url)).not.toContain('/behind/unserved');
    } finally {
      await (closing ?? draining.close());
    }
  });

  it('logs a request pipelined behind a closing error answer that waited its turn as closed by the router', async () => {
    // The error (a host the router does not serve, with a body it does not read: Connection: close)
    // is queued behind an answer still coming; it closes the connection when its own turn is over,
    // and the request behind it never has one.
    finish = [];
    const refused = `POST /queued/unserved HTTP/1.1\r\nHost: nobody.example.org\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`;
    const client = await pipeline([getLine('/ending/before-queued'), refused, getLine('/behind/queued')]);
    await until('the first answer has started', () => finish.length === 1);
    finish.shift()!();
    await client.closed;
    await until('the request behind logged', () => lineOf('/behind/queued') !== undefined);
    const answers = client.received().split(/(?=HTTP\/1\.1 \d{3} )/);
    expect(answers.map((a) => a.slice(0, 12))).toEqual(['HTTP/1.1 200', 'HTTP/1.1 404']);
    expect(lineOf('/behind/queued')).toMatchObject({ status: 0, error: 'router_closed', tried: [] });
    expect(origin.requests.map((r) => r.url)).not.toContain('/behind/queued');
  });

  it('still logs 499 client_closed for requests whose client closed the connection', async () => {
    breakOff = [];
    const client = await pipeline([getLine('/partial/left'), getLine('/behind/left')]);
    await until('the start of the first answer reached the client', () => client.received().includes('partial'));
    client.socket.destroy();
    await until('both requests logged', () => lineOf('/partial/left') !== undefined && lineOf('/behind/left') !== undefined);
    expect(lineOf('/partial/left')).toMatchObject({ status: 499, error: 'client_closed' });
    expect(lineOf('/behind/left')).toMatchObject({ status: 499, error: 'client_closed' });
    breakOff.forEach((cut) => cut());
  });

  it('answers the requests before a malformed pipelined one in full, then 400, then closes', async () => {
    finish = [];
    // The first request's answer is still coming when the parser meets the broken one behind it.
    const client = await pipeline([getLine('/ending/first'), getLine('/ending/second'), 'NOT HTTP AT ALL\r\n\r\n']);
    // The router forwards a pipelined request when the answer before it is over.
    await until('the first answer has started', () => finish.length === 1);
    finish.shift()!();
    await until('the second answer has started', () => finish.length === 1);
    finish.shift()!();
    await client.closed;
    const answers = client.received().split(/(?=HTTP\/1\.1 \d{3} )/);
    expect(answers.map((a) => a.slice(0, 12))).toEqual(['HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 400']);
    expect(answers[0]!.endsWith('0123456789')).toBe(true);
    expect(answers[1]!.endsWith('0123456789')).toBe(true);
    await until('both requests logged', () => lineOf('/ending/first') !== undefined && lineOf('/ending/second') !== undefined);
    expect(lineOf('/ending/first')).toMatchObject({ status: 200, error: null, bytesOut: 10 });
    expect(lineOf('/ending/second')).toMatchObject({ status: 200, error: null, bytesOut: 10 });
    // The refused bytes have their line too, after the answers before them (as they went out).
    await until('the refusal logged', () => router.access.some((a) => a.requestId === '-' && a.error === 'bad_request'));
    const refused = router.access.findIndex((a) => a.requestId === '-' && a.error === 'bad_request');
    expect(router.access[refused]).toMatchObject({ status: 400, path: '', method: '', region: null });
    expect(refused).toBeGreaterThan(router.access.indexOf(lineOf('/ending/second')!));
  });

  it('lets go of a connection whose pipelined bytes broke behind an answer as soon as its client has closed', async () => {
    finish = [];
    const openBefore = await openConnectionsAt(router.adminPort);
    const client = await pipeline([getLine('/ending/before-garbage'), 'NOT HTTP AT ALL\r\n\r\n']);
    await until('the first answer has started', () => finish.length === 1);
    finish.shift()!();
    // The 400 goes out with the router's FIN, and the client closes its side in turn.
    await client.closed;
    expect(client.received().split(/(?=HTTP\/1\.1 \d{3} )/).map((a) => a.slice(0, 12))).toEqual(['HTTP/1.1 200', 'HTTP/1.1 400']);
    // The router reads that close at once (it lingers, reading), not at the keep-alive timeout (5 s).
    await until('the connection let go', async () => (await openConnectionsAt(router.adminPort)) <= openBefore, 2_000);
  });

  it('answers a CONNECT pipelined behind an answer still coming 405 after it, then closes', async () => {
    finish = [];
    const client = await pipeline([getLine('/ending/before-connect'), `CONNECT ${HOST}:443 HTTP/1.1\r\nHost: ${HOST}:443\r\n\r\n`]);
    await until('the first answer has started', () => finish.length === 1);
    finish.shift()!();
    await client.closed;
    const answers = client.received().split(/(?=HTTP\/1\.1 \d{3} )/);
    expect(answers.map((a) => a.slice(0, 12))).toEqual(['HTTP/1.1 200', 'HTTP/1.1 405']);
    expect(answers[0]!.endsWith('0123456789')).toBe(true);
    await until('the CONNECT logged', () => router.access.some((a) => a.error === 'method_not_allowed'));
    expect(router.access.filter((a) => a.error === 'method_not_allowed')).toEqual([expect.objectContaining({ status: 405, requestId: '-' })]);
  });

  it('answers a pipelined upload whose chunked framing breaks 400 at its turn, after the answer before it, and logs it once', async () => {
    finish = [];
    const refusalsBefore = router.access.filter((a) => a.requestId === '-').length;
    const broken = `POST /broken/behind HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n`;
    const client = await pipeline([getLine('/ending/before-broken'), broken]);
    await until('the first answer has started', () => finish.length === 1);
    finish.shift()!();
    await client.closed;
    const answers = client.received().split(/(?=HTTP\/1\.1 \d{3} )/);
    expect(answers.map((a) => a.slice(0, 12))).toEqual(['HTTP/1.1 200', 'HTTP/1.1 400']);
    expect(answers[0]!.endsWith('0123456789')).toBe(true);
    await until('both requests logged', () => lineOf('/ending/before-broken') !== undefined && lineOf('/broken/behind') !== undefined);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(router.access.filter((a) => a.path === '/broken/behind')).toEqual([expect.objectContaining({ status: 400, error: 'bad_request', method: 'POST' })]);
    expect(router.access.filter((a) => a.requestId === '-').length).toBe(refusalsBefore);
    expect(origin.requests.map((r) => r.url)).not.toContain('/broken/behind');
  });
});
