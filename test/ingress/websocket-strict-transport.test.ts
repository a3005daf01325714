/**
 * Whose Strict-Transport-Security a WebSocket upgrade's answer carries, through a real router over
 * TLS, by the rule forwarded answers follow (strict-transport.ts): on the zone's names the
 * router's alone, on a custom domain the function's own, with the router's added only when it
 * sends none. Both answers a region gives an upgrade: its 101 (over HTTP/2 the tunnel's 200, an
 * answer on an HTTPS origin too) and an answer that refuses it (403), over HTTP/1.1 and HTTP/2
 * (extended CONNECT, RFC 8441). The router's own refusal of an upgrade follows its other own
 * answers: the router's under the zone and on a host that names no function, none on a custom
 * domain (no function spoke in it, and the router's would undo an owner's `max-age=0`).
 */
import type { IncomingMessage } from 'node:http';
import { connect as http2Connect, type IncomingHttpHeaders } from 'node:http2';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { connect as netConnect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOST } from '../support/clients.js';
import { TestOrigin } from '../support/origin.js';
import { startTestRouter, withCustomDomains, type TestRouter } from '../support/router.js';
import { serverOf, webSocketAccept } from '../support/websocket-origin.js';

const ROUTER_HSTS = 'max-age=31536000';
const CUSTOM = 'shop.example.com';
/** A custom domain mapped under the zone: still the platform's name. */
const CUSTOM_UNDER_ZONE = 'shop.telnyxcompute.com';
const ENDING = 'max-age=0';
const PRELOAD = 'max-age=63072000; includeSubDomains; preload';
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

const acceptOf = webSocketAccept;

/**
 * The function's side of an upgrade: /accept switches (101), /refuse answers 403; either with its
 * own HSTS when the query names one (?sts=…, and a second field with &twice), else without.
 */
function answerUpgrades(origin: TestOrigin): void {
  serverOf(origin).on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    socket.on('error', () => undefined); // the client leaves once it has the head
    const url = new URL(req.url ?? '/', 'http://function');
    let own = '';
    const sts = url.searchParams.get('sts');
    if (sts !== null) own += `Strict-Transport-Security: ${sts}\r\n`;
    if (url.searchParams.has('twice')) own += `strict-transport-security: ${ENDING}\r\n`;
    if (url.pathname === '/accept') {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptOf(req.headers['sec-websocket-key'])}\r\n${own}\r\n`);
    } else {
      socket.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\n${own}content-length: 2\r\nconnection: close\r\n\r\nno`);
    }
  });
}

const pathOf = (kind: 'accept' | 'refuse', sts?: string, twice = false) =>
  `/${kind}${sts === undefined ? '' : `?sts=${encodeURIComponent(sts)}${twice ? '&twice' : ''}`}`;

/** An HTTP/1.1 upgrade (over TLS, or plain TCP with `plain`): the answer's status and every Strict-Transport-Security line, in order. */
function upgradeH1(port: number, path: string, host = HOST, plain = false): Promise<{ status: number; sts: string[] }> {
  return new Promise((resolve, reject) => {
    const request = `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${KEY}\r\n\r\n`;
    const socket = plain
      ? netConnect({ port, host: '127.0.0.1' }, () => socket.write(request))
      : tlsConnect({ port, host: '127.0.0.1', servername: host, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => socket.write(request));
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.destroy();
      const head = text.slice(0, end);
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]), sts: [...head.matchAll(/^strict-transport-security: ?(.*)$/gim)].map((m) => m[1]!.trim()) });
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`closed before a head; got ${JSON.stringify(text)}`)));
  });
}

/** An extended CONNECT (RFC 8441) for a WebSocket: the answer's head (Node joins repeated fields with ", "). */
async function upgradeH2(port: number, path: string, host = HOST, protocol = 'websocket'): Promise<IncomingHttpHeaders> {
  const session = http2Connect(`https://${host}:${port}`, { rejectUnauthorized: false, host: '127.0.0.1', servername: host } as never);
  session.on('error', () => undefined);
  try {
    await new Promise<void>((resolve, reject) => {
      session.once('remoteSettings', () => resolve());
      session.once('error', reject);
    });
    const stream = session.request({ ':method': 'CONNECT', ':protocol': protocol, ':scheme': 'https', ':path': path, ':authority': host, 'sec-websocket-version': '13' });
    stream.on('error', () => undefined);
    return await new Promise<IncomingHttpHeaders>((resolve, reject) => {
      stream.once('response', resolve);
      stream.once('close', () => reject(new Error(`stream closed before a response (code ${stream.rstCode})`)));
    });
  } finally {
    session.destroy();
  }
}

const customDomains = withCustomDomains({ [CUSTOM]: { fn: 'echo', org: 'demo' }, [CUSTOM_UNDER_ZONE]: { fn: 'echo', org: 'demo' } });

describe("Strict-Transport-Security on WebSocket upgrades: the router's on the zone, the custom domain owner's on theirs (real TLS)", () => {
  let origin: TestOrigin;
  let router: TestRouter;

  beforeAll(async () => {
    origin = await TestOrigin.start('nyc');
    answerUpgrades(origin);
    router = await startTestRouter({ nyc: origin.url }, ['--plain-http', 'serve'], {}, undefined, customDomains);
  });
  afterAll(async () => {
    await router.close();
    await origin.kill();
  });

  it("on a zone host sends the router's alone on the 101 and on a refusal, over HTTP/1.1: a function cannot end HSTS there", async () => {
    expect(await upgradeH1(router.httpsPort, pathOf('accept', ENDING))).toEqual({ status: 101, sts: [ROUTER_HSTS] });
    expect(await upgradeH1(router.httpsPort, pathOf('accept', PRELOAD, true))).toEqual({ status: 101, sts: [ROUTER_HSTS] });
    expect(await upgradeH1(router.httpsPort, pathOf('accept'))).toEqual({ status: 101, sts: [ROUTER_HSTS] });
    expect(await upgradeH1(router.httpsPort, pathOf('refuse', ENDING))).toEqual({ status: 403, sts: [ROUTER_HSTS] });
    expect(await upgradeH1(router.httpsPort, pathOf('refuse'))).toEqual({ status: 403, sts: [ROUTER_HSTS] });
  });

  it("on a zone host sends the router's alone on the tunnel's 200 and on a refusal, over HTTP/2", async () => {
    expect(await upgradeH2(router.httpsPort, pathOf('accept', ENDING))).toMatchObject({ ':status': 200, 'strict-transport-security': ROUTER_HSTS });
    expect(await upgradeH2(router.httpsPort, pathOf('accept', PRELOAD, true))).toMatchObject({ ':status': 200, 'strict-transport-security': ROUTER_HSTS });
    expect(await upgradeH2(router.httpsPort, pathOf('accept'))).toMatchObject({ ':status': 200, 'strict-transport-security': ROUTER_HSTS });
    expect(await upgradeH2(router.httpsPort, pathOf('refuse', ENDING))).toMatchObject({ ':status': 403, 'strict-transport-security': ROUTER_HSTS });
    expect(await upgradeH2(router.httpsPort, pathOf('refuse'))).toMatchObject({ ':status': 403, 'strict-transport-security': ROUTER_HSTS });
  });

  it("on a custom domain passes the function's own and adds none of the router's, over HTTP/1.1 and HTTP/2", async () => {
    expect(await upgradeH1(router.httpsPort, pathOf('accept', PRELOAD), CUSTOM)).toEqual({ status: 101, sts: [PRELOAD] });
    expect(await upgradeH1(router.httpsPort, pathOf('refuse', ENDING), CUSTOM)).toEqual({ status: 403, sts: [ENDING] });
    expect(await upgradeH2(router.httpsPort, pathOf('accept', PRELOAD), CUSTOM)).toMatchObject({ ':status': 200, 'strict-transport-security': PRELOAD });
    expect(await upgradeH2(router.httpsPort, pathOf('refuse', ENDING), CUSTOM)).toMatchObject({ ':status': 403, 'strict-transport-security': ENDING });
  });

  it("on a custom domain adds the router's when the function sends none, over HTTP/1.1 and HTTP/2", async () => {
    expect(await upgradeH1(router.httpsPort, pathOf('accept'), CUSTOM)).toEqual({ status: 101, sts: [ROUTER_HSTS] });
    expect(await upgradeH1(router.httpsPort, pathOf('refuse'), CUSTOM)).toEqual({ status: 403, sts: [ROUTER_HSTS] });
    expect(await upgradeH2(router.httpsPort, pathOf('accept'), CUSTOM)).toMatchObject({ ':status': 200, 'strict-transport-security': ROUTER_HSTS });
    expect(await upgradeH2(router.httpsPort, pathOf('refuse'), CUSTOM)).toMatchObject({ ':status': 403, 'strict-transport-security': ROUTER_HSTS });
  });

  it("treats a custom domain mapped under the zone as the platform's name: the router's alone", async () => {
    expect(await upgradeH1(router.httpsPort, pathOf('accept', ENDING), CUSTOM_UNDER_ZONE)).toEqual({ status: 101, sts: [ROUTER_HSTS] });
    expect(await upgradeH2(router.httpsPort, pathOf('refuse', ENDING), CUSTOM_UNDER_ZONE)).toMatchObject({ ':status': 403, 'strict-transport-security': ROUTER_HSTS });
  });

  it("sends none on its own refusal of an upgrade on a custom domain, and the router's under the zone, over HTTP/1.1 and HTTP/2", async () => {
    const refusedH1 = await new Promise<string>((resolve, reject) => {
      const socket = tlsConnect({ port: router.httpsPort, host: '127.0.0.1', servername: CUSTOM, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () =>
        socket.write(`GET /accept HTTP/1.1\r\nHost: ${CUSTOM}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`), // no Sec-WebSocket-Key
      );
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    expect(refusedH1).toMatch(/^HTTP\/1\.1 400 /);
    expect([...refusedH1.slice(0, refusedH1.indexOf('\r\n\r\n')).matchAll(/^strict-transport-security: ?(.*)$/gim)].map((m) => m[1]!.trim())).toEqual([]);
    expect(await upgradeH2(router.httpsPort, '/accept', HOST, 'webtransport')).toMatchObject({ ':status': 400, 'strict-transport-security': ROUTER_HSTS });
    const customH2 = await upgradeH2(router.httpsPort, '/accept', CUSTOM, 'webtransport');
    expect(customH2[':status']).toBe(400);
    expect(customH2['strict-transport-security']).toBeUndefined();
  });

  it("over plain HTTP (--plain-http serve) adds none and passes the function's as it is", async () => {
    expect(await upgradeH1(router.httpPort, pathOf('accept', ENDING), HOST, true)).toEqual({ status: 101, sts: [ENDING] });
    expect(await upgradeH1(router.httpPort, pathOf('refuse'), HOST, true)).toEqual({ status: 403, sts: [] });
  });
});

describe("Strict-Transport-Security on the router's own answers to upgrades: the router's on the zone, none on a custom domain (real TLS)", () => {
  let router: TestRouter;

  beforeAll(async () => {
    // Every region refuses connections: none has an origin.
    router = await startTestRouter({}, [], {}, [], customDomains);
  });
  afterAll(async () => {
    await router.close();
  });

  it('on a custom domain sends none when no region takes the upgrade (502/503), over HTTP/1.1 and HTTP/2', async () => {
    const h1 = await upgradeH1(router.httpsPort, '/accept', CUSTOM);
    expect([502, 503]).toContain(h1.status);
    expect(h1.sts).toEqual([]);
    const h2 = await upgradeH2(router.httpsPort, '/accept', CUSTOM);
    expect([502, 503]).toContain(h2[':status']);
    expect(h2['strict-transport-security']).toBeUndefined();
  });

  it("under the zone sends the router's when no region takes the upgrade, a custom domain mapped there included", async () => {
    for (const host of [HOST, CUSTOM_UNDER_ZONE]) {
      const h1 = await upgradeH1(router.httpsPort, '/accept', host);
      expect([502, 503]).toContain(h1.status);
      expect(h1.sts).toEqual([ROUTER_HSTS]);
      const h2 = await upgradeH2(router.httpsPort, '/accept', host);
      expect([502, 503]).toContain(h2[':status']);
      expect(h2['strict-transport-security']).toBe(ROUTER_HSTS);
    }
  });

  it("on a host that names no function (404 unknown_host) sends the router's", async () => {
    expect(await upgradeH1(router.httpsPort, '/accept', 'nobody.example.org')).toEqual({ status: 404, sts: [ROUTER_HSTS] });
    expect(await upgradeH2(router.httpsPort, '/accept', 'nobody.example.org')).toMatchObject({ ':status': 404, 'strict-transport-security': ROUTER_HSTS });
  });
});
