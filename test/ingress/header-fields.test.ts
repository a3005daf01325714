import { connect, createServer, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HTTP2_MAX_HEADER_LIST_PAIRS, headerFieldCount, http1HeadBytes, http2HeaderListSize, MAX_HEADER_FIELDS } from '../../src/ingress/admission.js';

/**
 * What MAX_HEADER_FIELDS counts, on the raw header lists Node hands the router. Browsers' HTTP/2
 * (Chrome's and Firefox's HPACK encoders) send each cookie as a field of its own, a crumb (RFC 9113
 * §8.2.3): counted one field each, with the pseudo-headers, a browser holding 125 cookies for a
 * host was refused over HTTP/2 (Node's default maxHeaderListPairs, 128) and served over HTTP/1.
 */
describe('header fields of a request', () => {
  let server: Http2Server;
  let port: number;
  const seen: string[][] = [];

  beforeAll(async () => {
    // The bound the public HTTP/2 listener is given.
    server = createServer({ maxHeaderListPairs: HTTP2_MAX_HEADER_LIST_PAIRS, settings: { maxHeaderListSize: http2HeaderListSize(16 * 1024) } }, (req, res) => {
      seen.push(req.rawHeaders);
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /** The raw header list of one HTTP/2 request carrying `headers`, as Node handed it over; null when Node refused it. */
  async function rawHeadersOver2(headers: Record<string, string | string[]>): Promise<string[] | null> {
    const session = connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    try {
      const before = seen.length;
      const status = await new Promise<number | null>((resolve) => {
        const req = session.request({ ':path': '/', ...headers });
        req.on('response', (h) => resolve(Number(h[':status'])));
        req.on('error', () => resolve(null));
        req.on('close', () => resolve(null));
        req.resume();
        req.end();
      });
      return status === 200 ? seen[before]! : null;
    } finally {
      session.close();
    }
  }

  it("takes a browser's request with 180 cookie crumbs (a browser's most per host) over HTTP/2: the pseudo-headers and the crumbs are not counted as fields", async () => {
    const browser = { 'user-agent': 'Mozilla/5.0', accept: 'text/html', 'accept-language': 'en', cookie: Array.from({ length: 180 }, (_, i) => `c${i}=v`) };
    const raw = await rawHeadersOver2(browser);
    expect(raw).not.toBeNull();
    expect(raw!.length / 2).toBeGreaterThan(180);
    // user-agent, accept, accept-language, cookie.
    expect(headerFieldCount(raw!)).toBe(4);
  });

  it('counts every other field, so a request with more than MAX_HEADER_FIELDS is still refused', async () => {
    const fields = Object.fromEntries(Array.from({ length: MAX_HEADER_FIELDS + 1 }, (_, i) => [`a${i}`, 'v']));
    const raw = await rawHeadersOver2(fields);
    expect(raw).not.toBeNull();
    expect(headerFieldCount(raw!)).toBe(MAX_HEADER_FIELDS + 1);
  });

  it('sizes an HTTP/2 head as HTTP/1\'s parser counts one: the target, names and values, :authority as Host, the crumbs one Cookie line', async () => {
    // GET /a HTTP/1.1 | host: h.example | cookie: a=1; b=2 | x: y → 2 + (4 + 9) + (6 + 8) + (1 + 1)
    expect(http1HeadBytes([':method', 'GET', ':scheme', 'https', ':path', '/a', ':authority', 'h.example', 'cookie', 'a=1', 'cookie', 'b=2', 'x', 'y'])).toBe(31);
    // A host beside :authority is the one Host line HTTP/1 would send, counted once.
    expect(http1HeadBytes([':method', 'GET', ':path', '/a', ':authority', 'h.example', 'host', 'h.example', 'x', 'y'])).toBe(2 + 13 + 2);
    expect(http1HeadBytes([':method', 'GET', ':path', '/a', 'host', 'h.example'])).toBe(2 + 13);
    // 170 cookies of 60 bytes: 10.5 KB as HTTP/1 counts them, taken by the listener's list size.
    const cookies = Array.from({ length: 170 }, (_, i) => `c${String(i).padStart(3, '0')}=${'v'.repeat(55)}`);
    const raw = await rawHeadersOver2({ cookie: cookies });
    expect(raw).not.toBeNull();
    expect(http1HeadBytes(raw!)).toBeLessThan(16 * 1024);
    expect(http1HeadBytes(raw!)).toBeGreaterThan(170 * 62 - 2);
  });

  it('counts an HTTP/1 list the same way: each line a field, the Cookie lines one', () => {
    expect(headerFieldCount(['Host', 'a.example', 'Cookie', 'a=1', 'X-A', 'v', 'cookie', 'b=2'])).toBe(3);
    expect(headerFieldCount([])).toBe(0);
  });
});
