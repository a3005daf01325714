import { afterEach, describe, expect, it } from 'vitest';
import { agentFor, get } from '../support/clients.js';
import { TestOrigin } from '../support/origin.js';
import { startTestRouter } from '../support/router.js';
import { until } from '../support/until.js';

// A London client (127.8.0.1 in geo/sim.mmdb).
const LONDON = '127.8.0.1';

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

describe('deadline admission', () => {
  it('answers 503 with a Retry-After at once, and calls no region, when every region\'s queue is longer than the function\'s limit', async () => {
    const origins = { fra: await TestOrigin.start('fra'), nyc: await TestOrigin.start('nyc') };
    // No probes: the test writes every region's heartbeat itself. (With one probe a minute, a first
    // probe slower than the helper's 300 ms budget on a loaded machine left both regions unknown
    // until the next one: the router was never handed over.)
    const router = await startTestRouter({ fra: origins.fra.url, nyc: origins.nyc.url }, ['--probe', 'off'], {}, []);
    const agent = agentFor(router.httpsPort, { localAddress: LONDON });
    cleanup.push(() => origins.fra.kill(), () => origins.nyc.kill(), () => router.close(), () => agent.close());
    const report = async (inFlight: number) => {
      for (const region of ['fra', 'nyc']) {
        await router.router.registry.writeHeartbeat(
          { region, status: 'up', reportedAt: Date.now(), source: 'reporter', inFlight, capacity: { soft: 64, hard: 96 }, warmContainers: 96, latencyMs: { p50: 1_000, p99: 2_000 }, errorRate: 0, warmFunctions: [] },
          60_000,
        );
      }
      await until('the router sees the report', () => router.router.watcher.snapshot.regions.get('nyc')?.inFlight === inFlight, 5_000);
    };

    // 4,000 requests on 96 containers of 1 s each: about 41 s of queue in either region.
    await report(4_000);
    const started = performance.now();
    const refused = await get(agent, router.httpsPort, '/slow');
    expect(performance.now() - started).toBeLessThan(5_000); // at once, not after the 30 s limit
    expect(refused.status).toBe(503);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(11);
    expect(JSON.parse(refused.body)).toMatchObject({ error: { code: 'deadline_unreachable', message: expect.stringContaining('past its 30 s limit') } });
    expect(origins.fra.requests.length + origins.nyc.requests.length).toBe(0);
    expect(router.access.at(-1)).toMatchObject({ status: 503, error: 'deadline_unreachable' });

    // The queues shorten: requests go through again.
    await report(200);
    expect((await get(agent, router.httpsPort, '/ok')).status).toBe(200);
  });
});
