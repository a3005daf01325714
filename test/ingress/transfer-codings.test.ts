/**
 * A region's answer sent with a transfer coding other than chunked (RFC 9112 §6.1: `gzip,
 * chunked`, say). Transfer codings are hop-by-hop: the router takes the field off, so the coded
 * bytes must not go on as if they were the content.
 */
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOST } from '../support/clients.js';
import { rawRequest } from '../support/raw.js';
import { echo, TestOrigin } from '../support/origin.js';
import { startTestRouter, type TestRouter } from '../support/router.js';

describe('answers with a transfer coding the router does not decode', () => {
  let origin: TestOrigin;
  let router: TestRouter;

  beforeAll(async () => {
    origin = await TestOrigin.start('nyc');
    origin.handler = (req, res, seen) => {
      if (req.url === '/gzip-chunked') {
        // Node's server frames the body chunked (the coding list ends in chunked) and sends the field as given.
        res.writeHead(200, { 'content-type': 'text/plain', 'transfer-encoding': 'gzip, chunked' });
        res.end(gzipSync('hello, world\n'));
      } else echo(req, res, seen);
    };
    router = await startTestRouter({ nyc: origin.url });
  });
  afterAll(async () => {
    await router.close();
    await origin.kill();
  });

  it('answers 502 rather than pass gzip-coded bytes on as the content', async () => {
    // Before: the field was dropped as hop-by-hop and the client got the gzip stream (1f 8b …) as a
    // text/plain body, with nothing saying it was coded.
    const res = await rawRequest(router.httpsPort, [`GET /gzip-chunked HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`], { tls: true });
    expect(res.text).not.toContain('\x1f\x8b');
    expect(res.status).toBe(502);
    expect(router.access.findLast((a) => a.path === '/gzip-chunked')).toMatchObject({ status: 502 });
    // The router's connection to the region is not left with the rest of that answer: the next request is served.
    const next = await rawRequest(router.httpsPort, [`GET /after HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`], { tls: true });
    expect(next.status).toBe(200);
  });
});
