import { PassThrough } from 'node:stream';
import type { Dispatcher } from 'undici';
import { describe, expect, it } from 'vitest';
import { DEFAULT_TIER_TIMEOUT_MS } from '../../src/core/types.js';
import { AddressQuota } from '../../src/ingress/address-quota.js';
import type { AnyRequest } from '../../src/ingress/admission.js';
import { UpgradesInProgress } from '../../src/ingress/upgrades-in-progress.js';
import { createWebSocketTunnels, type TunnelClient, type WebSocketTunnelOptions } from '../../src/ingress/websocket-tunnel.js';
import { OutlierDetector } from '../../src/proxy/outlier-detector.js';
import type { UpstreamPools } from '../../src/proxy/pools.js';
import { RegionGates } from '../../src/proxy/region-gate.js';
import { RetryBudget } from '../../src/proxy/retry-budget.js';
import { createRouteDecider } from '../../src/routing/route-decider.js';
import { HOST } from '../support/clients.js';
import { REGIONS, snapshotWith } from '../support/regions.js';

/** A region that answers every upgrade 403 without switching, at once. */
const refusingRegion = {
  dispatch(_options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const controller = { abort: () => undefined, pause: () => undefined, resume: () => undefined } as unknown as Dispatcher.DispatchController;
    handler.onRequestStart?.(controller, {});
    handler.onResponseStart?.(controller, 403, {}, 'Forbidden');
    handler.onResponseEnd?.(controller, {});
    return true;
  },
} as unknown as Dispatcher;

function upgradeRequest(): AnyRequest {
  return {
    httpVersionMajor: 1,
    httpVersionMinor: 1,
    httpVersion: '1.1',
    method: 'GET',
    url: '/socket',
    headers: { host: HOST, upgrade: 'websocket', connection: 'Upgrade' },
    rawHeaders: ['Host', HOST, 'Upgrade', 'websocket', 'Connection', 'Upgrade'],
    socket: { remoteAddress: '127.0.0.1' },
  } as unknown as AnyRequest;
}

/** Tunnels over the region `pools` gives, with the options every test here shares. */
function tunnelsWith(overrides: Partial<WebSocketTunnelOptions> & Pick<WebSocketTunnelOptions, 'onFault'>) {
  return createWebSocketTunnels({
    decider: createRouteDecider({
      regions: REGIONS,
      zone: 'telnyxcompute.com',
      locator: { locate: (ip) => ({ ip, country: null, city: null, lat: null, lon: null, source: 'unknown' }) },
      countryRegions: new Map(),
      defaultRegion: 'nyc',
      customDomains: new Map(),
      unknownFunctions: 'forward',
    }),
    snapshot: () => snapshotWith(),
    trust: () => false,
    clientAddressHeader: 'x-forwarded-for',
    proto: 'https',
    hsts: null,
    zone: 'telnyxcompute.com',
    pools: { get: () => refusingRegion } as unknown as UpstreamPools,
    gates: new RegionGates({ regions: REGIONS.map((r) => r.id), slots: () => 4 }),
    queueTimeoutMs: 1_000,
    tierTimeoutMs: DEFAULT_TIER_TIMEOUT_MS,
    headersTimeoutMs: 1_000,
    maxAttempts: 3,
    perClient: new AddressQuota(0),
    budget: new RetryBudget(),
    outliers: new OutlierDetector({ regionCount: REGIONS.length }),
    onEjection: () => undefined,
    onAccess: () => undefined,
    ...overrides,
  });
}

/** A WebSocket client's side over `duplex` that refuses and answers quietly, but for `overrides`. */
function clientOf(duplex: PassThrough, overrides: Partial<TunnelClient> = {}): TunnelClient {
  return {
    duplex,
    protocol: 'websocket',
    takeEarly: () => Buffer.alloc(0),
    establishedStatus: 101,
    upstreamHeaders: (forwarded) => forwarded,
    acceptsSwitch: () => true,
    refuse: () => undefined,
    relayAnswer: (answer) => answer.statusCode,
    established: () => undefined,
    reset: () => void duplex.destroy(),
    ...overrides,
  };
}

describe('createWebSocketTunnels', () => {
  it('forgets an upgrade that ended on a fault: nothing of it stays for the drain to cut', async () => {
    const faults: unknown[] = [];
    const inProgress = new UpgradesInProgress();
    const tunnels = tunnelsWith({ onFault: (err) => faults.push(err), inProgress });
    const duplex = new PassThrough();
    const client = clientOf(duplex, {
      // A throw where none was expected, once the region has answered (the fault the tunnel's guard is for).
      relayAnswer: () => {
        throw new Error('a bug');
      },
    });
    tunnels.open(upgradeRequest(), client);
    for (let i = 0; i < 20 && faults.length === 0; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(faults).toHaveLength(1);
    expect(duplex.destroyed).toBe(true);
    expect(inProgress.count).toBe(0);
    // Its shutdown cut (a closure holding the request and its client's side) must go with it: kept,
    // every faulted upgrade stayed in the router's one list of cuts for as long as the process ran.
    expect(inProgress.cutAll()).toBe(0);
  });
  it('refuses a new upgrade while the router drains (503 shutting_down): nothing opened, nothing for the drain to wait for', () => {
    const inProgress = new UpgradesInProgress();
    const asked: string[] = [];
    const refused: string[] = [];
    const access: number[] = [];
    let draining = false;
    const tunnels = tunnelsWith({
      onFault: (err) => {
        throw err;
      },
      inProgress,
      draining: () => draining,
      pools: { get: (region: string) => (asked.push(region), refusingRegion) } as unknown as UpstreamPools,
      onAccess: (_context, outcome) => access.push(outcome.status),
    });
    const refusing = (duplex: PassThrough) => clientOf(duplex, { refuse: (code) => void refused.push(code) });
    draining = true;
    tunnels.open(upgradeRequest(), refusing(new PassThrough()));
    expect(refused).toEqual(['shutting_down']);
    expect(access).toEqual([503]);
    expect(asked).toEqual([]);
    expect(inProgress.count).toBe(0);
    // Before the drain the same upgrade goes to its region.
    draining = false;
    tunnels.open(upgradeRequest(), refusing(new PassThrough()));
    expect(asked).toHaveLength(1);
  });
});
