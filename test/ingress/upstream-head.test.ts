import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOST } from '../support/clients.js';
import { rawRequest } from '../support/raw.js';
import { startTestRouter, type TestRouter } from '../support/router.js';
import { until } from '../support/until.js';

/**
 * The request head a region receives, byte for byte: names, values, their case and order, as
 * undici writes them. Tests elsewhere read what Node's parser makes of it; this one reads the
 * bytes, so that work on how the headers are built or handed to undici cannot change the wire.
 */

/** A region speaking raw HTTP/1.1: records each request head (not the probes') and answers 200. */
class RawRegion {
  readonly heads: string[] = [];
  private readonly sockets = new Set<Socket>();
  private constructor(private readonly server: Server) {}

  static async start(): Promise<RawRegion> {
    const server = createServer();
    const region = new RawRegion(server);
    server.on('connection', (socket: Socket) => {
      region.sockets.add(socket);
      socket.on('close', () => region.sockets.delete(socket));
      let buffered = '';
      socket.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('latin1');
        for (let end = buffered.indexOf('\r\n\r\n'); end !== -1; end = buffered.indexOf('\r\n\r\n')) {
          const head = buffered.slice(0, end + 4);
          buffered = buffered.slice(end + 4); // the test's requests carry no body
          if (!head.startsWith('GET /healthz ')) region.heads.push(head);
          socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok');
        }
      });
      socket.on('error', () => undefined);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return region;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** The value of the response field `name` in a raw HTTP/1 answer. */
function responseField(text: string, name: string): string {
  const match = new RegExp(`\r\n${name}: ([^\r]*)\r\n`, 'i').exec(text.slice(0, text.indexOf('\r\n\r\n') + 2));
  if (match === null) throw new Error(`no ${name} in ${text}`);
  return match[1]!;
}

describe("the upstream request head, as the region's socket reads it", () => {
  let region: RawRegion;
  let router: TestRouter;

  beforeAll(async () => {
    region = await RawRegion.start();
    router = await startTestRouter({ nyc: region.url });
  });
  afterAll(async () => {
    await router.close();
    await region.close();
  });

  const send = async (head: string): Promise<{ head: string; answer: string }> => {
    const before = region.heads.length;
    const res = await rawRequest(router.httpsPort, [head], { tls: true });
    expect(res.status).toBe(200);
    await until('the region read the head', () => region.heads.length > before);
    return { head: region.heads.at(-1)!, answer: res.text };
  };

  it('carries a new request id and trace, built by the router, in place', async () => {
    for (let i = 0; i < 3; i++) {
      const { head, answer } = await send(`GET /a/b?c=1 HTTP/1.1\r\nHost: ${HOST}\r\nUser-Agent: head-test/1\r\n\r\n`);
      const requestId = responseField(answer, 'x-request-id');
      const traceparent = /\r\ntraceparent: ([^\r]*)\r\n/.exec(head)?.[1] ?? '';
      expect(requestId).toMatch(/^[0-9a-f]{32}$/);
      expect(traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
      await until('the access line', () => router.access.some((a) => a.requestId === requestId));
      expect(router.access.find((a) => a.requestId === requestId)!.traceId).toBe(traceparent.slice(3, 35));
      expect(head).toBe(
        'GET /a/b?c=1 HTTP/1.1\r\n' +
          `host: ${HOST}\r\n` +
          'connection: keep-alive\r\n' +
          'user-agent: head-test/1\r\n' +
          'x-real-ip: 127.0.0.1\r\n' +
          'x-forwarded-for: 127.0.0.1\r\n' +
          'x-forwarded-proto: https\r\n' +
          `x-forwarded-host: ${HOST}\r\n` +
          `forwarded: for=127.0.0.1;host="${HOST}";proto=https\r\n` +
          `x-request-id: ${requestId}\r\n` +
          `traceparent: ${traceparent}\r\n` +
          'x-edge-fn: echo\r\n' +
          'x-edge-org: demo\r\n' +
          '\r\n',
      );
    }
  });

  it("carries a client's own id, trace and fields as a browser sends them, and drops what the edge owns", async () => {
    const client =
      `GET /page HTTP/1.1\r\nHost: ${HOST}\r\nAccept: text/html\r\nAccept-Language: en-GB,en;q=0.9\r\nCookie: a=1\r\n` +
      'X-Request-Id: client-id-1\r\nTraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nTracestate: k=v\r\n' +
      'X-Edge-Org: spoof\r\nX-Forwarded-For: 6.6.6.6\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\nSec-Fetch-Mode: navigate\r\n\r\n';
    for (let i = 0; i < 2; i++) {
      const { head } = await send(client);
      expect(head).toBe(
        'GET /page HTTP/1.1\r\n' +
          `host: ${HOST}\r\n` +
          'connection: keep-alive\r\n' +
          'accept: text/html\r\n' +
          'accept-language: en-GB,en;q=0.9\r\n' +
          'cookie: a=1\r\n' +
          'tracestate: k=v\r\n' +
          'sec-fetch-mode: navigate\r\n' +
          'x-real-ip: 127.0.0.1\r\n' +
          'x-forwarded-for: 127.0.0.1\r\n' +
          'x-forwarded-proto: https\r\n' +
          `x-forwarded-host: ${HOST}\r\n` +
          `forwarded: for=127.0.0.1;host="${HOST}";proto=https\r\n` +
          'x-request-id: client-id-1\r\n' +
          'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n' +
          'x-edge-fn: echo\r\n' +
          'x-edge-org: demo\r\n' +
          '\r\n',
      );
    }
  });
});
