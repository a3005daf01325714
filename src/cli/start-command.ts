/**
 * `edge-router start` (`npm start`): the whole system on one machine, in one process — five
 * regional orchestrators, the health registry (in memory, or Redis with --redis/REDIS_URL), the
 * router with a development certificate and the admin listener. Prints where everything is and a
 * curl command that works as printed; Ctrl-C / SIGTERM stops everything.
 */
import { randomBytes } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { ConfigError, describeError } from '../core/errors.js';
import type { RegionConfig } from '../core/types.js';
import type { HealthRegistry } from '../registry/health-registry.js';
import { MemoryRegistry } from '../registry/memory-registry.js';
import { RegistryWatcher } from '../registry/registry-watcher.js';
import { Orchestrator } from '../orchestrator/orchestrator.js';
import { createLogger } from '../observability/logger.js';
import type { ParsedFlags } from './flags.js';
import { stopRequested, writeLine, type CliIo } from './io.js';
import { openLocator } from '../geoip/open-locator.js';
import { logEvictionChecks, openRedisRegistry } from './open-registry.js';
import { simulationSettings } from './simulation-flags.js';
import { logIgnoredSettings, resolveRouterFlags, startRouterProcess } from './router-command.js';

/** Whether the operator gave the admin token (then it is theirs to know, and never printed). */
function tokenSupplied(flags: ParsedFlags): boolean {
  return flags.values.has('admin-token') || flags.values.has('admin-token-file');
}

/** Flags `start` fixes or defaults differently from `router`. */
export function startDefaults(flags: ParsedFlags): ParsedFlags {
  const values = new Map(flags.values);
  values.set('workers', '1'); // one process: the orchestrators share it
  values.set('probe', 'off'); // the orchestrators report for themselves
  values.set('bind', '127.0.0.1');
  if (!values.has('tls-cert') && !values.has('tls-dir')) values.set('dev-cert', true);
  // A local simulation gets a fresh admin token unless one is given; it is printed once, never logged.
  if (!tokenSupplied(flags)) values.set('admin-token', randomBytes(18).toString('base64url'));
  // Latency routing asks cold regions for a container; here router and orchestrators share a process.
  // Not beside a token file given: a made-up token would be a flag beating (or clashing with) it.
  if (!values.has('prewarm-token') && !values.has('prewarm-token-file')) values.set('prewarm-token', randomBytes(18).toString('base64url'));
  return { ...flags, values };
}

/**
 * `http://host:port/`, with an IPv6 literal in brackets (`http://::1:9090/` is no URL a browser or
 * curl reads) and its zone's `%` escaped, as RFC 6874 writes it.
 */
export function httpUrl(host: string, port: number): string {
  return `http://${isIPv6(host) ? `[${host.replace('%', '%25')}]` : host}:${port}/`;
}

/**
 * Starts one simulated region. Its port is its URL's in the regions file, which no flag of `start`
 * moves: a taken one is named with its region and file (the generic hint pointed at the --*-port
 * flags, none of which is an orchestrator's).
 */
async function startRegion(orchestrator: Orchestrator, region: RegionConfig, regionsFile: string): Promise<number> {
  try {
    return await orchestrator.start();
  } catch (err) {
    if (describeError(err).code !== 'address_in_use') throw err;
    const { address, port } = err as { address?: string; port?: number };
    throw new ConfigError(
      `${address ?? '127.0.0.1'}:${port ?? '?'} (the ${region.id} orchestrator's port, from ${regionsFile}) is already in use (another edge-router, or another program): ` +
        'free it, or give --regions a copy of the file with other orchestrator ports',
    );
  }
}

export async function runStart(flags: ParsedFlags, io: CliIo): Promise<number> {
  const resolved = await resolveRouterFlags(startDefaults(flags));
  const logger = createLogger(resolved.logLevel);
  logIgnoredSettings(resolved, logger);
  const { shared } = resolved.config;
  const regions = shared.regions.regions;
  const simulation = simulationSettings(flags);

  const registry: HealthRegistry = (await openRedisRegistry(flags, regions, {
      longRunning: true,
      // The router's watcher reads through it: a Redis refusing writes is silence (RedisRegistryOptions.readsNeedWrites).
      readsNeedWrites: true,
      ...logEvictionChecks(logger),
    })) ?? new MemoryRegistry();
  const directory = new RegistryWatcher({ registry, regions });
  await directory.start();
  const locator = await openLocator(shared.geoip, { watch: true, source: shared.geoipSource });
  const orchestrators = regions.map(
    (region) =>
      new Orchestrator({
        region,
        host: '127.0.0.1',
        port: Number(new URL(region.orchestrators[0]!).port || 80),
        zone: shared.zone,
        registry,
        directory: () => directory.snapshot,
        locator,
        ...simulation,
        // The router's limits: a region cutting at its own defaults passed its 504 on as the function's.
        tierTimeoutMs: resolved.config.tierTimeoutMs,
        ...(resolved.config.prewarmToken === undefined ? {} : { prewarmToken: resolved.config.prewarmToken }),
        onLog: (event, fields) => logger.warn({ region: region.id, event, ...fields }, `orchestrator ${region.id}: ${event}`),
      }),
  );
  const ports = await Promise.all(orchestrators.map((o, i) => startRegion(o, regions[i]!, shared.regions.file)));
  const router = await startRouterProcess({ ...resolved, config: { ...resolved.config, registry, simulation: true } }, logger);

  const https = router.ports.https!;
  // A token made up for this run is printed so it can be used; one the operator supplied stays out
  // of the terminal (and of whatever records it).
  const shownToken = tokenSupplied(flags) ? '<your admin token>' : resolved.config.adminToken;
  const host = `echo-${'demo'}.${shared.zone}`;
  const adminUrl = httpUrl(resolved.config.adminHost, router.ports.admin);
  writeLine(
    io.stdout,
    [
      `edge-router: local simulation running (${registry.kind} registry)`,
      '',
      `  router      https://${host}:${https}/   (self-signed development certificate)`,
      `              http://127.0.0.1:${router.ports.http}/ redirects to HTTPS; /healthz, /readyz`,
      `  dashboard   ${adminUrl}#token=${shownToken}`,
      `  admin API   ${adminUrl}api/regions   (Authorization: Bearer <the token above>)`,
      ...regions.map((r, i) => `  ${r.id.padEnd(11)} http://127.0.0.1:${ports[i]}/   ${r.name}`),
      '',
      'Try it (the name resolves to this machine only through --resolve):',
      `  curl -k --resolve ${host}:${https}:127.0.0.1 https://${host}:${https}/`,
      `  curl -k --resolve ${host}:${https}:127.0.0.1 --interface 127.8.0.1 https://${host}:${https}/   # a client in London`,
      `  curl -k --resolve stream-demo.${shared.zone}:${https}:127.0.0.1 -N 'https://stream-demo.${shared.zone}:${https}/?sse=1&n=5'`,
      '',
      'Ctrl-C stops everything.',
    ].join('\n'),
  );

  await stopRequested(io);
  writeLine(io.stdout, 'edge-router: stopping…');
  // Together: the regions' stop closes their WebSockets (1001), which ends the router's drain
  // instead of holding it to its deadline. (The regions give requests in progress 2 s, not the
  // router's drain: fine for a local simulation stopped by hand.)
  await Promise.all([router.close(), ...orchestrators.map((o) => o.stop(2_000))]);
  await directory.stop();
  await registry.close();
  locator.close?.();
  logger.flush();
  return 0;
}
