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
import { Orchestrator } from '../orchestrator/orchestrator.js';
import { sourceOf, stringFlag, type ParsedFlags } from './flags.js';
import { stopRequested, writeLine, type CliIo } from './io.js';
import { openLocator } from '../geoip/open-locator.js';
import { openRedisRegistry } from './open-registry.js';
import { packageRoot } from './package-root.js';
import { parseAddress, parsePort } from './parse-values.js';
import { sharedInputs } from './shared-inputs.js';
import { prewarmToken } from './prewarm-token.js';
import { simulationSettings } from './simulation-flags.js';
import { tierTimeouts } from './router-flags.js';

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
  const tierTimeoutMs = tierTimeouts(flags);
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
    tierTimeoutMs,
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
