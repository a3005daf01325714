/**
 * `edge-router probe`: a standalone active health checker for regions that have no reporter
 * (plain HTTP upstreams). Probes every region's orchestrator and records the results in the
 * shared registry as probe heartbeats, until SIGTERM.
 */
import { resolveSharedSettings } from '../config/shared-settings.js';
import { UsageError } from '../core/errors.js';
import { Prober, probeHeartbeatTtlMs } from '../registry/prober.js';
import type { ParsedFlags } from './flags.js';
import { stopRequested, writeLine, type CliIo } from './io.js';
import { openRedisRegistry } from './open-registry.js';
import { packageRoot } from './package-root.js';
import { sharedInputs } from './shared-inputs.js';
import { connectOrchestrators } from './orchestrator-connection.js';
import { createLogger } from '../observability/logger.js';
import { proberSettings } from './probe-flags.js';

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
