/**
 * A real browser's WebSockets through the router: Chromium, on a page it loaded over HTTP/2,
 * opens its WebSocket as a stream of that connection (RFC 8441) because the router announces
 * extended CONNECT; with `--websocket-over-http2 off` it opens an HTTP/1.1 connection instead.
 * Both reach a real WebSocket server (the `ws` package) in the region and echo messages.
 */
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import type { Browser } from 'playwright-core';
import { HOST } from '../support/clients.js';
import { TestOrigin } from '../support/origin.js';
import { startTestRouter, type TestRouter } from '../support/router.js';
import { CHROMIUM_MISSING, launchChromium } from '../support/browser.js';
import { until } from '../support/until.js';

describe.skipIf(CHROMIUM_MISSING)('WebSockets from chromium through the router', () => {
  let browser: Browser;
  let origin: TestOrigin;
  let wss: WebSocketServer;
  const cleanup: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    origin = await TestOrigin.start('nyc');
    // A real WebSocket server in the region: echoes each message back with its subprotocol.
    wss = new WebSocketServer({ noServer: true, handleProtocols: (protocols) => (protocols.has('chat') ? 'chat' : false) });
    wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(isBinary ? data : `${ws.protocol}:${String(data)}`)));
    (origin as unknown as { server: Server }).server.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req)));
    browser = await launchChromium(['--ignore-certificate-errors', `--host-resolver-rules=MAP ${HOST} 127.0.0.1`]);
  }, 60_000);

  afterAll(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
    await browser?.close();
    wss?.close();
    await origin?.kill();
  });

  /** Loads a page from the router, opens a WebSocket from it, exchanges two messages, closes. */
  async function echoFromPage(router: TestRouter): Promise<{ replies: string[]; protocol: string; closeCode: number }> {
    const page = await browser.newPage();
    try {
      await page.goto(`https://${HOST}:${router.httpsPort}/page`);
      return await page.evaluate(
        (url) =>
          new Promise<{ replies: string[]; protocol: string; closeCode: number }>((resolve, reject) => {
            const ws = new WebSocket(url, ['chat']);
            const replies: string[] = [];
            ws.onopen = () => ws.send('hello');
            ws.onmessage = (e) => {
              replies.push(String(e.data));
              if (replies.length === 1) ws.send('again');
              else ws.close(1000, 'done');
            };
            ws.onclose = (e) => resolve({ replies, protocol: ws.protocol, closeCode: e.code });
            ws.onerror = () => reject(new Error('websocket error'));
            setTimeout(() => reject(new Error(`no echo within 10 s; got ${JSON.stringify(replies)}`)), 10_000);
          }),
        `wss://${HOST}:${router.httpsPort}/socket`,
      );
    } finally {
      await page.close();
    }
  }

  it('opens the WebSocket on the page\'s HTTP/2 connection (extended CONNECT) and echoes through it', async () => {
    const router = await startTestRouter({ nyc: origin.url });
    cleanup.push(() => router.close());
    // Chromium decides per WebSocket whether an HTTP/2 session it holds may carry it, and once in
    // a full-suite run (one of ~30) it opened a fresh HTTP/1.1 connection instead, with the page's
    // session still open; why is Chromium's (not reproduced alone or under CPU load). So a page
    // opens up to three, each of which must echo, and one must have gone over HTTP/2. A router
    // that did not announce extended CONNECT would get none over HTTP/2, and one that announced it
    // but broke the tunnel would fail the echo.
    const tunnels = () => router.access.filter((a) => a.path === '/socket');
    for (let attempt = 1; attempt <= 3; attempt++) {
      const result = await echoFromPage(router);
      expect(result).toEqual({ replies: ['chat:hello', 'chat:again'], protocol: 'chat', closeCode: 1000 });
      await until('the tunnel logged', () => tunnels().length === attempt);
      if (tunnels().some((a) => a.method === 'CONNECT')) break;
    }
    expect(router.access.find((a) => a.path === '/page')).toMatchObject({ protocol: 'HTTP/2.0', status: 200 });
    expect(tunnels().find((a) => a.method === 'CONNECT') ?? tunnels()).toMatchObject({ method: 'CONNECT', protocol: 'HTTP/2.0', status: 200, region: 'nyc', error: null });
  });

  it('falls back to an HTTP/1.1 upgrade with --websocket-over-http2 off', async () => {
    const router = await startTestRouter({ nyc: origin.url }, ['--websocket-over-http2', 'off']);
    cleanup.push(() => router.close());
    const result = await echoFromPage(router);
    expect(result).toEqual({ replies: ['chat:hello', 'chat:again'], protocol: 'chat', closeCode: 1000 });
    await until('the tunnel logged', () => router.access.some((a) => a.path === '/socket'));
    expect(router.access.find((a) => a.path === '/socket')).toMatchObject({ method: 'GET', protocol: 'HTTP/1.1', status: 101, region: 'nyc', error: null });
  });
});
