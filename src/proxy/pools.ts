/**
 * One undici connection pool per region (a BalancedPool when a region lists several
 * orchestrators): keep-alive, bounded connections, connect timeout. Built once at start.
 */
import { BalancedPool, Pool, type Dispatcher } from 'undici';
import type { RegionConfig, RegionId } from '../core/types.js';
import { ADDED_UPSTREAM_HEADER_NAMES } from './headers.js';
import { registerHeaderNames } from './undici-header-names.js';

export interface PoolOptions {
  /** Connections per orchestrator (default 128). */
  readonly connections?: number;
  readonly connectTimeoutMs?: number;
  /** Idle keep-alive; below the orchestrators' own (Node's 5 s) so we never reuse a socket they are closing. */
  readonly keepAliveTimeoutMs?: number;
  /** Inactivity allowed while a response body streams. */
  readonly bodyTimeoutMs?: number;
}

export class UpstreamPools {
  private readonly pools = new Map<RegionId, Dispatcher>();

  constructor(regions: readonly RegionConfig[], options: PoolOptions = {}) {
    registerHeaderNames(ADDED_UPSTREAM_HEADER_NAMES);
    const poolOptions: Pool.Options = {
      connections: options.connections ?? 128,
      pipelining: 1,
      keepAliveTimeout: options.keepAliveTimeoutMs ?? 4_000,
      keepAliveMaxTimeout: 60_000,
      connect: { timeout: options.connectTimeoutMs ?? 1_000 },
      bodyTimeout: options.bodyTimeoutMs ?? 30_000,
    };
    for (const region of regions) {
      const dispatcher =
        region.orchestrators.length === 1
          ? new Pool(region.orchestrators[0]!, poolOptions)
          : new BalancedPool([...region.orchestrators], poolOptions);
      this.pools.set(region.id, dispatcher);
    }
  }

  get(region: RegionId): Dispatcher | undefined {
    return this.pools.get(region);
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close().catch(() => undefined)));
  }

  /** Closes at once, failing in-flight requests (after a drain timeout). */
  async destroy(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.destroy().catch(() => undefined)));
  }
}
