/**
 * `edge-router probe`: a standalone active health checker for regions that have no reporter
 * (plain HTTP upstreams). Probes every region's orchestrator and records the results in the
 * shared registry as probe heartbeats, until SIGTERM.
 */
import { resolveSharedSettings } from '../config/shared-settings.js';
import { UsageError } from '../core/errors.js';
import { DEFAULT_PROBE_INTERVAL_MS, DEFAULT_PROBE_PATH, DEFAULT_PROBE_TIMEOUT_MS, Prober, probeHeartbeatTtlMs } from '../registry/prober.js';
import { HELP_FLAG, SHARED_FLAGS, sourceOf, valueOf, type CommandHelp, type FlagSpec, type ParsedFlags } from './flags.js';
import { stopRequested, writeLine, type CliIo } from './io.js';
import { openRedisRegistry, REQUIRED_REDIS_FLAGS } from './open-registry.js';
import { packageRoot } from './package-root.js';
import { sharedInputs } from './shared-inputs.js';
import { connectOrchestrators } from './orchestrator-connection.js';
import { createLogger } from '../observability/logger.js';
import { parseInteger } from './parse-values.js';

export const PROBE_FLAGS: readonly FlagSpec[] = [
  { name: 'probe-path', type: 'string', env: 'EDGE_PROBE_PATH', valueName: 'path', default: DEFAULT_PROBE_PATH, description: 'health URL path on each orchestrator' },
  { name: 'probe-interval', type: 'string', env: 'EDGE_PROBE_INTERVAL_MS', valueName: 'ms', default: String(DEFAULT_PROBE_INTERVAL_MS), description: 'time between probes of a region (jittered ±10 %)' },
  { name: 'probe-timeout', type: 'string', env: 'EDGE_PROBE_TIMEOUT_MS', valueName: 'ms', default: String(DEFAULT_PROBE_TIMEOUT_MS), description: 'budget for one probe' },
  { name: 'healthy-threshold', type: 'string', env: 'EDGE_PROBE_HEALTHY', valueName: 'n', default: '2', description: 'successes in a row to come back up' },
  { name: 'unhealthy-threshold', type: 'string', env: 'EDGE_PROBE_UNHEALTHY', valueName: 'n', default: '3', description: 'failures in a row to go down' },
];

export const probeHelp: CommandHelp = {
  usage: 'edge-router probe --redis <url> [flags]',
  summary: 'Actively health-check every region and record the results in the registry (for upstreams without a reporter).',
  flags: [...PROBE_FLAGS, ...REQUIRED_REDIS_FLAGS, ...SHARED_FLAGS, HELP_FLAG],
};

function positiveInt(flags: ParsedFlags, name: string): number {
  return parseInteger(valueOf(flags, name), sourceOf(flags, name), 1, 86_400_000);
}

export function proberSettings(flags: ParsedFlags) {
  const path = valueOf(flags, 'probe-path');
  if (!path.startsWith('/')) throw new UsageError(`${sourceOf(flags, 'probe-path')}: expected a path starting with /, got ${JSON.stringify(path)}`);
  return {
    path,
    intervalMs: positiveInt(flags, 'probe-interval'),
    timeoutMs: positiveInt(flags, 'probe-timeout'),
    healthyThreshold: positiveInt(flags, 'healthy-threshold'),
    unhealthyThreshold: positiveInt(flags, 'unhealthy-threshold'),
  };
}

export async function runProbe(flags: ParsedFlags, io: CliIo): Promise<number> {
  const settings = await resolveSharedSettings(sharedInputs(flags), packageRoot());
  const probe = proberSettings(flags);
  const registry = await openRedisRegistry(flags, settings.regions.regions, { longRunning: true });
  if (registry === undefined) throw new UsageError('probe records into a shared registry: pass --redis <url> or set REDIS_URL');
  // The routers' own formula (one probe apart, room for a lost one): the TTL is stamped on each
  // heartbeat, and the routers judge it by that.
  const ttlMs = probeHeartbeatTtlMs(probe.intervalMs, probe.timeoutMs);
  const orchestrators = connectOrchestrators(settings, probe.timeoutMs, createLogger('info'));
  const prober = new Prober({
    regions: settings.regions.regions,
    ...probe,
    connect: orchestrators.connector.connect,
    onHeartbeat: (hb) =>
      registry.writeHeartbeat(hb, ttlMs).catch((err: unknown) => writeLine(io.stderr, `probe: cannot record ${hb.region}: ${(err as Error).message}`)),
  });
  prober.start();
  writeLine(io.stdout, `probing ${settings.regions.regions.length} regions every ${probe.intervalMs} ms (${probe.path}); Ctrl-C to stop`);
  await stopRequested(io);
  await prober.stop();
  orchestrators.stop();
  await registry.close();
  return 0;
}
