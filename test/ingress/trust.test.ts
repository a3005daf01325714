import { once } from 'node:events';
import { connect as http2Connect, constants as http2Constants } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOST } from '../support/clients.js';
import { TestOrigin } from '../support/origin.js';
import { rawRequest } from '../support/raw.js';
import { startTestRouter, type TestRouter } from '../support/router.js';
import { until } from '../support/until.js';

const head = (lines: string[]) => `${lines.join('\r\n')}\r\n\r\n`;

/** A router trusting 127.0.0.2 as a proxy, before fra and nyc origins, for the enclosing describe; read fields inside tests. */
function behindProxy(flags: string[]): { fra: TestOrigin; nyc: TestOrigin; router: TestRouter } {
  const set = {} as { fra: TestOrigin; nyc: TestOrigin; router: TestRouter };
  beforeAll(async () => {
    set.fra = await TestOrigin.start('fra');
    set.nyc = await TestOrigin.start('nyc');
    set.router = await startTestRouter({ fra: set.fra.url, nyc: set.nyc.url }, ['--trusted-proxies', '127.0.0.2/32', ...flags]);
  });
  afterAll(async () => {
    await set.router.close();
    await set.fra.kill();
    await set.nyc.kill();
  });
  return set;
}

describe('trusted proxies', () => {
  // Only 127.0.0.2 is a trusted proxy.
  const p = behindProxy([]);

  it('believes X-Forwarded-For from a trusted proxy: the client is located from it and the chain is extended', async () => {
    const res = await rawRequest(p.router.httpsPort, [head(['GET /via-lb HTTP/1.1', `Host: ${HOST}`, 'X-Forwarded-For: 127.8.0.9', 'Connection: close'])], {
      tls: true,
      localAddress: '127.0.0.2',
    });
    expect(res.status).toBe(200);
    expect(res.text).toMatch(/x-edge-region: fra/i); // 127.8.0.9 is London
    expect(p.fra.requests.at(-1)!.headers['x-forwarded-for']).toBe('127.8.0.9, 127.0.0.2');
  });

  it("reads only X-Forwarded-For, by default: a Forwarded header the client sent through the proxy chooses nothing", async () => {
    const res = await rawRequest(p.router.httpsPort, [head(['GET /both HTTP/1.1', `Host: ${HOST}`, 'Forwarded: for=127.3.0.9', 'X-Forwarded-For: 127.8.0.9', 'Connection: close'])], {
      tls: true,
      localAddress: '127.0.0.2',
    });
    expect(res.text).toMatch(/x-edge-region: fra/i); // London (X-Forwarded-For), not Toronto (Forwarded)
    const seen = p.fra.requests.at(-1)!.headers;
    expect([seen['x-real-ip'], seen['x-forwarded-for']]).toEqual(['127.8.0.9', '127.8.0.9, 127.0.0.2']);
    expect(seen.forwarded).toMatch(/^for=127\.0\.0\.2;/); // this hop alone
  });

  it('logs a request refused before routing (a reserved path) with the client the trusted proxy names, not the proxy', async () => {
    const res = await rawRequest(p.router.httpsPort, [head(['GET /_edge/probe-me HTTP/1.1', `Host: ${HOST}`, 'X-Forwarded-For: 127.8.0.9', 'Connection: close'])], {
      tls: true,
      localAddress: '127.0.0.2',
    });
    expect(res.status).toBe(404);
    const requestId = /^x-request-id: (\S+)\r$/im.exec(res.text)![1];
    await until('logged', () => p.router.access.some((a) => a.requestId === requestId));
    expect(p.router.access.find((a) => a.requestId === requestId)).toMatchObject({ status: 404, clientIp: '127.8.0.9' });
  });

  it('logs an HTTP/2 stream its client reset before it was looked at with the client the trusted proxy names', async () => {
    const session = http2Connect(`https://127.0.0.1:${p.router.httpsPort}`, { rejectUnauthorized: false, servername: HOST, localAddress: '127.0.0.2' } as never);
    session.on('error', () => undefined);
    try {
      await once(session, 'connect');
      // HEADERS and RST_STREAM in one write: the router meets the stream already reset (rapid reset).
      const stream = session.request({ ':path': '/reset-early', ':authority': HOST, 'x-forwarded-for': '127.8.0.9' });
      stream.on('error', () => undefined);
      stream.close(http2Constants.NGHTTP2_CANCEL);
      await until('logged', () => p.router.access.some((a) => a.path === '/reset-early'));
      expect(p.router.access.find((a) => a.path === '/reset-early')).toMatchObject({ status: 499, error: 'client_closed', fn: null, clientIp: '127.8.0.9' });
    } finally {
      session.close();
    }
  });

  it('ignores the same header from anyone else', async () => {
    const res = await rawRequest(p.router.httpsPort, [head(['GET /spoofed HTTP/1.1', `Host: ${HOST}`, 'X-Forwarded-For: 127.8.0.9', 'Connection: close'])], {
      tls: true,
      localAddress: '127.0.0.3',
    });
    expect(res.text).toMatch(/x-edge-region: nyc/i); // loopback: default region
    expect(p.nyc.requests.at(-1)!.headers['x-forwarded-for']).toBe('127.0.0.3');
  });
});

describe('trusted proxies speaking Forwarded (--client-address-header forwarded)', () => {
  const p = behindProxy(['--client-address-header', 'forwarded']);

  it('locates the client from Forwarded and extends it; X-Forwarded-For is the client\'s and is replaced', async () => {
    const res = await rawRequest(p.router.httpsPort, [head(['GET /both HTTP/1.1', `Host: ${HOST}`, 'Forwarded: for=127.3.0.9', 'X-Forwarded-For: 127.8.0.9', 'Connection: close'])], {
      tls: true,
      localAddress: '127.0.0.2',
    });
    expect(res.text).toMatch(/x-edge-region: nyc/i); // Toronto
    const seen = p.nyc.requests.at(-1)!.headers;
    expect([seen['x-real-ip'], seen['x-forwarded-for']]).toEqual(['127.3.0.9', '127.0.0.2']);
    expect(seen.forwarded).toMatch(/^for=127\.3\.0\.9, for=127\.0\.0\.2;/);
  });
});

describe('TLS policy on the public listener', () => {
  let router: TestRouter;
  beforeAll(async () => {
    router = await startTestRouter({});
  });
  afterAll(async () => router.close());

  const handshake = (options: Record<string, unknown>) =>
    new Promise<string>((resolve) => {
      const socket = tlsConnect({ port: router.httpsPort, host: '127.0.0.1', servername: HOST, rejectUnauthorized: false, ...options }, () => {
        resolve(`${socket.getProtocol()} ${socket.getCipher().name}`);
        socket.destroy();
      });
      socket.on('error', (e: NodeJS.ErrnoException) => resolve(`refused ${e.code ?? e.message}`));
    });

  it.each([
    ['TLS 1.3', { minVersion: 'TLSv1.3' }, /^TLSv1\.3 TLS_/],
    ['TLS 1.2 with AES-GCM', { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' }, /^TLSv1\.2 ECDHE-ECDSA-AES128-GCM-SHA256/],
    ['TLS 1.2 with a CBC suite', { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA' }, /^refused/],
    ['TLS 1.1', { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }, /^refused/],
  ])('%s', async (_name, options, expected) => {
    expect(await handshake(options)).toMatch(expected);
  });
});

describe('PROXY protocol on the public listeners', () => {
  let fra: TestOrigin;
  let router: TestRouter;
  beforeAll(async () => {
    fra = await TestOrigin.start('fra');
    // The balancer is 127.0.0.1; 127.0.0.2 stands for anyone else who can reach the port.
    router = await startTestRouter({ fra: fra.url, nyc: fra.url }, ['--proxy-protocol', '--proxy-protocol-from', '127.0.0.1/32', '--plain-http', 'serve']);
  });
  afterAll(async () => {
    await router.close();
    await fra.kill();
  });

  it('takes the client address from a v1 header (plain HTTP)', async () => {
    const socket = netConnect(router.httpPort, '127.0.0.1');
    await once(socket, 'connect');
    socket.write(`PROXY TCP4 127.8.0.77 10.0.0.1 51000 80\r\n${head(['GET /pp HTTP/1.1', `Host: ${HOST}`, 'Connection: close'])}`);
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString()));
    await once(socket, 'close');
    expect(text).toMatch(/^HTTP\/1\.1 200/);
    expect(text).toMatch(/x-edge-region: fra/i);
    expect(fra.requests.at(-1)!.headers['x-forwarded-for']).toBe('127.8.0.77');
  });

  it("closes a connection from outside --proxy-protocol-from, however valid its header: it cannot choose its client address", async () => {
    const before = fra.requests.length;
    const socket = netConnect({ port: router.httpPort, host: '127.0.0.1', localAddress: '127.0.0.2' });
    await once(socket, 'connect');
    socket.write(`PROXY TCP4 127.8.0.78 10.0.0.1 51000 80\r\n${head(['GET /spoof HTTP/1.1', `Host: ${HOST}`, 'Connection: close'])}`);
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString()));
    socket.on('error', () => undefined); // a reset is as good as a close here
    await once(socket, 'close');
    expect(text).toBe('');
    expect(fra.requests.length).toBe(before);
  });

  it('closes a connection that does not start with a PROXY header', async () => {
    const res = await rawRequest(router.httpPort, [head(['GET / HTTP/1.1', `Host: ${HOST}`])], { untilClose: true });
    expect(res.status).toBeNull();
    expect(res.closedByServer).toBe(true);
  });
});
