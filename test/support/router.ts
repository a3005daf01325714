/**
 * Starts a real router in-process for tests: dev certificate, memory registry, the five regions
 * pointed at the given origins (a region without one points at a closed port).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { resolveRouterFlags, startRouterProcess, type ResolvedRouter } from '../../src/cli/router-command.js';
import { parseFlags } from '../../src/cli/flags.js';
import { routerHelp } from '../../src/cli/help/router.js';
import type { AccessRecord } from '../../src/ingress/edge-handler.js';
import { freePort } from './redis-server.js';
import { until } from './until.js';

export const REGION_COORDS = {
  atl: { name: 'Atlanta', lat: 33.749, lon: -84.388 },
  nyc: { name: 'New York', lat: 40.7128, lon: -74.006 },
  lax: { name: 'Los Angeles', lat: 34.0522, lon: -118.2437 },
  fra: { name: 'Frankfurt', lat: 50.1109, lon: 8.6821 },
  syd: { name: 'Sydney', lat: -33.8688, lon: 151.2093 },
} as const;
export type RegionName = keyof typeof REGION_COORDS;

export interface TestRouter {
  readonly httpsPort: number;
  readonly httpPort: number;
  readonly adminPort: number;
  readonly access: AccessRecord[];
  readonly logs: Array<Record<string, unknown>>;
  close(): Promise<void>;
  readonly router: Awaited<ReturnType<typeof startRouterProcess>>;
}

export async function regionsFileFor(origins: Partial<Record<RegionName, string>>, extra: Record<string, unknown> = {}): Promise<string> {
  const closed = `http://127.0.0.1:${await freePort()}`;
  const dir = await mkdtemp(join(tmpdir(), 'edge-router-test-'));
  const file = join(dir, 'regions.json');
  await writeFile(
    file,
    JSON.stringify({
      defaultRegion: 'nyc',
      countryRegions: {},
      regions: (Object.keys(REGION_COORDS) as RegionName[]).map((id) => ({
        id,
        ...REGION_COORDS[id],
        orchestrators: [origins[id] ?? closed],
        capacity: { soft: 64, hard: 96 },
      })),
      ...extra,
    }),
  );
  return file;
}

/**
 * Flags for a router that probes each region once, at its start, and not again for a minute: what
 * happens to a region afterwards only the data plane can notice. The one probe gets a generous
 * budget: with the default 300 ms, a probe slowed by a loaded machine (a TLS handshake at load 12
 * took longer) left its region unknown until the next probe a minute later, and the router was
 * never handed over. The budget bounds that one probe only; a quick one ends at once.
 */
export const PROBE_ONCE_FLAGS: readonly string[] = ['--probe-interval', '60000', '--probe-timeout', '10000'];

/**
 * An `adjust` for startTestRouter: the operator's custom domains (regions file), each host to the
 * function it serves, in place of any the file had.
 */
export function withCustomDomains(domains: Record<string, { fn: string; org: string }>): (resolved: ResolvedRouter) => ResolvedRouter {
  return (resolved) => {
    const shared = resolved.config.shared;
    const customDomains = new Map(Object.entries(domains));
    return { ...resolved, config: { ...resolved.config, shared: { ...shared, regions: { ...shared.regions, customDomains } } } };
  };
}

/** `flags` are CLI flags as the router command takes them (e.g. ['--timeout-standard', '500']). */
/** `waitFor`: the regions that must be probed up before the router is handed over (default: every one with an origin). */
/** `adjust`: changes to the resolved configuration that no flag makes (shorter connection timeouts, say). */
export async function startTestRouter(
  origins: Partial<Record<RegionName, string>>,
  flags: string[] = [],
  env: NodeJS.ProcessEnv = {},
  waitFor?: readonly RegionName[],
  adjust: (resolved: ResolvedRouter) => ResolvedRouter = (resolved) => resolved,
): Promise<TestRouter> {
  const regions = await regionsFileFor(origins);
  const parsed = parseFlags(
    ['--regions', regions, '--dev-cert', '--workers', '1', '--https-port', '0', '--http-port', '0', '--admin-port', '0', '--bind', '127.0.0.1', '--unknown-functions', 'forward', '--probe', 'on', '--probe-interval', '100', '--probe-timeout', '300', ...flags],
    routerHelp.flags,
    env,
  );
  const resolved = adjust(await resolveRouterFlags(parsed));
  const access: AccessRecord[] = [];
  const logs: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'info' },
    {
      write(line: string) {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.log === 'access') access.push(entry as unknown as AccessRecord);
      },
    },
  );
  const router = await startRouterProcess(resolved, logger);
  // Ready for tests once every region with an origin has been probed up.
  const expected: readonly string[] = waitFor ?? Object.keys(origins);
  // Generous: a readiness wait costs nothing when the machine is quick, and on a loaded CI machine
  // (two vitest workers, browsers, docker builds) the first probes can take seconds.
  await until('the regions with an origin probed up', () => expected.every((id) => router.watcher.snapshot.regions.get(id)?.status === 'up'), 15_000);
  return {
    httpsPort: router.ports.https!,
    httpPort: router.ports.http,
    adminPort: router.ports.admin,
    access,
    logs,
    router,
    close: () => router.close(),
  };
}
