/**
 * The tier deadline bounds the whole exchange, the response body included (as Envoy's route
 * timeout does): a function still sending its answer past its limit and a grace is cut off, over
 * HTTP/1.1 (the connection closes, without the last chunk) and HTTP/2 (the stream is reset
 * INTERNAL_ERROR), its region's request is aborted, and the access log and a metric say so. An
 * answer that ends within the grace is untouched. Short limits: --timeout-standard, and the grace
 * through the resolved configuration (it has no flag).
 */
import { once } from 'node:events';
import { connect as http2Connect, constants, type ClientHttp2Session } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import { request, type Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentFor, get, getH2, HOST } from '../support/clients.js';
import { ADMIN_TOKEN } from '../support/hostile.js';
import { TestOrigin, type OriginHandler } from '../support/origin.js';
import { rawRequest } from '../support/raw.js';
import { startTestRouter, type TestRouter } from '../support/router.js';
import { until } from '../support/until.js';

const DEADLINE_MS = 800;
const GRACE_MS = 1_500;
/** An answer that ends this long after it started: past the deadline, well within the grace. */
const FINISH_MS = DEADLINE_MS + 600;

/** Larger than what the kernel and Node buffer between the router and a client that reads nothing. */
const DOWNLOAD_BYTES = 48 * 1024 * 1024;

/** Headers at once, then a line every 100 ms: for ever, or until `forMs` has passed. */
const drip =
  (forMs: number | null): OriginHandler =>
  (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    const started = Date.now();
    const timer = setInterval(() => {
      if (forMs !== null && Date.now() - started >= forMs) {
        clearInterval(timer);
        res.end('end\n');
        return;
      }
      res.write('tick\n');
    }, 100);
    res.on('close', () => clearInterval(timer));
  };

describe('the tier deadline bounds a streaming response', () => {
  let origin: TestOrigin;
  let router: TestRouter;
  let agent: Agent;

  beforeAll(async () => {
    origin = await TestOrigin.start('nyc');
    const endless = drip(null);
    const finishing = drip(FINISH_MS);
    origin.handler = (req, res, seen) => {
      if (req.url!.startsWith('/silent')) return; // never answers
      (req.url!.startsWith('/endless') ? endless : finishing)(req, res, seen);
    };
    router = await startTestRouter({ nyc: origin.url }, ['--timeout-standard', String(DEADLINE_MS), '--admin-token', ADMIN_TOKEN], {}, undefined, (resolved) => ({
      ...resolved,
      config: { ...resolved.config, responseGraceMs: GRACE_MS },
    }));
    agent = agentFor(router.httpsPort);
  });
  afterAll(async () => {
    await agent.close();
    await router.close();
    await origin.kill();
  });

  const accessOf = async (path: string) => {
    await until(`the access line of ${path}`, () => router.access.some((a) => a.path === path));
    return router.access.find((a) => a.path === path)!;
  };
  const cutsCounted = async (): Promise<number> => {
    const text = await (await request(`http://127.0.0.1:${router.adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body.text();
    const match = /^edge_router_response_deadline_cuts_total\{region="nyc"\} (\d+)$/m.exec(text);
    return match === null ? 0 : Number(match[1]);
  };
  /** The region's request for `path`, once it arrived. */
  const seenAt = async (path: string) => {
    await until(`the region got ${path}`, () => origin.requests.some((r) => r.url === path));
    return origin.requests.find((r) => r.url === path)!;
  };

  it('closes an HTTP/1.1 connection whose answer still streams past the deadline and grace: no last chunk, and the region\'s request is aborted', async () => {
    const cutsBefore = await cutsCounted();
    const res = await rawRequest(router.httpsPort, [`GET /endless-h1 HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`], { tls: true, untilClose: true, timeoutMs: 8_000 });
    expect(res.status).toBe(200);
    expect(res.text).toMatch(/\r\ntransfer-encoding: chunked\r\n/i);
    expect(res.text).toContain('tick');
    expect(res.closedByServer).toBe(true);
    // Cut, not ended: the zero-length chunk that ends a chunked body never came.
    expect(res.text).not.toMatch(/\r\n0\r\n\r\n$/);
    // Not before the grace ran out (counted from the request's arrival, after this clock started).
    expect(res.elapsedMs).toBeGreaterThanOrEqual(DEADLINE_MS + GRACE_MS);
    const seen = await seenAt('/endless-h1');
    await until('the region sees its request aborted', () => seen.aborted && seen.done);
    expect(await accessOf('/endless-h1')).toMatchObject({ status: 200, error: 'response_deadline', region: 'nyc' });
    await until('the region slot given back', () => router.router.outstanding('nyc').active === 0);
    expect(await cutsCounted()).toBe(cutsBefore + 1);
  });

  it('resets an HTTP/2 stream whose answer still streams past the deadline and grace with INTERNAL_ERROR; the connection serves on', async () => {
    const cutsBefore = await cutsCounted();
    const session: ClientHttp2Session = http2Connect(`https://${HOST}:${router.httpsPort}`, { rejectUnauthorized: false, host: '127.0.0.1', servername: HOST } as never);
    try {
      session.on('error', () => undefined);
      const started = Date.now();
      const stream = session.request({ ':path': '/endless-h2', ':method': 'GET', ':authority': HOST }, { endStream: true });
      let status = 0;
      let body = '';
      let ended = false;
      let closedAt = 0;
      stream.on('response', (headers) => (status = Number(headers[':status'])));
      stream.on('data', (chunk: Buffer) => (body += chunk.toString()));
      stream.on('end', () => (ended = true));
      stream.on('error', () => undefined);
      stream.on('close', () => (closedAt = Date.now()));
      await until('the router ended the stream', () => closedAt !== 0, 8_000);
      expect({ status, ended, rstCode: stream.rstCode }).toEqual({ status: 200, ended: false, rstCode: constants.NGHTTP2_INTERNAL_ERROR });
      expect(body).toContain('tick');
      expect(closedAt - started).toBeGreaterThanOrEqual(DEADLINE_MS + GRACE_MS);
      const seen = await seenAt('/endless-h2');
      await until('the region sees its request aborted', () => seen.aborted && seen.done);
      expect(await accessOf('/endless-h2')).toMatchObject({ status: 200, error: 'response_deadline', region: 'nyc', protocol: 'HTTP/2.0' });
      await until('the region slot given back', () => router.router.outstanding('nyc').active === 0);
      expect(await cutsCounted()).toBe(cutsBefore + 1);
      // Only the stream was cut: the connection carries the next request.
      const next = session.request({ ':path': '/after-the-cut', ':method': 'GET', ':authority': HOST }, { endStream: true });
      next.on('error', () => undefined);
      const nextStatus = await new Promise<number>((resolve) => next.on('response', (headers) => resolve(Number(headers[':status']))));
      expect(nextStatus).toBe(200);
    } finally {
      session.destroy();
    }
  });

  it('leaves whole an answer that ends past the deadline but within the grace, over HTTP/1.1 and HTTP/2', async () => {
    const [h1, h2] = await Promise.all([get(agent, router.httpsPort, '/finishing-h1'), getH2(router.httpsPort, '/finishing-h2')]);
    expect(h1.status).toBe(200);
    expect(h1.body.endsWith('tick\nend\n')).toBe(true);
    expect(h2.headers[':status']).toBe(200);
    expect(h2.body.endsWith('tick\nend\n')).toBe(true);
    expect(await accessOf('/finishing-h1')).toMatchObject({ status: 200, error: null });
    expect(await accessOf('/finishing-h2')).toMatchObject({ status: 200, error: null });
  });

  it('still answers 504 to a request whose headers do not come within the deadline', async () => {
    const res = await get(agent, router.httpsPort, '/silent');
    expect(res.status).toBe(504);
    expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'upstream_timeout' } });
    expect(await accessOf('/silent')).toMatchObject({ status: 504, error: 'upstream_timeout' });
  });
});

describe('the tier deadline and a client that reads slowly', () => {
  // Limits of its own, longer than the file's: until the router's writes to the paused client
  // stall (some megabytes into the answer), the answer's time counts against them, and on a loaded
  // host pushing those megabytes through TLS took longer than the short limits above (seen in a
  // suite run at load 13: the answer was cut at 529 bytes).
  const SLOW_DEADLINE_MS = 1_500;
  const SLOW_GRACE_MS = 2_500;
  let origin: TestOrigin;
  let router: TestRouter;

  beforeAll(async () => {
    origin = await TestOrigin.start('nyc');
    origin.handler = (_req, res) => {
      // The whole answer at once: the function is done long before its deadline.
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': DOWNLOAD_BYTES });
      res.end(Buffer.alloc(DOWNLOAD_BYTES, 'x'));
    };
    router = await startTestRouter({ nyc: origin.url }, ['--timeout-standard', String(SLOW_DEADLINE_MS), '--admin-token', ADMIN_TOKEN], {}, undefined, (resolved) => ({
      ...resolved,
      config: { ...resolved.config, responseGraceMs: SLOW_GRACE_MS },
    }));
  });
  afterAll(async () => {
    await router.close();
    await origin.kill();
  });

  it('does not cut an answer the function sent in time whose client takes it slowly: the time spent waiting for the client is not the function\'s', async () => {
    const socket = tlsConnect({ host: '127.0.0.1', port: router.httpsPort, servername: HOST, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
    try {
      await once(socket, 'secureConnect');
      socket.write(`GET /download HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`);
      // Reads nothing until well past the deadline and grace: the router's writes stall, the region's answer waits.
      socket.pause();
      await new Promise((resolve) => setTimeout(resolve, SLOW_DEADLINE_MS + SLOW_GRACE_MS + 1_000));
      let bytes = 0;
      socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
      socket.resume();
      await once(socket, 'end');
      expect(bytes).toBeGreaterThan(DOWNLOAD_BYTES);
      await until('the access line of /download', () => router.access.some((a) => a.path === '/download'));
      expect(router.access.find((a) => a.path === '/download')).toMatchObject({ status: 200, error: null, bytesOut: DOWNLOAD_BYTES });
    } finally {
      socket.destroy();
    }
  });
});
