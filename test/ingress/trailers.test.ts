/**
 * Trailer fields: what a region sends after a chunked body reaches the client after the body too
 * (HTTP/1.1: in the last chunk; HTTP/2: a trailing HEADERS frame, for a client that sent
 * `TE: trailers`), without the fields a trailer section must not carry or the edge's namespace.
 */
import { connect as http2Connect, constants, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { request } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { agentFor, HOST } from '../support/clients.js';
import { TestOrigin } from '../support/origin.js';
import { startTestRouter, type TestRouter } from '../support/router.js';

const cleanup: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

let router: TestRouter;
beforeEach(async () => {
  const origin = await TestOrigin.start('nyc');
  cleanup.push(() => origin.kill());
  // A chunked answer; `/with-trailers` ends with trailer fields, the edge's own and framing ones among them.
  origin.handler = (req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', ...(req.url === '/with-trailers' ? { trailer: 'x-checksum, server-timing' } : {}) });
    res.write('part one, ');
    if (req.url === '/with-trailers') {
      res.addTrailers([
        ['x-checksum', 'sha256=abc'],
        ['server-timing', 'db;dur=12'],
        ['x-edge-region', 'spoofed'],
      ]);
    }
    res.end('part two');
  };
  router = await startTestRouter({ nyc: origin.url });
  cleanup.push(() => router.close());
});

/** One HTTP/2 request: head, body, trailers (if any) and how the stream ended. */
async function h2Get(session: ClientHttp2Session, path: string, headers: Record<string, string> = {}) {
  const stream = session.request({ ':path': path, ':authority': HOST, ...headers });
  let head: IncomingHttpHeaders = {};
  let trailers: IncomingHttpHeaders | undefined;
  let body = '';
  stream.on('response', (h) => (head = h));
  stream.on('trailers', (t) => (trailers = t));
  stream.on('data', (d: Buffer) => (body += d.toString()));
  await new Promise((resolve) => stream.once('close', resolve));
  return { status: head[':status'], body, trailers, rstCode: stream.rstCode };
}

describe('trailer fields from the region', () => {
  it('reach an HTTP/1.1 client after the body, without framing fields or the edge\'s namespace', async () => {
    const agent = agentFor(router.httpsPort);
    cleanup.push(() => agent.close());
    const res = await request(`https://${HOST}:${router.httpsPort}/with-trailers`, { dispatcher: agent });
    expect(await res.body.text()).toBe('part one, part two');
    expect(res.trailers).toEqual({ 'x-checksum': 'sha256=abc', 'server-timing': 'db;dur=12' });
  });

  it('reach an HTTP/2 client that sent TE: trailers; its stream ends cleanly when the region sends none', async () => {
    const session = http2Connect(`https://${HOST}:${router.httpsPort}`, { rejectUnauthorized: false, host: '127.0.0.1', servername: HOST } as never);
    cleanup.push(() => void session.destroy());
    const withTrailers = await h2Get(session, '/with-trailers', { te: 'trailers' });
    expect(withTrailers).toMatchObject({ status: 200, body: 'part one, part two', rstCode: constants.NGHTTP2_NO_ERROR });
    expect(Object.fromEntries(Object.entries(withTrailers.trailers ?? {}))).toEqual({ 'x-checksum': 'sha256=abc', 'server-timing': 'db;dur=12' });
    expect(await h2Get(session, '/without', { te: 'trailers' })).toMatchObject({ status: 200, body: 'part one, part two', rstCode: constants.NGHTTP2_NO_ERROR });
    // An edge error answer to such a client (here: a name its connection's certificate does not serve) ends as cleanly.
    expect(await h2Get(session, '/x', { te: 'trailers', ':authority': 'nope.example.com' })).toMatchObject({ status: 421, rstCode: constants.NGHTTP2_NO_ERROR });
  });

  it('do not reach an HTTP/2 client that did not ask for them', async () => {
    const session = http2Connect(`https://${HOST}:${router.httpsPort}`, { rejectUnauthorized: false, host: '127.0.0.1', servername: HOST } as never);
    cleanup.push(() => void session.destroy());
    const res = await h2Get(session, '/with-trailers');
    expect(res).toMatchObject({ status: 200, body: 'part one, part two', rstCode: constants.NGHTTP2_NO_ERROR });
    expect(res.trailers).toBeUndefined();
  });
});
