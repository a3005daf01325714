/** What `edge-router probe` takes (probe-command.ts runs it). */
import { HELP_FLAG, SHARED_FLAGS, type CommandHelp } from '../flags.js';
import { PROBE_FLAGS } from '../probe-flags.js';
import { REQUIRED_REDIS_FLAGS } from '../redis-flags.js';

export const probeHelp: CommandHelp = {
  usage: 'edge-router probe --redis <url> [flags]',
  summary: 'Actively health-check every region and record the results in the registry (for upstreams without a reporter).',
  flags: [...PROBE_FLAGS, ...REQUIRED_REDIS_FLAGS, ...SHARED_FLAGS, HELP_FLAG],
};
