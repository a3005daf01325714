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

// Client addresses inside the simulation database's metro subnets 127.1.0.0/16 … 127.17.0.0/16.
const address = (n: number) => `127.${1 + (n % 17)}.${(n >>> 8) & 255}.${n & 255}`;

async function makeDecider(cacheSize: number): Promise<{ decider: RouteDecider; locator: MaxmindLocator }> {
  const locator = await MaxmindLocator.open(join(root, 'geo', 'sim.mmdb'), { watch: false, cacheSize });
  const decider = createRouteDecider({
    regions: regions.regions,
    zone: 'telnyxcompute.com',
    locator,
    countryRegions: regions.countryRegions,
    defaultRegion: regions.defaultRegion,
    customDomains: regions.customDomains,
    unknownFunctions: 'reject',
  });
  return { decider, locator };
}

function run(decider: RouteDecider, clients: readonly string[], ms: number): { perSecond: number; checksum: number } {
  let n = 0;
  let checksum = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(ms) * 1_000_000n;
  const now = Date.now();
  for (;;) {
    // Batches of 1,000 keep the clock out of the measurement.
    for (let i = 0; i < 1_000; i++, n++) {
      const d = decider.decide(hosts[n % FUNCTIONS]!, clients[n % clients.length]!, snapshot, now);
      if (d.ok) checksum += d.candidates.length;
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
console.log(`cold cache (every address new, hit ratio ${coldHits.toFixed(3)}): ${fmt(coldResult.perSecond)} decisions/s`);
if (warmResult.checksum === 0 || coldResult.checksum === 0) throw new Error('no decision succeeded: the benchmark measured nothing');
console.log(`route decisions/s: ${Math.round(warmResult.perSecond)}`);
