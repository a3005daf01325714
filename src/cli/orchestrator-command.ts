/**
 * `edge-router orchestrator --region <id> --port <p>`: one simulated region as its own process,
 * reporting to the registry (Redis for a multi-process setup). SIGTERM drains it and exits 0.
 */
import { resolveSharedSettings } from '../config/shared-settings.js';
import { UsageError } from '../core/errors.js';
import type { HealthRegistry } from '../registry/health-registry.js';
import { MemoryRegistry } from '../registry/memory-registry.js';
import { RegistryWatcher } from '../registry/registry-watcher.js';
import { EVICTING_SERVER_ADVICE, EVICTION_UNCHECKED_ADVICE } from '../registry/redis-registry.js';
import { Orchestrator, type OrchestratorOptions } from '../orchestrator/orchestrator.js';
import { HELP_FLAG, SHARED_FLAGS, sourceOf, stringFlag, type CommandHelp, type FlagSpec, type ParsedFlags } from './flags.js';
import { stopRequested, writeLine, type CliIo } from './io.js';
import { openLocator } from '../geoip/open-locator.js';
import { openRedisRegistry, REDIS_FLAGS } from './open-registry.js';
import { packageRoot } from './package-root.js';
import { parseAddress, parseInteger, parsePort } from './parse-values.js';
import { sharedInputs } from './shared-inputs.js';
import { PREWARM_TOKEN_FILE_FLAG, PREWARM_TOKEN_FLAG, prewarmToken } from './prewarm-token.js';

export const SIMULATION_FLAGS: readonly FlagSpec[] = [
  { name: 'ms-per-100km', type: 'string', env: 'EDGE_SIM_MS_PER_100KM', valueName: 'ms', defaultText: '1', description: 'simulated round trip per 100 km between client metro and region (0 = none)' },
  { name: 'cold-start', type: 'string', env: 'EDGE_SIM_COLD_START_MS', valueName: 'min-max', defaultText: '100-500', description: 'cold start delay range in ms' },
  { name: 'container-keep-alive', type: 'string', env: 'EDGE_SIM_KEEP_ALIVE_MS', valueName: 'ms', defaultText: '60000', description: 'idle time before a container is recycled (scale to zero)' },
];

export const orchestratorHelp: CommandHelp = {
  usage: 'edge-router orchestrator --region <id> --port <port> [--redis <url>] [flags]',
  summary: 'Run one simulated regional orchestrator (container pool, demo functions, heartbeats).',
  flags: [
    { name: 'region', type: 'string', env: 'EDGE_REGION', valueName: 'id', description: 'which region of the regions file this is' },
    { name: 'port', type: 'string', env: 'EDGE_PORT', valueName: 'port', defaultText: 'the port of the region\'s orchestrator URL', description: 'listen port' },
    { name: 'host', type: 'string', env: 'EDGE_HOST', valueName: 'addr', defaultText: '127.0.0.1', description: 'listen address' },
    PREWARM_TOKEN_FLAG,
    PREWARM_TOKEN_FILE_FLAG,
    ...SIMULATION_FLAGS,
    ...REDIS_FLAGS,
    ...SHARED_FLAGS,
    HELP_FLAG,
  ],
};

const MAX_COLD_START_MS = 60_000;

export function simulationSettings(flags: ParsedFlags): Pick<OrchestratorOptions, 'msPer100Km' | 'coldStartMs' | 'keepAliveMs'> {
  const range = stringFlag(flags, 'cold-start') ?? '100-500';
  const match = /^(\d+)-(\d+)$/.exec(range);
  // At most a minute: a cold start longer than the longest tier could never answer, and a
  // heartbeat's coldStartMs above 600,000 is refused by every reader of the registry.
  if (match === null || Number(match[1]) > Number(match[2]) || Number(match[2]) > MAX_COLD_START_MS) {
    throw new UsageError(`${sourceOf(flags, 'cold-start')}: expected min-max in ms such as 100-500, at most ${MAX_COLD_START_MS}, got ${JSON.stringify(range)}`);
  }
  const perKm = stringFlag(flags, 'ms-per-100km') ?? '1';
  if (!/^\d+(\.\d+)?$/.test(perKm)) throw new UsageError(`${sourceOf(flags, 'ms-per-100km')}: expected a number ≥ 0, got ${JSON.stringify(perKm)}`);
  const keepAlive = stringFlag(flags, 'container-keep-alive');
  return {
    msPer100Km: Number(perKm),
    coldStartMs: [Number(match[1]), Number(match[2])],
    keepAliveMs: keepAlive === undefined ? 60_000 : parseInteger(keepAlive, sourceOf(flags, 'container-keep-alive'), 0, 86_400_000),
  };
}

export async function runOrchestrator(flags: ParsedFlags, io: CliIo): Promise<number> {
  const settings = await resolveSharedSettings(sharedInputs(flags), packageRoot());
  const id = stringFlag(flags, 'region');
  const region = settings.regions.regions.find((r) => r.id === id);
  if (region === undefined) {
    throw new UsageError(`${sourceOf(flags, 'region')}: expected one of ${settings.regions.regions.map((r) => r.id).join(', ')}${id === undefined ? '' : `, got "${id}"`}`);
  }
  const portFlag = stringFlag(flags, 'port');
  const port = portFlag === undefined ? Number(new URL(region.orchestrators[0]!).port || 80) : parsePort(portFlag, sourceOf(flags, 'port'));
  const hostFlag = stringFlag(flags, 'host');
  const host = hostFlag === undefined ? '127.0.0.1' : parseAddress(hostFlag, sourceOf(flags, 'host'));
  const simulation = simulationSettings(flags);
  const prewarm = prewarmToken(flags);
  const log = (event: string, fields: Record<string, unknown>) => writeLine(io.stderr, JSON.stringify({ time: Date.now(), region: region.id, event, ...fields }));

  let registry: HealthRegistry | undefined = await openRedisRegistry(flags, settings.regions.regions, {
    onRejected: (where, reason) => log('registry_rejected', { where, reason }),
    onEvictingServer: (policy) => log('registry_evicts', { policy, message: EVICTING_SERVER_ADVICE }),
    onEvictionUnchecked: (reason) => log('registry_eviction_unchecked', { reason, message: EVICTION_UNCHECKED_ADVICE }),
    longRunning: true,
  });
  if (registry === undefined) {
    log('registry_memory', { message: 'no --redis: reporting to an in-process registry nobody else sees (routers must probe this region)' });
    registry = new MemoryRegistry();
  }
  const watcher = new RegistryWatcher({ registry, regions: settings.regions.regions });
  await watcher.start();
  const locator = await openLocator(settings.geoip, { watch: true, source: settings.geoipSource });
  const orchestrator = new Orchestrator({
    region,
    host,
    port,
    zone: settings.zone,
    registry,
    directory: () => watcher.snapshot,
    locator,
    ...simulation,
    ...prewarm,
    onLog: log,
  });
  const listening = await orchestrator.start();
  log('listening', { port: listening, message: `orchestrator ${region.id} (${region.name}) listening on ${listening}` });
  await stopRequested(io);
  log('draining', {});
  await orchestrator.stop();
  await watcher.stop();
  await registry.close();
  locator.close?.();
  return 0;
}
