/** The simulated orchestrator's flags (latency, cold starts, scale to zero), shared by `orchestrator` and `start`. */
import type { OrchestratorOptions } from '../orchestrator/orchestrator.js';
import { UsageError } from '../core/errors.js';
import { sourceOf, stringFlag, type FlagSpec, type ParsedFlags } from './flags.js';
import { parseDecimal, parseInteger } from './parse-values.js';

export const SIMULATION_FLAGS: readonly FlagSpec[] = [
  { name: 'ms-per-100km', type: 'string', env: 'EDGE_SIM_MS_PER_100KM', valueName: 'ms', defaultText: '1', description: 'simulated round trip per 100 km between client metro and region (0 = none)' },
  { name: 'cold-start', type: 'string', env: 'EDGE_SIM_COLD_START_MS', valueName: 'min-max', defaultText: '100-500', description: 'cold start delay range in ms' },
  { name: 'container-keep-alive', type: 'string', env: 'EDGE_SIM_KEEP_ALIVE_MS', valueName: 'ms', defaultText: '60000', description: 'idle time before a container is recycled (scale to zero)' },
];

const MAX_COLD_START_MS = 60_000;

export function simulationSettings(flags: ParsedFlags): Pick<OrchestratorOptions, 'msPer100Km' | 'coldStartMs' | 'keepAliveMs'> {
  const range = stringFlag(flags, 'cold-start') ?? '100-500';
  const match = /^(\d+)-(\d+)$/.exec(range);
  // At most a minute: a cold start longer than the longest tier could never answer, and a
  // heartbeat's coldStartMs above 600,000 is refused by every reader of the registry.
  if (match === null || Number(match[1]) > Number(match[2]) || Number(match[2]) > MAX_COLD_START_MS) {
    throw new UsageError(`${sourceOf(flags, 'cold-start')}: expected min-max in ms such as 100-500, at most ${MAX_COLD_START_MS}, got ${JSON.stringify(range)}`);
  }
  // At most 1,000 ms per 100 km, as --routing-ms-per-100km: a delay past setTimeout's 2^31-1 ms
  // fired at once, so a huge simulated distance became none.
  const perKm = parseDecimal(stringFlag(flags, 'ms-per-100km') ?? '1', sourceOf(flags, 'ms-per-100km'), 0, 1_000, 'a number of ms');
  const keepAlive = stringFlag(flags, 'container-keep-alive');
  return {
    msPer100Km: perKm,
    coldStartMs: [Number(match[1]), Number(match[2])],
    keepAliveMs: keepAlive === undefined ? 60_000 : parseInteger(keepAlive, sourceOf(flags, 'container-keep-alive'), 0, 86_400_000),
  };
}
