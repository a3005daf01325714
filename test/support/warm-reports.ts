/**
 * Latency routing's input, written the way orchestrators write it: the function `acme/api` listed,
 * and each region's report of its idle containers of it. Resolves once the router has read both.
 */
import { until } from './until.js';
import type { TestRouter } from './router.js';

export const WARM_HOST = 'api-acme.telnyxcompute.com';

export async function reportIdleContainers(router: TestRouter, idleByRegion: Readonly<Record<string, number>>, options: { coldStartMs?: number; hedge?: boolean } = {}): Promise<void> {
  const { registry, watcher } = router.router;
  const coldStartMs = options.coldStartMs ?? 250;
  await registry.putFunction({ org: 'acme', fn: 'api', regions: null, tier: 'standard', enabled: true, ...(options.hedge === true ? { hedge: true } : {}) });
  for (const [region, idle] of Object.entries(idleByRegion)) {
    await registry.writeHeartbeat(
      { region, status: 'up', reportedAt: Date.now(), source: 'reporter', inFlight: 0, warmContainers: idle, latencyMs: { p50: 5, p99: 9 }, errorRate: 0, warmFunctions: idle > 0 ? ['acme/api'] : [], functions: [{ fn: 'acme/api', idle, busy: 0, coldStartMs }] },
      60_000,
    );
  }
  await until(
    'the router sees the function and the reports',
    () => watcher.snapshot.functions.get('acme')?.get('api') !== undefined && Object.keys(idleByRegion).every((r) => watcher.snapshot.regions.get(r)?.functionLoads.has('acme/api') === true),
    5_000,
  );
}
