/**
 * Whose Strict-Transport-Security a function's answer carries, through a real router over TLS:
 * the platform owns the zone, so on `<fn>-<org>.<zone>` the router's policy alone is sent (a
 * function must not end HSTS, max-age=0, on the platform's names); a custom domain's owner decides
 * on its own domain, so the function's header stands there and the router's fills in only when it
 * sends none. With no policy of the router's, a function's header passes as it is. The router's own
 * answers (its errors) carry the router's policy under the zone and on hosts that named no
 * function, and none on a custom domain: no function spoke in them, and the router's would undo
 * an owner's `max-age=0` there.
 */
import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getH2, HOST } from '../support/clients.js';
import { TestOrigin } from '../support/origin.js';
import { rawRequest } from '../support/raw.js';
import { startTestRouter, withCustomDomains, type TestRouter } from '../support/router.js';

const ROUTER_HSTS = 'max-age=31536000';
const CUSTOM = 'shop.example.com';
/** A custom domain mapped under the zone: still the platform's name. */
const CUSTOM_UNDER_ZONE = 'shop.telnyxcompute.com';
/** A custom domain mapped to a function the directory lacks. */
const MISSING = 'gone.example.com';
const ENDING = 'max-age=0';
const PRELOAD = 'max-age=63072000; includeSubDomains; preload';

/** The function: /own answers with its own HSTS (the value in ?v=, twice with &twice), anything else without. */
function answer(req: { url?: string }, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://function');
  const fields: string[] = ['content-type', 'text/plain'];
  if (url.pathname === '/cookie') fields.push('Set-Cookie', `sid=x; Domain=${url.searchParams.get('domain') ?? ''}; Path=/`, 'Set-Cookie', 'plain=1');
  if (url.pathname === '/own') {
    fields.push('Strict-Transport-Security', url.searchParams.get('v') ?? ENDING);
    if (url.searchParams.has('twice')) fields.push('strict-transport-security', ENDING);
  }
  res.writeHead(200, fields);
  res.end('ok');
}

/** Every Strict-Transport-Security line of an HTTP/1.1 answer, in order. */
async function stsLinesH1(port: number, path: string, host = HOST): Promise<string[]> {
  const res = await rawRequest(port, [`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`], { tls: true, servername: host });
  expect(res.status).toBe(200);
  const head = res.text.slice(0, res.text.indexOf('\r\n\r\n'));
  return [...head.matchAll(/^strict-transport-security: ?(.*)$/gim)].map((m) => m[1]!.trim());
}

/** An HTTP/1.1 answer's status and every Strict-Transport-Security line, whatever the status (`body`: a POST of that length). */
async function answerH1(port: number, host: string, body?: string): Promise<{ status: number | null; sts: string[] }> {
  const head = body === undefined ? `GET /anything HTTP/1.1\r\nHost: ${host}\r\n` : `POST /anything HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${body.length}\r\n`;
  const res = await rawRequest(port, [`${head}Connection: close\r\n\r\n${body ?? ''}`], { tls: true, servername: host });
  const text = res.text.slice(0, res.text.indexOf('\r\n\r\n'));
  return { status: res.status, sts: [...text.matchAll(/^strict-transport-security: ?(.*)$/gim)].map((m) => m[1]!.trim()) };
}

/** The Strict-Transport-Security field of an HTTP/2 answer (Node joins repeated fields with ", "). */
async function stsH2(port: number, path: string, host = HOST): Promise<string | undefined> {
  const res = await getH2(port, path, host);
  expect(res.alpn).toBe('h2');
  expect(res.headers[':status']).toBe(200);
  return res.headers['strict-transport-security'] as string | undefined;
}

const customDomains = withCustomDomains({ [CUSTOM]: { fn: 'echo', org: 'demo' }, [CUSTOM_UNDER_ZONE]: { fn: 'echo', org: 'demo' } });

describe("Strict-Transport-Security: the router's on the zone, the custom domain owner's on theirs (real TLS)", () => {
  let origin: TestOrigin;
  let router: TestRouter;

  beforeAll(async () => {
    origin = await TestOrigin.start('nyc');
    origin.handler = answer;
    router = await startTestRouter({ nyc: origin.url }, ['--plain-http', 'serve'], {}, undefined, customDomains);
  });
  afterAll(async () => {
    await router.close();
    await origin.kill();
  });

  it("on a zone host sends the router's alone, over HTTP/1.1: a function cannot end HSTS there (max-age=0)", async () => {
    expect(await stsLinesH1(router.httpsPort, '/own')).toEqual([ROUTER_HSTS]);
    expect(await stsLinesH1(router.httpsPort, `/own?v=${encodeURIComponent(PRELOAD)}&twice`)).toEqual([ROUTER_HSTS]);
    expect(await stsLinesH1(router.httpsPort, '/plain')).toEqual([ROUTER_HSTS]);
  });

  it("confines a function's cookies to its own name on a zone host (no Domain of the zone: every tenant's names), not on a custom domain", async () => {
    const cookies = async (host: string, domain: string) => {
      const res = await rawRequest(router.httpsPort, [`GET /cookie?domain=${domain} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`], { tls: true, servername: host });
      const head = res.text.slice(0, res.text.indexOf('\r\n\r\n'));
      return [...head.matchAll(/^set-cookie: ?(.*)$/gim)].map((m) => m[1]!.trim());
    };
    expect(await cookies(HOST, '.telnyxcompute.com')).toEqual(['sid=x; Path=/', 'plain=1']);
    expect(await cookies(HOST, HOST)).toEqual([`sid=x; Domain=${HOST}; Path=/`, 'plain=1']);
    expect(await cookies(CUSTOM, 'example.com')).toEqual(['sid=x; Domain=example.com; Path=/', 'plain=1']);
    const h2 = await getH2(router.httpsPort, '/cookie?domain=telnyxcompute.com', HOST);
    expect(h2.headers['set-cookie']).toEqual(['sid=x; Path=/', 'plain=1']);
  });

  it("on a zone host sends the router's alone, over HTTP/2", async () => {
    expect(await stsH2(router.httpsPort, '/own')).toBe(ROUTER_HSTS);
    expect(await stsH2(router.httpsPort, '/own?twice')).toBe(ROUTER_HSTS);
    expect(await stsH2(router.httpsPort, '/plain')).toBe(ROUTER_HSTS);
  });

  it("on a custom domain passes the function's own and adds none of the router's (HTTP/1.1 and HTTP/2)", async () => {
    const path = `/own?v=${encodeURIComponent(PRELOAD)}`;
    expect(await stsLinesH1(router.httpsPort, path, CUSTOM)).toEqual([PRELOAD]);
    expect(await stsH2(router.httpsPort, path, CUSTOM)).toBe(PRELOAD);
    // The owner may end it too: theirs to decide.
    expect(await stsLinesH1(router.httpsPort, '/own', CUSTOM)).toEqual([ENDING]);
  });

  it("on a custom domain adds the router's when the function sends none", async () => {
    expect(await stsLinesH1(router.httpsPort, '/plain', CUSTOM)).toEqual([ROUTER_HSTS]);
    expect(await stsH2(router.httpsPort, '/plain', CUSTOM)).toBe(ROUTER_HSTS);
  });

  it("treats a custom domain mapped under the zone as the platform's name: the router's alone", async () => {
    expect(await stsLinesH1(router.httpsPort, '/own', CUSTOM_UNDER_ZONE)).toEqual([ROUTER_HSTS]);
    expect(await stsH2(router.httpsPort, '/own', CUSTOM_UNDER_ZONE)).toBe(ROUTER_HSTS);
  });

  it("over plain HTTP (--plain-http serve) adds none and passes the function's (a browser ignores it there, RFC 6797 §8.1)", async () => {
    const res = await rawRequest(router.httpPort, [`GET /own HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`]);
    expect(res.status).toBe(200);
    const head = res.text.slice(0, res.text.indexOf('\r\n\r\n'));
    expect([...head.matchAll(/^strict-transport-security: ?(.*)$/gim)].map((m) => m[1]!.trim())).toEqual([ENDING]);
  });
});

describe("Strict-Transport-Security on the router's own answers: the router's on the zone, none on a custom domain (real TLS)", () => {
  let router: TestRouter;
  beforeAll(async () => {
    // Every region refuses connections (none has an origin); bodies past 16 bytes are refused 413.
    router = await startTestRouter({}, ['--max-body-standard', '16'], {}, [], customDomains);
  });
  afterAll(async () => {
    await router.close();
  });

  it('on a custom domain sends none on its errors (502/503 of a region refusing, 413), over HTTP/1.1 and HTTP/2: the owner may have ended HSTS', async () => {
    const refused = await answerH1(router.httpsPort, CUSTOM);
    expect([502, 503]).toContain(refused.status);
    expect(refused.sts).toEqual([]);
    expect(await answerH1(router.httpsPort, CUSTOM, 'x'.repeat(64))).toEqual({ status: 413, sts: [] });
    const h2 = await getH2(router.httpsPort, '/anything', CUSTOM);
    expect(h2.alpn).toBe('h2');
    expect([502, 503]).toContain(h2.headers[':status']);
    expect(h2.headers['strict-transport-security']).toBeUndefined();
  });

  it("under the zone sends the router's on its errors, a custom domain mapped there included, over HTTP/1.1 and HTTP/2", async () => {
    for (const host of [HOST, CUSTOM_UNDER_ZONE]) {
      const refused = await answerH1(router.httpsPort, host);
      expect([502, 503]).toContain(refused.status);
      expect(refused.sts).toEqual([ROUTER_HSTS]);
      expect(await answerH1(router.httpsPort, host, 'x'.repeat(64))).toEqual({ status: 413, sts: [ROUTER_HSTS] });
      const h2 = await getH2(router.httpsPort, '/anything', host);
      expect([502, 503]).toContain(h2.headers[':status']);
      expect(h2.headers['strict-transport-security']).toBe(ROUTER_HSTS);
    }
  });

  it("on a host that names no function (404 unknown_host) sends the router's", async () => {
    expect(await answerH1(router.httpsPort, 'nobody.example.org')).toEqual({ status: 404, sts: [ROUTER_HSTS] });
    const h2 = await getH2(router.httpsPort, '/anything', 'nobody.example.org');
    expect(h2.headers[':status']).toBe(404);
    expect(h2.headers['strict-transport-security']).toBe(ROUTER_HSTS);
  });
});

describe("Strict-Transport-Security on the router's refusals at admission (real TLS)", () => {
  let router: TestRouter;

  beforeAll(async () => {
    // A function the directory lacks is refused at admission (404 function_not_found), on its custom domain too.
    router = await startTestRouter({}, ['--unknown-functions', 'reject'], {}, [], withCustomDomains({ [MISSING]: { fn: 'missing', org: 'demo' } }));
  });
  afterAll(async () => {
    await router.close();
  });

  it("sends none on a custom domain whose function admission refuses (404 function_not_found), and the router's on the zone", async () => {
    expect(await answerH1(router.httpsPort, MISSING)).toEqual({ status: 404, sts: [] });
    expect(await answerH1(router.httpsPort, 'missing-demo.telnyxcompute.com')).toEqual({ status: 404, sts: [ROUTER_HSTS] });
  });
});

describe('Strict-Transport-Security with no policy of the router (real TLS)', () => {
  let origin: TestOrigin;
  let router: TestRouter;

  beforeAll(async () => {
    origin = await TestOrigin.start('nyc');
    origin.handler = answer;
    router = await startTestRouter({ nyc: origin.url }, [], {}, undefined, (resolved) =>
      customDomains({ ...resolved, config: { ...resolved.config, hsts: null } }),
    );
  });
  afterAll(async () => {
    await router.close();
    await origin.kill();
  });

  it("passes the function's own as it is, on the zone and on a custom domain, and adds none", async () => {
    expect(await stsLinesH1(router.httpsPort, '/own')).toEqual([ENDING]);
    expect(await stsH2(router.httpsPort, '/own')).toBe(ENDING);
    expect(await stsLinesH1(router.httpsPort, `/own?v=${encodeURIComponent(PRELOAD)}`, CUSTOM)).toEqual([PRELOAD]);
    expect(await stsLinesH1(router.httpsPort, '/plain')).toEqual([]);
    expect(await stsH2(router.httpsPort, '/plain')).toBeUndefined();
  });
});
