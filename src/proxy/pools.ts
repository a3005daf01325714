/**
 * One undici connection pool per region (a BalancedPool when a region lists several
 * orchestrators): keep-alive, bounded connections, connect timeout. Built once at start.
 */
import { BalancedPool, Pool, type Dispatcher } from 'undici';
import type { OrchestratorTls, RegionConfig, RegionId } from '../core/types.js';
import { ADDED_UPSTREAM_HEADER_NAMES } from './headers.js';
import { OrchestratorConnector } from './orchestrator-connector.js';
import { registerHeaderNames } from './undici-header-names.js';

export interface PoolOptions {
  /** Connections per orchestrator (default 128). */
  readonly connections?: number;
  readonly connectTimeoutMs?: number;
  /** Idle keep-alive; below the orchestrators' own (Node's 5 s) so we never reuse a socket they are closing. */
  readonly keepAliveTimeoutMs?: number;
  /** Inactivity allowed while a response body streams. */
  readonly bodyTimeoutMs?: number;
  /** For https orchestrators: a private CA, a client certificate (config/orchestrator-tls.ts). Ignored with `connector`. */
  readonly tls?: OrchestratorTls;
  /** The connector to use (shared with the prober, TLS settings reloaded); default one of the pools' own. */
  readonly connector?: OrchestratorConnector;
}

/**
 * The `servername` every request to a region carries (exchange, hedge, upgrade, pre-warm).
 *
 * undici takes a request's TLS server name from its Host header unless it is given one, and an
 * https pool whose requests change server name closes its connection and opens another. The
 * router forwards each function's public name as Host, so to an https orchestrator it sent the
 * function's name as SNI and checked the orchestrator's certificate against it (which fails
 * unless that certificate also covers the public zone), and it reconnected whenever two
 * functions alternated. With one constant name the connection stays, and the connector
 * (orchestrator-connector.ts) names the orchestrator itself. It also spares undici's per-request work of deriving the name
 * (a parse and two IP pattern tests, about 0.4 % of a plain request's CPU in a profile).
 */
export const UPSTREAM_SERVERNAME = 'orchestrator';

/**
 * Dispatch options with the server name: undici's Request reads `servername` from them (a test
 * holds it to that: test/proxy/pools.test.ts), but its type declarations leave it out.
 */
export type OrchestratorDispatchOptions = Dispatcher.DispatchOptions & { readonly servername: typeof UPSTREAM_SERVERNAME };

export class UpstreamPools {
  private readonly pools = new Map<RegionId, Dispatcher>();

  constructor(regions: readonly RegionConfig[], options: PoolOptions = {}) {
    registerHeaderNames(ADDED_UPSTREAM_HEADER_NAMES);
    const poolOptions: Pool.Options = {
      connections: options.connections ?? 128,
      pipelining: 1,
      keepAliveTimeout: options.keepAliveTimeoutMs ?? 4_000,
      keepAliveMaxTimeout: 60_000,
      connect: (options.connector ?? new OrchestratorConnector(options.connectTimeoutMs ?? 1_000, options.tls ?? null)).connect,
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

  /** The pool of `region`'s orchestrators; every dispatch to it passes `servername: UPSTREAM_SERVERNAME`. */
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
