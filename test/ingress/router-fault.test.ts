/**
 * A fault of the router's own (a throw in a request's handling where nothing should throw) costs
 * that request a 500, and leaves the trace an operator needs: an access line counted as a 5xx, and
 * one request id in the answer, the line and the fault's report. The fault is injected by making
 * the registry snapshot throw when the request handler reads it, and only there.
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentFor, get, getH2 } from '../support/clients.js';
import { ADMIN_TOKEN } from '../support/hostile.js';
import { echo, TestOrigin } from '../support/origin.js';
import { startTestRouter, type TestRouter } from '../support/router.js';
import { until } from '../support/until.js';

describe("a request that meets a fault of the router's own", () => {
  let origin: TestOrigin;
  let router: TestRouter;
  let armed = false;

  beforeAll(async () => {
    origin = await TestOrigin.start('fra');
    origin.handler = echo;
    router = await startTestRouter({ fra: origin.url }, ['--admin-token', ADMIN_TOKEN]);
    const watcher = router.router.watcher;
    const real = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(watcher), 'snapshot')!.get!;
    Object.defineProperty(watcher, 'snapshot', {
      configurable: true,
      get() {
        if (armed && new Error().stack!.includes('handleEdgeRequest')) throw new TypeError('an injected fault');
        return real.call(watcher);
      },
    });
  });
  afterAll(async () => {
    await router.close();
    await origin.kill();
  });

  async function serverErrorsCounted(): Promise<number> {
    const metrics = await (await request(`http://127.0.0.1:${router.adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body.text();
    let sum = 0;
    for (const match of metrics.matchAll(/^edge_router_requests_total\{[^}]*status_class="5xx"[^}]*\} (\d+)$/gm)) sum += Number(match[1]);
    return sum;
  }

  it('answers 500 with an id found in its access line (a 5xx counted) and in the fault report, over HTTP/1.1 and HTTP/2, and serves on', async () => {
    const agent = agentFor(router.httpsPort);
    try {
      const before = await serverErrorsCounted();
      armed = true;
      const h1 = await get(agent, router.httpsPort, '/fault/h1', { headers: { 'x-request-id': 'fault-h1' } });
      const h2 = await getH2(router.httpsPort, '/fault/h2');
      armed = false;
      expect(h1.status).toBe(500);
      expect(h1.headers['x-request-id']).toBe('fault-h1');
      expect(h2.headers[':status']).toBe(500);
      const h2Id = h2.headers['x-request-id'] as string;
      await until('both logged', () => router.access.filter((a) => String(a.path).startsWith('/fault/')).length === 2);
      expect(router.access.filter((a) => String(a.path).startsWith('/fault/'))).toEqual([
        expect.objectContaining({ path: '/fault/h1', requestId: 'fault-h1', status: 500, error: 'internal_error' }),
        expect.objectContaining({ path: '/fault/h2', requestId: h2Id, status: 500, error: 'internal_error' }),
      ]);
      await until('counted as server errors', async () => (await serverErrorsCounted()) === before + 2);
      // The report is throttled (one in 5 s): the first carries its request's id.
      expect(router.logs.filter((l) => l.event === 'request_fault')[0]).toMatchObject({ requestId: 'fault-h1', faults: 1 });
      expect((await get(agent, router.httpsPort, '/after')).status).toBe(200);
    } finally {
      armed = false;
      await agent.close();
    }
  });
});
