import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { AnyRequest, AnyResponse } from '../../src/ingress/edge-handler.js';
import { shouldLinger, type LingerLimits } from '../../src/ingress/lingering-close.js';
import { proxyProtocolServer } from '../../src/ingress/proxy-protocol/listener.js';
import { PublicServers, type PublicServersOptions } from '../../src/ingress/public-servers.js';
import { HOST } from '../support/clients.js';
import { TestOrigin } from '../support/origin.js';
import { rawRequest, uploadThenRead } from '../support/raw.js';
import { startTestRouter, type TestRouter } from '../support/router.js';
import { startPublicListeners } from '../support/public-listeners.js';
import { DEFAULT_LIMITS } from '../../src/ingress/server-limits.js';
import { until } from '../support/until.js';

/**
 * HTTP/1 connections answered before their body was read (a 413, a function refusing an upload)
 * close by lingering: the answer, a FIN, then whatever the client still sends is read and thrown
 * away, within bounds, so that the close sends no reset that would take the answer with it.
 * Real sockets over loopback, plain TCP and TLS.
 */
describe('lingering close of HTTP/1 connections answered early', () => {
  const ANSWER = JSON.stringify({ error: { code: 'payload_too_large', message: 'x'.repeat(300) } });
  /** What the edge handler does for a body over the limit: answer at once, close after the answer. */
  const refuseUpload = (req: AnyRequest, anyRes: AnyResponse) => {
    const res = anyRes as ServerResponse;
    const answer = () => {
      res.shouldKeepAlive = false;
      res.writeHead(413, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(ANSWER) });
      res.end(ANSWER);
    };
    if (req.url !== '/read-first') return answer();
    void (async () => {
      for await (const _ of req as AsyncIterable<Buffer>);
      answer();
    })();
  };
  const head = (bodyBytes: number) => `POST /upload HTTP/1.1\r\nHost: echo-demo.telnyxcompute.com\r\nContent-Length: ${bodyBytes}\r\n\r\n`;

  const started: PublicServers[] = [];
  afterEach(() => {
    for (const servers of started.splice(0)) servers.forceClose();
  });

  async function start(options: Partial<PublicServersOptions> & { lingering?: LingerLimits } = {}) {
    const { servers, https, http } = await startPublicListeners(refuseUpload, { plainHttp: 'serve', ...options });
    started.push(servers);
    return { servers, ports: { https, http } };
  }

  for (const transport of ['tcp', 'tls'] as const) {
    it(`over ${transport}: a client that reads only after sending its whole upload still gets the early answer`, async () => {
      const { servers, ports } = await start();
      const port = transport === 'tls' ? ports.https! : ports.http;
      // 1 MiB in 16 KiB pieces, one every 2 ms: the answer is written while the body still comes.
      // Closed at once, the router's kernel answered the unread body with a reset, and the client's
      // next write failed (ECONNRESET / EPIPE) with the 413 unread.
      const res = await uploadThenRead(port, head(8 * 1024 * 1024), { tls: transport === 'tls', bodyBytes: 1024 * 1024 });
      expect({ error: res.error, status: res.status, sent: res.sent }).toEqual({ error: null, status: 413, sent: 1024 * 1024 });
      expect(res.text.endsWith(ANSWER)).toBe(true);
      expect(res.text).toMatch(/\r\nconnection: close\r\n/i);
      // The client's own close ended the linger.
      await until('no connection left', () => servers.lingeringConnections === 0 && servers.openConnections === 0);
    });
  }

  it('does not linger when the body was read: an answer after the whole request closes at once', async () => {
    const { servers, ports } = await start();
    const res = await rawRequest(ports.http, [head(3).replace('/upload', '/read-first') + 'abc'], { untilClose: true });
    expect(res.status).toBe(413);
    expect(res.closedByServer).toBe(true);
    expect(servers.lingeringConnections).toBe(0);
  });

  it.each([
    ['a total lingering time of 0 (--lingering-time 0: nginx\'s lingering_close off)', { totalMs: 0 }],
    ['no byte to discard (--lingering-max-bytes 0)', { maxBytes: 0 }],
    ['no room for a lingering connection (--lingering-max-connections 0)', { maxConnections: 0 }],
  ] as Array<[string, Partial<LingerLimits>]>)('lingers not at all with %s', async (_, off) => {
    const { servers, ports } = await start({ lingering: { totalMs: 30_000, idleMs: 5_000, maxBytes: 1024 * 1024, maxConnections: 16, maxPerAddress: 16, ...off } });
    // Part of the body, then nothing: lingering, the connection would stay open for the idle time.
    const res = await rawRequest(ports.http, [head(100_000) + 'a'.repeat(10_000)], { untilClose: true, timeoutMs: 5_000 });
    expect(res.closedByServer).toBe(true);
    expect(res.elapsedMs).toBeLessThan(2_000);
    expect(servers.lingeredConnections).toBe(0);
  });

  it('cuts a client that keeps sending after the total lingering time', async () => {
    const lingering: LingerLimits = { totalMs: 600, idleMs: 400, maxBytes: 1024 * 1024 * 1024, maxConnections: 16, maxPerAddress: 16 };
    const { servers, ports } = await start({ lingering });
    // 16 KiB every 10 ms would take minutes: the router gives up after 600 ms of it.
    const res = await uploadThenRead(ports.http, head(1024 * 1024 * 1024), { bodyBytes: 1024 * 1024 * 1024, pauseMs: 10, timeoutMs: 10_000 });
    expect(res.error, 'the client was cut').not.toBeNull();
    expect(res.elapsedMs).toBeGreaterThanOrEqual(lingering.totalMs);
    expect(res.elapsedMs).toBeLessThan(8_000);
    await until('no connection left', () => servers.lingeringConnections === 0 && servers.openConnections === 0);
  });

  it('closes a connection whose client stops sending for the idle time, the answer delivered', async () => {
    const { servers, ports } = await start({ lingering: { totalMs: 20_000, idleMs: 300, maxBytes: 1024 * 1024, maxConnections: 16, maxPerAddress: 16 } });
    // Part of the body, then nothing (the client neither sends more nor closes).
    const res = await rawRequest(ports.http, [head(100_000) + 'a'.repeat(10_000)], { untilClose: true, timeoutMs: 5_000 });
    expect(res.status).toBe(413);
    expect(res.closedByServer).toBe(true);
    expect(res.elapsedMs).toBeLessThan(4_000);
    await until('no connection left', () => servers.lingeringConnections === 0 && servers.openConnections === 0);
  });

  it('cuts a client once it has sent more than the bytes a linger discards', async () => {
    const { servers, ports } = await start({ lingering: { totalMs: 20_000, idleMs: 5_000, maxBytes: 256 * 1024, maxConnections: 16, maxPerAddress: 16 } });
    const res = await uploadThenRead(ports.http, head(64 * 1024 * 1024), { bodyBytes: 64 * 1024 * 1024, chunkBytes: 64 * 1024, pauseMs: 1, timeoutMs: 10_000 });
    expect(res.error, 'the client was cut').not.toBeNull();
    expect(res.sent).toBeLessThan(64 * 1024 * 1024);
    await until('no connection left', () => servers.lingeringConnections === 0 && servers.openConnections === 0);
  });

  it('does not count a lingering connection against its address, and still gives its slot back once', async () => {
    const { servers, ports } = await start({ maxConnectionsPerAddress: 1 });
    for (const tls of [false, true]) {
      const port = tls ? ports.https! : ports.http;
      const upload = uploadThenRead(port, head(64 * 1024 * 1024), { tls, bodyBytes: 2 * 1024 * 1024, pauseMs: 5, timeoutMs: 10_000 });
      await until('the upload lingers', () => servers.lingeringConnections === 1);
      // The address's one slot is free again: a second connection is served while the first lingers.
      const second = await rawRequest(port, [head(3) + 'abc'], { tls });
      expect(second.status, tls ? 'tls' : 'tcp').toBe(413);
      expect((await upload).status).toBe(413);
      await until('no connection left', () => servers.lingeringConnections === 0 && servers.openConnections === 0);
    }
    // Given back once: the limit of one still holds (two at once: the second refused).
    const held = rawRequest(ports.http, [], { timeoutMs: 1_500 }); // connected, silent
    await until('one connection open', () => servers.openConnections === 1);
    const refused = await rawRequest(ports.http, [head(3) + 'abc'], { timeoutMs: 1_500 });
    expect(refused.status).toBeNull();
    expect(servers.refusedConnections).toBe(1);
    await held;
  });

  /** Uploads that each linger (answered 413 while still sending: 16 KiB every 10 ms), started one after the other. */
  async function lingeringUploads(servers: PublicServers, port: number, count: number) {
    const uploads = [];
    for (let i = 1; i <= count; i++) {
      uploads.push(uploadThenRead(port, head(1024 * 1024 * 1024), { bodyBytes: 1024 * 1024 * 1024, pauseMs: 10, timeoutMs: 10_000 }));
      await until(`upload ${i} lingers`, () => servers.lingeringConnections === i);
    }
    return uploads;
  }

  it('lingers at most maxPerAddress connections of one address: past them, an early answer closes at once', async () => {
    const lingering: LingerLimits = { totalMs: 20_000, idleMs: 20_000, maxBytes: 1024 * 1024 * 1024, maxConnections: 16, maxPerAddress: 2 };
    const { servers, ports } = await start({ lingering, maxConnectionsPerAddress: 1 });
    const uploads = await lingeringUploads(servers, ports.http, 2);
    // Unbounded, one address opened connection after connection (up to --max-conn-rate-per-ip) and
    // kept each lingering by trickling bytes: past --max-conns-per-ip (each gave its slot back), and
    // through every place in the pool, every other client's early answer reset again.
    const third = await rawRequest(ports.http, [head(100_000) + 'a'.repeat(10_000)], { untilClose: true, timeoutMs: 4_000 });
    expect({ status: third.status, closedByServer: third.closedByServer }).toEqual({ status: 413, closedByServer: true });
    expect(servers.lingeredConnections, 'the third did not linger').toBe(2);
    servers.forceClose();
    await Promise.all(uploads);
  });

  it('behind the PROXY protocol, bounds the lingering of each announced client apart', async () => {
    const lingering: LingerLimits = { totalMs: 20_000, idleMs: 20_000, maxBytes: 1024 * 1024 * 1024, maxConnections: 16, maxPerAddress: 1 };
    const { servers, ports } = await start({ lingering, maxConnectionsPerAddress: 1, wrapListener: (server, admit) => proxyProtocolServer(server, { timeoutMs: 2_000, admit }) });
    const from = (client: string) => `PROXY TCP4 ${client} 127.0.0.1 40000 80\r\n`;
    const first = uploadThenRead(ports.http, from('203.0.113.7') + head(1024 * 1024 * 1024), { bodyBytes: 1024 * 1024 * 1024, pauseMs: 10, timeoutMs: 10_000 });
    await until('the first client lingers', () => servers.lingeringConnections === 1);
    // The same client again (its slot was given back): answered, and closed without lingering.
    const again = await rawRequest(ports.http, [from('203.0.113.7') + head(100_000) + 'a'.repeat(10_000)], { untilClose: true, timeoutMs: 4_000 });
    expect(again.status).toBe(413);
    expect(servers.lingeredConnections).toBe(1);
    // Another client behind the same balancer lingers.
    const other = uploadThenRead(ports.http, from('198.51.100.9') + head(1024 * 1024 * 1024), { bodyBytes: 1024 * 1024 * 1024, pauseMs: 10, timeoutMs: 10_000 });
    await until('the other client lingers', () => servers.lingeringConnections === 2);
    servers.forceClose();
    await Promise.all([first, other]);
  });

  it('does not bound the lingering of a trusted peer (it carries many clients)', async () => {
    const lingering: LingerLimits = { totalMs: 20_000, idleMs: 20_000, maxBytes: 1024 * 1024 * 1024, maxConnections: 16, maxPerAddress: 1 };
    const { servers, ports } = await start({ lingering, exemptPeer: () => true });
    const uploads = await lingeringUploads(servers, ports.http, 2);
    expect(servers.lingeredConnections).toBe(2);
    servers.forceClose();
    await Promise.all(uploads);
  });

  it('never closes a lingering connection to make room at --max-connections', async () => {
    const { servers, ports } = await start({ limits: { ...DEFAULT_LIMITS, maxConnections: 4 } });
    const silent = rawRequest(ports.http, [], { untilClose: true, timeoutMs: 8_000 }); // connected, sends nothing
    await until('the silent connection is open', () => servers.openConnections === 1);
    // 2 MiB at 16 KiB every 20 ms: lingers for the whole test.
    const upload = uploadThenRead(ports.http, head(64 * 1024 * 1024), { bodyBytes: 2 * 1024 * 1024, pauseMs: 20, timeoutMs: 10_000 });
    await until('the upload lingers', () => servers.lingeringConnections === 1);
    await new Promise((resolve) => setTimeout(resolve, 1_200)); // both quiet (or silent) past the second a connection must be
    // Two more bring the listener to its cap: two wanted, and only the silent one may go.
    const more = [rawRequest(ports.http, [], { timeoutMs: 1_000 }), rawRequest(ports.http, [], { timeoutMs: 1_000 })];
    expect((await silent).closedByServer).toBe(true);
    expect(servers.lingeringConnections).toBe(1);
    expect(servers.reclaimedIdleConnections).toBe(1);
    expect((await upload).status).toBe(413);
    await Promise.all(more);
  });

  it('destroys lingering connections on forceClose', async () => {
    const { servers, ports } = await start();
    const upload = uploadThenRead(ports.http, head(1024 * 1024 * 1024), { bodyBytes: 1024 * 1024 * 1024, pauseMs: 10, timeoutMs: 10_000 });
    await until('the upload lingers', () => servers.lingeringConnections === 1);
    servers.forceClose();
    expect((await upload).error).not.toBeNull();
    expect(servers.lingeringConnections).toBe(0);
  });

  it('lingers only while a body may still be coming, and only so many at once', () => {
    const facts = { totalMs: 30_000, maxBytes: 4096, bodyUnread: true, clientDone: false, lingering: 0, maxConnections: 2, lingeringOfAddress: 0, maxPerAddress: 1 };
    expect(shouldLinger(facts)).toBe(true);
    expect(shouldLinger({ ...facts, lingeringOfAddress: 1 })).toBe(false);
    expect(shouldLinger({ ...facts, lingeringOfAddress: 1, maxPerAddress: 0 }), '0: no bound per address').toBe(true);
    expect(shouldLinger({ ...facts, bodyUnread: false })).toBe(false);
    expect(shouldLinger({ ...facts, clientDone: true })).toBe(false);
    expect(shouldLinger({ ...facts, lingering: 2 })).toBe(false);
    expect(shouldLinger({ ...facts, totalMs: 0 }), '--lingering-time 0: off').toBe(false);
    expect(shouldLinger({ ...facts, maxBytes: 0 }), '--lingering-max-bytes 0: off').toBe(false);
    expect(shouldLinger({ ...facts, maxConnections: 0 }), '--lingering-max-connections 0: off').toBe(false);
  });
});

describe('lingering close bounds, as the router flags set them', () => {
  const running: Array<TestRouter | TestOrigin> = [];
  afterEach(async () => {
    for (const each of running.splice(0)) await (each instanceof TestOrigin ? each.kill() : each.close());
  });

  it('cuts a client sooner under a smaller --lingering-max-bytes: one that the default bound lets send its rest (and read its 413) is cut', async () => {
    const origin = await TestOrigin.start('nyc');
    running.push(origin);
    const routerWith = async (maxBytes: string) => {
      const router = await startTestRouter({ nyc: origin.url }, ['--plain-http', 'serve', '--max-body-standard', '1KiB', '--lingering-max-bytes', maxBytes]);
      running.push(router);
      return router;
    };
    // Answered 413 as the head arrives (its Content-Length is over the body limit), the client then
    // sends 8 MiB more, 16 KiB every 2 ms, and reads only then.
    const upload = (router: TestRouter) =>
      uploadThenRead(router.httpPort, `POST /upload HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: ${64 * 1024 * 1024}\r\n\r\n`, { bodyBytes: 8 * 1024 * 1024, timeoutMs: 20_000 });
    // Over the default 4 MiB: only the flag lets all of it through.
    const roomy = await upload(await routerWith('16MiB'));
    expect({ error: roomy.error, status: roomy.status, sent: roomy.sent }).toEqual({ error: null, status: 413, sent: 8 * 1024 * 1024 });
    // Cut once it has sent past 64 KiB (and what the kernels' buffers hold): far from its 8 MiB.
    const cut = await upload(await routerWith('64KiB'));
    expect(cut.error, 'the client was cut').not.toBeNull();
    expect(cut.sent).toBeLessThan(8 * 1024 * 1024);
  });
});
