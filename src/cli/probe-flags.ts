/** The active health probe's flags, shared by `probe` and `router` (which probes with the memory registry). */
import { UsageError } from '../core/errors.js';
import { DEFAULT_PROBE_INTERVAL_MS, DEFAULT_PROBE_PATH, DEFAULT_PROBE_TIMEOUT_MS } from '../registry/probe-defaults.js';
import { sourceOf, valueOf, type FlagSpec, type ParsedFlags } from './flags.js';
import { parseInteger } from './parse-values.js';

export const PROBE_FLAGS: readonly FlagSpec[] = [
  { name: 'probe-path', type: 'string', env: 'EDGE_PROBE_PATH', valueName: 'path', default: DEFAULT_PROBE_PATH, description: 'health URL path on each orchestrator' },
  { name: 'probe-interval', type: 'string', env: 'EDGE_PROBE_INTERVAL_MS', valueName: 'ms', default: String(DEFAULT_PROBE_INTERVAL_MS), description: 'time between probes of a region (jittered ±10 %)' },
  { name: 'probe-timeout', type: 'string', env: 'EDGE_PROBE_TIMEOUT_MS', valueName: 'ms', default: String(DEFAULT_PROBE_TIMEOUT_MS), description: 'budget for one probe' },
  { name: 'healthy-threshold', type: 'string', env: 'EDGE_PROBE_HEALTHY', valueName: 'n', default: '2', description: 'successes in a row to come back up' },
  { name: 'unhealthy-threshold', type: 'string', env: 'EDGE_PROBE_UNHEALTHY', valueName: 'n', default: '3', description: 'failures in a row to go down' },
];

function positiveInt(flags: ParsedFlags, name: string, max = 86_400_000): number {
  return parseInteger(valueOf(flags, name), sourceOf(flags, name), 1, max);
}

/**
 * An hour between probes, ten minutes for one, at most: a probe heartbeat lives about twice the
 * interval plus the timeout, and past a day (the registry's bound on any heartbeat's life) a
 * region went down between two probes that both found it up.
 */
const MAX_PROBE_INTERVAL_MS = 3_600_000;
const MAX_PROBE_TIMEOUT_MS = 600_000;

export function proberSettings(flags: ParsedFlags) {
  const path = valueOf(flags, 'probe-path');
  if (!path.startsWith('/')) throw new UsageError(`${sourceOf(flags, 'probe-path')}: expected a path starting with /, got ${JSON.stringify(path)}`);
  return {
    path,
    intervalMs: positiveInt(flags, 'probe-interval', MAX_PROBE_INTERVAL_MS),
    timeoutMs: positiveInt(flags, 'probe-timeout', MAX_PROBE_TIMEOUT_MS),
    healthyThreshold: positiveInt(flags, 'healthy-threshold'),
    unhealthyThreshold: positiveInt(flags, 'unhealthy-threshold'),
  };
}
