/**
 * `npm run bench:route`: route decisions per second on one core — hostname resolution, GeoIP
 * lookup (the real MaxMind reader on geo/sim.mmdb), function directory lookup, proximity ranking
 * and readiness — for 5 regions and 10,000 functions. Warm: a working set of client addresses
 * that fits the location cache. Cold: every decision from an address never seen before.
 * Prints a table; the last line is exactly `route decisions/s: <warm>`.
 */
import { join } from 'node:path';
import { packageRoot } from '../src/cli/package-root.js';
import { loadRegionsFile } from '../src/config/load-regions.js';
import type { FunctionRecord, RegistrySnapshot } from '../src/core/types.js';
import { MaxmindLocator } from '../src/geoip/maxmind-locator.js';
import { staticSnapshot } from '../src/registry/static-snapshot.js';
import { createRouteDecider, type RouteDecider } from '../src/routing/route-decider.js';

const FUNCTIONS = 10_000;
const WARM_CLIENTS = 4_096;
const RUN_MS = Number(process.env.BENCH_ROUTE_MS ?? 2_000);

const root = packageRoot();
const regions = await loadRegionsFile(join(root, 'regions.json'));
const ids = regions.regions.map((r) => r.id);

// 10,000 functions over 500 orgs; every fourth deployed in two regions only, so readiness has work.
const functions = new Map<string, Map<string, FunctionRecord>>();
const hosts: string[] = [];
for (let i = 0; i < FUNCTIONS; i++) {
  const org = `org${i % 500}`;
  const fn = `fn${i}`;
  const record: FunctionRecord = {
    org,
    fn,
    regions: i % 4 === 0 ? new Set([ids[i % ids.length]!, ids[(i + 2) % ids.length]!]) : null,
    tier: i % 10 === 0 ? 'extended' : 'standard',
    enabled: true,
  };
  (functions.get(org) ?? functions.set(org, new Map()).get(org)!).set(fn, record);
  hosts.push(`${fn}-${org}.telnyxcompute.com`);
}
const base = staticSnapshot(regions.regions);
const snapshot: RegistrySnapshot = { ...base, functions };
// For --routing latency: each region reports its 500 busiest functions (a different slice each),
// some with idle warm containers, so the estimate has real data to weigh.
const reported: RegistrySnapshot = {
  ...snapshot,
  regions: new Map(
    [...base.regions].map(([id, h], r) => [
      id,
      {
        ...h,
        heartbeatAt: 1,
        functionLoads: new Map(Array.from({ length: 500 }, (_, k) => {
          const i = (r * 1_000 + k * 7) % FUNCTIONS;
          return [`org${i % 500}/fn${i}`, { idle: k % 3, busy: 1, coldStartMs: 200 + (k % 200) }] as const;
        })),
      },
    ]),
  ),
};

// Client addresses inside the simulation database's metro subnets 127.1.0.0/16 … 127.17.0.0/16.
const address = (n: number) => `127.${1 + (n % 17)}.${(n >>> 8) & 255}.${n & 255}`;

async function makeDecider(cacheSize: number, routing: 'nearest' | 'latency' = 'nearest'): Promise<{ decider: RouteDecider; locator: MaxmindLocator }> {
  const locator = await MaxmindLocator.open(join(root, 'geo', 'sim.mmdb'), { watch: false, cacheSize });
  const decider = createRouteDecider({
    regions: regions.regions,
    zone: 'telnyxcompute.com',
    locator,
    countryRegions: regions.countryRegions,
    defaultRegion: regions.defaultRegion,
    customDomains: regions.customDomains,
    unknownFunctions: 'reject',
    routing,
    prewarmIntervalMs: routing === 'latency' ? 2_000 : 0,
  });
  return { decider, locator };
}

function run(decider: RouteDecider, clients: readonly string[], ms: number, state: RegistrySnapshot = snapshot): { perSecond: number; checksum: number } {
  let n = 0;
  let checksum = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(ms) * 1_000_000n;
  const now = Date.now();
  for (;;) {
    // Batches of 1,000 keep the clock out of the measurement.
    for (let i = 0; i < 1_000; i++, n++) {
      const d = decider.decide(hosts[n % FUNCTIONS]!, clients[n % clients.length]!, state, now);
      if (d.ok) {
        checksum += d.candidates.length;
        // The request is over at once: with latency routing its container counts as free again
        // (else the idle containers run out and every decision takes the cheap nothing-warm path).
        if (d.sent !== undefined) decider.finished(d, state, now);
      }
    }
    if (process.hrtime.bigint() >= deadline) break;
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { perSecond: n / seconds, checksum };
}

const warmClients = Array.from({ length: WARM_CLIENTS }, (_, i) => address(i * 7919));
const warm = await makeDecider(100_000);
run(warm.decider, warmClients, 500); // JIT warm-up
const warmResult = run(warm.decider, warmClients, RUN_MS);
const hitRatio = warm.locator.stats.cacheHits / warm.locator.stats.lookups;

// The same warm run with cold-start-aware ranking: estimates, send counts and pre-warm checks.
const latency = await makeDecider(100_000, 'latency');
run(latency.decider, warmClients, 500, reported);
const latencyResult = run(latency.decider, warmClients, RUN_MS, reported);

// Cold: 1.1 M distinct addresses, cache far smaller than the stream, so every lookup reads the database.
const coldClients = Array.from({ length: 17 * 65_536 }, (_, i) => address(i));
const cold = await makeDecider(1_000);
run(cold.decider, coldClients, 500);
const before = { ...cold.locator.stats };
const coldResult = run(cold.decider, coldClients, RUN_MS);
const coldHits = (cold.locator.stats.cacheHits - before.cacheHits) / (cold.locator.stats.lookups - before.lookups);

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
console.log(`node ${process.version}, ${FUNCTIONS} functions, ${regions.regions.length} regions, ${RUN_MS} ms per run`);
console.log(`warm cache (${WARM_CLIENTS} clients, hit ratio ${hitRatio.toFixed(3)}): ${fmt(warmResult.perSecond)} decisions/s`);
console.log(`warm cache, --routing latency (5 regions reporting 500 functions each): ${fmt(latencyResult.perSecond)} decisions/s`);
console.log(`cold cache (every address new, hit ratio ${coldHits.toFixed(3)}): ${fmt(coldResult.perSecond)} decisions/s`);
if (warmResult.checksum === 0 || coldResult.checksum === 0 || latencyResult.checksum === 0) throw new Error('no decision succeeded: the benchmark measured nothing');
console.log(`route decisions/s: ${Math.round(warmResult.perSecond)}`);
