import { once } from 'node:events';
import { connect as http2Connect } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from 'undici';
import { agentFor, get, getH2, HOST } from '../support/clients.js';
import { echo, TestOrigin } from '../support/origin.js';
import { rawRequest } from '../support/raw.js';
import { startTestRouter, type TestRouter } from '../support/router.js';
import { until } from '../support/until.js';

describe('forwarding through the router (real TLS, real origins)', () => {
  let nyc: TestOrigin;
  let fra: TestOrigin;
  let router: TestRouter;
  let agent: Agent;
  let london: Agent;

  beforeAll(async () => {
    nyc = await TestOrigin.start('nyc');
    fra = await TestOrigin.start('fra');
    router = await startTestRouter({ nyc: nyc.url, fra: fra.url });
    agent = agentFor(router.httpsPort);
    london = agentFor(router.httpsPort, { localAddress: '127.8.0.1' });
  });
  afterAll(async () => {
    await agent.close();
    await london.close();
    await router.close();
    await nyc.kill();
    await fra.kill();
  });

  it('routes a London client to Frankfurt and tells the region what it resolved', async () => {
    const res = await get(london, router.httpsPort, '/hello?x=1');
    expect(res.status).toBe(200);
    expect(res.headers['x-edge-region']).toBe('fra');
    expect(res.headers['x-edge-route']).toBe('nearest');
    expect(res.headers['server-timing']).toMatch(/^route;dur=[\d.]+, upstream;dur=[\d.]+$/);
    expect(res.headers['strict-transport-security']).toBe('max-age=31536000');
    expect(res.headers['x-origin']).toBe('yes');
    const seen = fra.requests.at(-1)!;
    expect(seen).toMatchObject({ method: 'GET', url: '/hello?x=1' });
    expect(seen.headers).toMatchObject({
      host: `${HOST}:${router.httpsPort}`,
      'x-edge-fn': 'echo',
      'x-edge-org': 'demo',
      'x-forwarded-for': '127.8.0.1',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': `${HOST}:${router.httpsPort}`,
      forwarded: `for=127.8.0.1;host="${HOST}:${router.httpsPort}";proto=https`,
    });
    expect(seen.headers['x-request-id']).toBe(res.headers['x-request-id']);
    // The access log has the path, never the query string (it may carry tokens).
    await until('the access-log line', () => router.access.some((a) => a.path === '/hello'));
    expect(router.access.filter((a) => a.path.includes('?'))).toEqual([]);
  });

  it('never forwards a path under /_edge/ (the router-orchestrator protocol): 404 at the edge', async () => {
    const seen = nyc.requests.length + fra.requests.length;
    // Also as a server behind the router might read it once decoded and normalised.
    for (const path of ['/_edge/prewarm', '/_edge/anything?x=1', '/%5Fedge/prewarm', '/x/../_edge/prewarm', '/_EDGE/prewarm', '/..;/_edge/prewarm']) {
      const res = await get(agent, router.httpsPort, path, { method: 'POST' });
      expect(res.status).toBe(404);
      expect(JSON.parse(res.body).error).toMatchObject({ code: 'not_found', message: 'paths under /_edge/ are reserved for the platform' });
    }
    expect((await get(agent, router.httpsPort, '/_edgeways')).status).toBe(200);
    expect(nyc.requests.length + fra.requests.length).toBe(seen + 1);
  });

  it("answers with the router's request id only, whatever id the function sends back (HTTP/1.1 and HTTP/2)", async () => {
    // Frameworks echo the X-Request-Id they got (Rails does on every answer); a hostile function
    // would send one of its choosing, first, where a client reading one value reads it.
    nyc.handler = (req, res) => {
      res.writeHead(200, ['x-request-id', String(req.headers['x-request-id']), 'X-Request-Id', 'forged']);
      res.end('ok');
    };
    try {
      const res = await rawRequest(router.httpsPort, [`GET /echo-id HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`], { tls: true });
      const ids = [...res.text.matchAll(/^x-request-id: (.*)$/gim)].map((m) => m[1]!.trim());
      expect(ids).toHaveLength(1);
      expect(ids[0]).toMatch(/^[0-9a-f]{32}$/);
      const h2 = await getH2(router.httpsPort, '/echo-id');
      expect(h2.headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);
    } finally {
      nyc.handler = echo;
    }
  });

  it("keeps a function's own Server-Timing metrics and drops its forgeries of the edge's route and upstream (HTTP/1.1 and HTTP/2)", async () => {
    nyc.handler = (_req, res) => {
      res.writeHead(200, ['Server-Timing', 'route;dur=0.01, db;dur=53', 'server-timing', 'upstream;dur=0.02']);
      res.end('ok');
    };
    try {
      const res = await rawRequest(router.httpsPort, [`GET /timing HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`], { tls: true });
      const values = [...res.text.matchAll(/^server-timing: (.*)$/gim)].map((m) => m[1]!.trim());
      expect(values).toEqual(['db;dur=53', expect.stringMatching(/^route;dur=[\d.]+, upstream;dur=[\d.]+$/)]);
      const h2 = await getH2(router.httpsPort, '/timing');
      expect(h2.headers['server-timing']).toMatch(/^db;dur=53, route;dur=[\d.]+, upstream;dur=[\d.]+$/);
    } finally {
      nyc.handler = echo;
    }
  });

  it('routes a client without a location to the default region, saying so', async () => {
    const res = await get(agent, router.httpsPort, '/');
    expect(res.headers['x-edge-region']).toBe('nyc');
    expect(res.headers['x-edge-route']).toBe('fallback:no-geo');
  });

  it('replaces spoofed forwarding and internal headers from an untrusted client', async () => {
    await get(london, router.httpsPort, '/spoof', {
      headers: {
        'x-forwarded-for': '6.6.6.6',
        forwarded: 'for=6.6.6.6',
        'x-forwarded-proto': 'gopher',
        'x-edge-fn': 'admin',
        'x-edge-org': 'root',
        'x-edge-anything': 'evil',
      },
    });
    const seen = fra.requests.at(-1)!;
    expect(seen.headers['x-forwarded-for']).toBe('127.8.0.1');
    expect(seen.headers.forwarded).not.toContain('6.6.6.6');
    expect(seen.headers['x-forwarded-proto']).toBe('https');
    expect(seen.headers['x-edge-fn']).toBe('echo');
    expect(seen.headers['x-edge-org']).toBe('demo');
    expect(seen.headers['x-edge-anything']).toBeUndefined();
  });

  it('drops client-address headers and underscore spellings of edge headers from an untrusted client, and says who the client is', async () => {
    await get(london, router.httpsPort, '/spoof-ip', {
      headers: {
        'x-real-ip': '6.6.6.1',
        'true-client-ip': '6.6.6.2',
        'client-ip': '6.6.6.3',
        'cf-connecting-ip': '6.6.6.4',
        'x-client-ip': '6.6.6.5',
        x_edge_org: 'root',
        x_forwarded_for: '6.6.6.6',
        'x-custom_header': 'kept',
      },
    });
    const seen = fra.requests.at(-1)!;
    expect(seen.url).toBe('/spoof-ip');
    expect(seen.headers['x-real-ip']).toBe('127.8.0.1');
    for (const name of ['true-client-ip', 'client-ip', 'cf-connecting-ip', 'x-client-ip', 'x_edge_org', 'x_forwarded_for']) expect(seen.headers[name]).toBeUndefined();
    expect(JSON.stringify(seen.rawHeaders)).not.toContain('6.6.6.');
    expect(seen.headers['x-custom_header']).toBe('kept'); // other underscored names are the function's business
  });

  it('gives the region the host name routing used: lower case, no trailing dot, the client port kept', async () => {
    const res = await rawRequest(router.httpsPort, [`GET /case HTTP/1.1\r\nHost: ECHO-Demo.TelnyxCompute.COM.:${router.httpsPort}\r\n\r\n`], { tls: true, localAddress: '127.8.0.1' });
    expect(res.status).toBe(200);
    const seen = fra.requests.at(-1)!;
    expect(seen.url).toBe('/case');
    expect(seen.headers.host).toBe(`${HOST}:${router.httpsPort}`);
    expect(seen.headers['x-forwarded-host']).toBe(`${HOST}:${router.httpsPort}`);
  });

  it('forwards an HTTP/2 request body that has no content-length (it is optional in HTTP/2)', async () => {
    const session = http2Connect(`https://${HOST}:${router.httpsPort}`, { rejectUnauthorized: false, host: '127.0.0.1', servername: HOST, localAddress: '127.8.0.1' } as never);
    try {
      await once(session, 'connect');
      const stream = session.request({ ':method': 'POST', ':path': '/h2-body', ':authority': HOST });
      stream.resume();
      stream.write('first part, ');
      stream.end('second part');
      const [headers] = (await once(stream, 'response')) as [Record<string, unknown>];
      expect(headers[':status']).toBe(200);
      await once(stream, 'end');
    } finally {
      session.close();
    }
    const seen = fra.requests.at(-1)!;
    expect(seen).toMatchObject({ method: 'POST', url: '/h2-body' });
    expect(seen.body.toString()).toBe('first part, second part');
  });

  it('drops hop-by-hop headers and those named in Connection, in both directions, without failing', async () => {
    fra.handler = (_req, res) => {
      res.writeHead(200, { connection: 'x-secret-hop', 'x-secret-hop': 'internal', 'keep-alive': 'timeout=99', 'x-kept': 'yes' });
      res.end('ok');
    };
    try {
      // Raw bytes: well-behaved clients refuse to send such a Connection header at all.
      const res = await rawRequest(
        router.httpsPort,
        [`GET /hop HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close, X-Forwarded-For, X-Drop-Me\r\nX-Drop-Me: 1\r\nX-Keep-Me: 1\r\nTE: trailers\r\n\r\n`],
        { tls: true, localAddress: '127.8.0.1' },
      );
      expect(res.status).toBe(200);
      expect(res.text).not.toMatch(/x-secret-hop/i);
      expect(res.text).not.toMatch(/timeout=99/);
      expect(res.text).toMatch(/x-kept: yes/i);
      const seen = fra.requests.at(-1)!;
      expect(seen.headers['x-drop-me']).toBeUndefined();
      expect(seen.headers.te).toBeUndefined();
      expect(seen.headers['x-keep-me']).toBe('1');
      // The client named X-Forwarded-For as hop-by-hop; the router still sets its own.
      expect(seen.headers['x-forwarded-for']).toBe('127.8.0.1');
    } finally {
      fra.handler = (await import('../support/origin.js')).echo;
    }
  });

  it('propagates a plain X-Request-Id and W3C traceparent; replaces a hostile request id', async () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const res = await get(london, router.httpsPort, '/trace', { headers: { 'x-request-id': 'abc-123', traceparent } });
    expect(res.headers['x-request-id']).toBe('abc-123');
    expect(fra.requests.at(-1)!.headers).toMatchObject({ 'x-request-id': 'abc-123', traceparent });
    const hostile = await get(london, router.httpsPort, '/trace', { headers: { 'x-request-id': '<script>alert(1)</script>' } });
    const made = hostile.headers['x-request-id'] as string;
    expect(made).toMatch(/^[0-9a-f]{32}$/);
    expect(fra.requests.at(-1)!.headers['x-request-id']).toBe(made);
    // A new id is its own, not a piece of the trace it came with.
    expect(fra.requests.at(-1)!.headers.traceparent).not.toContain(made);
  });

  it('starts a W3C trace when the client sends none or a malformed one, and logs its id', async () => {
    const none = await get(london, router.httpsPort, '/trace/new');
    expect(none.status).toBe(200);
    const sent = fra.requests.at(-1)!.headers.traceparent as string;
    expect(sent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    const traceId = sent.split('-')[1];
    const line = router.access.findLast((a) => a.path === '/trace/new')!;
    expect(line.traceId).toBe(traceId);
    expect(line.requestId).toBe(none.headers['x-request-id']);
    expect(line.requestId).not.toBe(traceId);
    // The client's trace kept, the request id still new (one trace spans many requests).
    const kept1 = await get(london, router.httpsPort, '/trace/same', { headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' } });
    const kept2 = await get(london, router.httpsPort, '/trace/same', { headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' } });
    expect(kept1.headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);
    expect(kept2.headers['x-request-id']).not.toBe(kept1.headers['x-request-id']);
    // A malformed traceparent is replaced, and the tracestate that belonged to it dropped.
    await get(london, router.httpsPort, '/trace/bad', { headers: { traceparent: '00-XYZ', tracestate: 'vendor=1' } });
    const seen = fra.requests.at(-1)!.headers;
    expect(seen.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    expect(seen.tracestate).toBeUndefined();
    // A valid one travels with its tracestate, and its trace id is the one logged.
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    await get(london, router.httpsPort, '/trace/kept', { headers: { traceparent, tracestate: 'vendor=1' } });
    expect(fra.requests.at(-1)!.headers).toMatchObject({ traceparent, tracestate: 'vendor=1' });
    expect(router.access.findLast((a) => a.path === '/trace/kept')!.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
  });

  it('passes request bodies through intact', async () => {
    const body = 'x'.repeat(100_000);
    const res = await get(london, router.httpsPort, '/upload', { method: 'POST', body, headers: { 'content-type': 'text/plain' } });
    expect(JSON.parse(res.body)).toEqual({ method: 'POST', url: '/upload', bytes: 100_000 });
    expect(fra.requests.at(-1)!.body.toString()).toBe(body);
  });

  it('serves HTTP/2 clients end to end', async () => {
    const res = await getH2(router.httpsPort, '/h2');
    expect(res.alpn).toBe('h2');
    expect(res.headers[':status']).toBe(200);
    expect(res.headers['x-edge-region']).toBe('nyc');
    expect(JSON.parse(res.body)).toMatchObject({ method: 'GET', url: '/h2' });
  });

  it('answers unknown and invalid hosts with the JSON error shape, forwarding nothing', async () => {
    const before = nyc.requests.length + fra.requests.length;
    const unknown = await get(agent, router.httpsPort, '/', { host: 'www.example.com' });
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.body).error.code).toBe('unknown_host');
    const bad = await get(agent, router.httpsPort, '/', { host: 'a.b-c.telnyxcompute.com' });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body)).toEqual({ error: { code: 'invalid_host', message: expect.any(String), requestId: bad.headers['x-request-id'], traceId: expect.stringMatching(/^[0-9a-f]{32}$/) } });
    expect(nyc.requests.length + fra.requests.length).toBe(before);
  });

  it('writes one access log line per request with the routing facts', async () => {
    await get(london, router.httpsPort, '/logged');
    const line = router.access.findLast((a) => a.path === '/logged')!;
    expect(line).toMatchObject({ method: 'GET', fn: 'echo', org: 'demo', clientIp: '127.8.0.1', country: 'GB', region: 'fra', reason: 'nearest', attempts: 1, status: 200 });
    expect(line.totalMs).toBeGreaterThan(0);
  });
});
