/**
 * Pre-warming from the edge (`--routing latency`): when a request was sent away from its nearest
 * region because that region was cold for the function, ask the region for one container, so the
 * next request can stay local. Fire and forget over the region's own pool, with a short timeout;
 * the decider already rate-limits it per function and region. Authenticated with the token the
 * routers share with the orchestrators.
 */
import type { RegionId } from '../core/types.js';
import { PREWARM_PATH } from '../core/protocol.js';
import type { Dispatcher } from 'undici';
import { UPSTREAM_SERVERNAME, type OrchestratorDispatchOptions, type UpstreamPools } from './pools.js';

export type Prewarm = (region: RegionId, fn: string, org: string) => void;

/** Pre-warms in flight per region at most: they share the region's pool with real requests. */
const MAX_IN_FLIGHT_PER_REGION = 4;

export function createPrewarmer(pools: UpstreamPools, token: string, onSent: (region: RegionId) => void): Prewarm {
  const authorization = `Bearer ${token}`;
  const inFlight = new Map<RegionId, number>();
  return (region, fn, org) => {
    const pool = pools.get(region);
    const busy = inFlight.get(region) ?? 0;
    if (pool === undefined || busy >= MAX_IN_FLIGHT_PER_REGION) return;
    inFlight.set(region, busy + 1);
    onSent(region);
    const options: Dispatcher.RequestOptions & OrchestratorDispatchOptions = {
      method: 'POST',
      path: PREWARM_PATH,
      headers: { authorization, 'x-edge-fn': fn, 'x-edge-org': org, 'content-length': '0' },
      // The whole exchange, including any wait for a pool connection behind real requests.
      signal: AbortSignal.timeout(2_000),
      servername: UPSTREAM_SERVERNAME,
    };
    pool
      .request(options)
      .then((res) => res.body.dump())
      .catch(() => undefined) // best effort: the next request simply finds the region cold
      .finally(() => inFlight.set(region, (inFlight.get(region) ?? 1) - 1));
  };
}
