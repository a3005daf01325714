import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentFor, get, HOST } from '../support/clients.js';
import { metricSum } from '../support/metrics-text.js';
import { TestOrigin } from '../support/origin.js';
import { rawRequest } from '../support/raw.js';
import { startTestRouter, type TestRouter } from '../support/router.js';

describe('public and admin listeners', () => {
  let origin: TestOrigin;
  let router: TestRouter;
  beforeAll(async () => {
    origin = await TestOrigin.start('nyc');
    router = await startTestRouter({ nyc: origin.url }, [], { EDGE_ADMIN_TOKEN: 'listener-test-token-0123456789' });
  });
  afterAll(async () => {
    await router.close();
    await origin.kill();
  });

  it('redirects plain HTTP to HTTPS with 308, keeping path and query', async () => {
    const res = await rawRequest(router.httpPort, [`POST /pay?x=1 HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 0\r\n\r\n`]);
    expect(res.status).toBe(308);
    expect(res.text).toMatch(new RegExp(`\\r\\nlocation: https://${HOST.replace(/\./g, '\\.')}:${router.httpsPort}/pay\\?x=1\\r\\n`, 'i'));
    expect(origin.requests).toHaveLength(0);
  });

  it('counts what the plain listener redirected and what it could not, which write no access line', async () => {
    const redirects = async () => {
      const text = await (await request(`http://127.0.0.1:${router.adminPort}/metrics`, { headers: { authorization: 'Bearer listener-test-token-0123456789' } })).body.text();
      return { redirected: metricSum(text, 'edge_router_https_redirects_total{outcome="redirected"}'), refused: metricSum(text, 'edge_router_https_redirects_total{outcome="refused"}') };
    };
    const before = await redirects();
    expect(Number.isInteger(before.redirected) && Number.isInteger(before.refused)).toBe(true);
    expect((await rawRequest(router.httpPort, [`GET /a HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`])).status).toBe(308);
    expect((await rawRequest(router.httpPort, [`GET /b HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`])).status).toBe(308);
    // A Host that is no DNS name: no redirect can be made of it.
    expect((await rawRequest(router.httpPort, [`GET /c HTTP/1.1\r\nHost: not_a_name!\r\n\r\n`])).status).toBe(400);
    // /healthz is answered, not redirected: not counted.
    expect((await request(`http://127.0.0.1:${router.httpPort}/healthz`)).statusCode).toBe(200);
    expect(await redirects()).toEqual({ redirected: before.redirected + 2, refused: before.refused + 1 });
  });

  it('names the port clients reach HTTPS on given --redirect-port (a container port published as 443)', async () => {
    // Before, the redirect named the HTTPS listener's own port (8443 in compose and Kubernetes),
    // which neither published: every plain-HTTP visitor was sent to a port that did not answer.
    const published = await startTestRouter({ nyc: origin.url }, ['--redirect-port', '443']);
    try {
      const res = await rawRequest(published.httpPort, [`GET /pay?x=1 HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`]);
      expect(res.status).toBe(308);
      expect(res.text).toMatch(new RegExp(`\\r\\nlocation: https://${HOST.replace(/\./g, '\\.')}/pay\\?x=1\\r\\n`, 'i'));
    } finally {
      await published.close();
    }
  });

  it('warns at start when it locates clients with the bundled simulation GeoIP database, which no setting named', async () => {
    // The Kubernetes base mounts no database: a router that fell back to the simulation's routed
    // every real client from the fallback region, and said nothing.
    const warned = (logs: Array<Record<string, unknown>>) => logs.some((line) => line.event === 'geoip_simulation');
    expect(warned(router.logs)).toBe(true);
    const named = await startTestRouter({ nyc: origin.url }, ['--geoip', join(process.cwd(), 'geo', 'sim.mmdb')]);
    try {
      expect(warned(named.logs)).toBe(false);
    } finally {
      await named.close();
    }
  });

  it('answers /healthz and /readyz on the plain listener itself', async () => {
    expect((await request(`http://127.0.0.1:${router.httpPort}/healthz`)).statusCode).toBe(200);
    expect((await request(`http://127.0.0.1:${router.httpPort}/readyz`)).statusCode).toBe(200);
  });

  it('never serves the admin API or the dashboard on the public listener', async () => {
    const agent = agentFor(router.httpsPort);
    try {
      for (const path of ['/api/regions', '/metrics', '/']) {
        const res = await get(agent, router.httpsPort, path, { headers: { authorization: 'Bearer listener-test-token-0123456789' } });
        // Routed like any function request (to the origin), never answered by the admin app.
        expect(res.headers['x-edge-region']).toBe('nyc');
        expect(res.body).not.toContain('edge_router_');
      }
      expect(origin.requests.map((r) => r.url)).toEqual(['/api/regions', '/metrics', '/']);
    } finally {
      await agent.close();
    }
    const admin = await request(`http://127.0.0.1:${router.adminPort}/api/regions`, { headers: { authorization: 'Bearer listener-test-token-0123456789' } });
    expect(admin.statusCode).toBe(200);
    expect(((await admin.body.json()) as { regions: unknown[] }).regions).toHaveLength(5);
  });

});
