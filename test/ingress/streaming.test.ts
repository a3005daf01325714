import { connect as http2Connect, constants } from 'node:http2';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from 'undici';
import { agentFor, get, HOST } from '../support/clients.js';
import { echo, TestOrigin } from '../support/origin.js';
import { rawRequest } from '../support/raw.js';
import { startTestRouter, type TestRouter } from '../support/router.js';
import { until } from '../support/until.js';

describe('streaming, upgrades, aborts and large transfers', () => {
  let origin: TestOrigin;
  let router: TestRouter;
  let agent: Agent;

  beforeAll(async () => {
    origin = await TestOrigin.start('nyc');
    router = await startTestRouter({ nyc: origin.url });
    agent = agentFor(router.httpsPort);
  });
  afterAll(async () => {
    await agent.close();
    await router.close();
    await origin.kill();
  });

  it('streams server-sent events as they are produced, not at the end', async () => {
    origin.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      let n = 0;
      const timer = setInterval(() => {
        res.write(`data: ${n}\n\n`);
        if (++n === 5) {
          clearInterval(timer);
          res.end();
        }
      }, 250);
    };
    try {
      const started = Date.now();
      const res = await request(`https://${HOST}:${router.httpsPort}/events`, { dispatcher: agent });
      expect(res.headers['content-type']).toBe('text/event-stream');
      const arrivals: number[] = [];
      for await (const chunk of res.body) arrivals.push(Date.now() - started, ...(String(chunk).match(/data:/g) ?? []).slice(1).map(() => Date.now() - started));
      expect(arrivals.length).toBe(5);
      // Events 250 ms apart: streamed, the first arrives about a second before the last; buffered
      // to the end, all five would arrive together. (Measured between arrivals, not from the
      // request's start: a busy machine's TLS handshake is no streaming fault.)
      expect(arrivals.at(-1)! - arrivals[0]!).toBeGreaterThan(700);
    } finally {
      origin.handler = echo;
    }
  });

  /** A region that sends `hints` 103s (each with these fields), then its answer. */
  function hintingOrigin(hints: number, fields: Record<string, string | string[]>): typeof origin.handler {
    return (_req, res) => {
      const next = (left: number): void => {
        if (left === 0) {
          res.writeHead(200, { 'content-type': 'text/plain', 'x-final': 'yes' });
          res.end('after the hints\n');
          return;
        }
        res.writeEarlyHints(fields, () => next(left - 1));
      };
      next(hints);
    };
  }
  const HINT = { link: '</style.css>; rel=preload; as=style', 'x-hint-extra': 'not the answer' };
  const http1 = (version: string) => [`GET /hints HTTP/${version}\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`];

  it('passes on a region\'s 103 Early Hints (its links only) to an HTTP/1.1 client before the answer, which does not carry them', async () => {
    origin.handler = hintingOrigin(1, HINT);
    try {
      const { text } = await rawRequest(router.httpsPort, http1('1.1'), { tls: true, untilClose: true });
      const [hints, answer] = text.split(/\r\n\r\n(?=HTTP\/1\.1 200)/);
      expect(hints).toMatch(/^HTTP\/1\.1 103 Early Hints\r\n/);
      expect(hints).toMatch(/^link: <\/style\.css>; rel=preload; as=style$/im);
      expect(hints).not.toMatch(/x-hint-extra/i);
      expect(answer).toMatch(/^x-final: yes$/im);
      expect(answer).not.toMatch(/^link:/im);
      expect(answer).toContain('after the hints\n');
    } finally {
      origin.handler = echo;
    }
  });

  it('passes each link of a Link field listing several, and at most two 103s however many the region sends', async () => {
    // One field on the wire, `</a.css>; …, </b.js>; …` (Node's writer joins a list so).
    origin.handler = hintingOrigin(5, { link: ['</a.css>; rel=preload; as=style', '</b.js>; rel=preload; as=script'] });
    try {
      const { text } = await rawRequest(router.httpsPort, http1('1.1'), { tls: true, untilClose: true });
      expect(text.match(/^HTTP\/1\.1 103 /gm)).toHaveLength(2);
      expect(text).toMatch(/^link: <\/a\.css>; rel=preload; as=style, <\/b\.js>; rel=preload; as=script$/im);
      expect(text).toMatch(/^HTTP\/1\.1 200 /m);
      expect(text).toContain('after the hints\n');
    } finally {
      origin.handler = echo;
    }
  });

  it("leaves out of an HTTP/1.1 client's 103 a link Node's writer refuses, not the others", async () => {
    // Node's writer refused the whole 103 for one link with a quoted space; the origin's writer
    // has the same rule, so the field is sent raw.
    origin.handler = (_req, res) => {
      const socket = res.socket!;
      socket.write('HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload; as=style, </h.jpg>; rel=preload; imagesrcset="a.jpg 1x, b.jpg 2x"\r\n\r\n', () => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('after the hints\n');
      });
    };
    try {
      const { text } = await rawRequest(router.httpsPort, http1('1.1'), { tls: true, untilClose: true });
      const [hints] = text.split(/\r\n\r\n(?=HTTP\/1\.1 200)/);
      expect(hints).toMatch(/^HTTP\/1\.1 103 Early Hints\r\n/);
      expect(hints).toMatch(/^link: <\/a\.css>; rel=preload; as=style$/im);
      expect(hints).not.toMatch(/h\.jpg/);
      expect(text).toContain('after the hints\n');
    } finally {
      origin.handler = echo;
    }
  });

  it('sends no 103 to an HTTP/1.0 client (RFC 9110 §15.2), only the answer', async () => {
    origin.handler = hintingOrigin(1, HINT);
    try {
      const { text, status } = await rawRequest(router.httpsPort, http1('1.0'), { tls: true, untilClose: true });
      expect(status).toBe(200);
      expect(text).not.toMatch(/ 103 /);
      expect(text).toContain('after the hints\n');
    } finally {
      origin.handler = echo;
    }
  });

  it('passes on 103 Early Hints to an HTTP/2 client as an interim HEADERS frame', async () => {
    origin.handler = hintingOrigin(1, HINT);
    const session = http2Connect(`https://${HOST}:${router.httpsPort}`, { rejectUnauthorized: false, host: '127.0.0.1', servername: HOST } as never);
    try {
      session.on('error', () => undefined);
      const stream = session.request({ ':path': '/hints', ':method': 'GET', ':authority': HOST }, { endStream: true });
      const interim: Array<Record<string, unknown>> = [];
      stream.on('headers', (headers) => interim.push(headers));
      const response = await new Promise<Record<string, unknown>>((resolve, reject) => {
        stream.on('response', resolve);
        stream.on('error', reject);
      });
      stream.setEncoding('utf8');
      let body = '';
      for await (const chunk of stream) body += chunk as string;
      expect(interim).toHaveLength(1);
      expect(interim[0]![':status']).toBe(103);
      expect(interim[0]!.link).toBe('</style.css>; rel=preload; as=style');
      expect(interim[0]!['x-hint-extra']).toBeUndefined();
      expect(response[':status']).toBe(200);
      expect(response.link).toBeUndefined();
      expect(body).toBe('after the hints\n');
    } finally {
      session.close();
      origin.handler = echo;
    }
  });

  it('aborts the upstream request when the client goes away', async () => {
    origin.handler = () => undefined; // never answers
    try {
      const before = origin.requests.length;
      const res = await rawRequest(router.httpsPort, [`GET /hang HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`], { tls: true, timeoutMs: 300 });
      expect(res.closedByServer).toBe(false); // we hung up
      const seen = origin.requests[before]!;
      await until('the origin sees its request aborted', () => seen.aborted, 3_000);
      const line = router.access.findLast((a) => a.path === '/hang')!;
      expect(line.status).toBe(499);
    } finally {
      origin.handler = echo;
    }
  });

  it('aborts the upstream request at once when an HTTP/2 client that stopped reading resets with NO_ERROR', async () => {
    // Seen in review: a stream reset while its writes were held back was aborted but never closed
    // (Node kept it for the data it could not send), so the exchange held the region's request,
    // its gate slot and the client's quota until the 30 s send timeout, and logged send_timeout.
    const chunk = Buffer.alloc(256 * 1024, 0x61);
    origin.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const timer = setInterval(() => res.write(chunk), 50);
      res.on('close', () => clearInterval(timer));
    };
    const session = http2Connect(`https://${HOST}:${router.httpsPort}`, { rejectUnauthorized: false, host: '127.0.0.1', servername: HOST } as never);
    try {
      session.on('error', () => undefined);
      const before = origin.requests.length;
      const stream = session.request({ ':path': '/held-back', ':method': 'GET', ':authority': HOST }, { endStream: true });
      stream.on('error', () => undefined);
      stream.pause(); // reads nothing: the router's writes fill the stream's window and wait
      await until('the region is streaming', () => origin.requests.length > before);
      await new Promise((resolve) => setTimeout(resolve, 400));
      stream.close(constants.NGHTTP2_NO_ERROR);
      const seen = origin.requests[before]!;
      await until('the region sees its request cut', () => seen.aborted, 3_000);
      await until('the access line', () => router.access.some((a) => a.path === '/held-back'), 3_000);
      expect(router.access.findLast((a) => a.path === '/held-back')).toMatchObject({ status: 499, error: 'client_closed' });
    } finally {
      session.destroy();
      origin.handler = echo;
    }
  });

  it('moves 100 MB each way with flat memory', async () => {
    const SIZE = 100 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 97);
    origin.recordBodies = false;
    let uploaded = 0;
    origin.handler = (req, res) => {
      if (req.method === 'POST') {
        req.on('data', (c: Buffer) => (uploaded += c.length));
        req.on('end', () => res.end(String(uploaded)));
        return;
      }
      res.writeHead(200, { 'content-length': SIZE });
      let sent = 0;
      const pump = () => {
        while (sent < SIZE) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    };
    try {
      global.gc?.();
      const baseline = process.memoryUsage().rss;
      let peak = baseline;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
      try {
        const down = await request(`https://${HOST}:${router.httpsPort}/big`, { dispatcher: agent });
        let received = 0;
        for await (const c of down.body) received += (c as Buffer).length;
        expect(received).toBe(SIZE);

        async function* upload() {
          for (let sent = 0; sent < SIZE; sent += chunk.length) yield chunk;
        }
        const up = await request(`https://${HOST}:${router.httpsPort}/big`, {
          dispatcher: agent,
          method: 'POST',
          body: upload() as unknown as NonNullable<Parameters<typeof request>[1]>['body'],
          headers: { 'content-length': String(SIZE) },
        });
        expect(await up.body.text()).toBe(String(SIZE));
      } finally {
        clearInterval(sampler);
      }
      // Router, origin and client share this process: 100 MB buffered anywhere would show.
      expect(peak - baseline).toBeLessThan(64 * 1024 * 1024);
    } finally {
      origin.recordBodies = true;
      origin.handler = echo;
    }
  }, 60_000);

  it('still answers after all that', async () => {
    expect((await get(agent, router.httpsPort, '/')).status).toBe(200);
  });
});
