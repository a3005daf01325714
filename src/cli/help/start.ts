/** What `edge-router start` takes (start-command.ts runs it): the router's flags less the ones it fixes, and the simulation's. */
import { HELP_FLAG, SHARED_FLAGS, type CommandHelp } from '../flags.js';
import { REDIS_FLAGS } from '../redis-flags.js';
import { ROUTER_FLAGS } from '../router-flags.js';
import { ROUTING_FLAGS } from '../routing-flags.js';
import { SIMULATION_FLAGS } from '../simulation-flags.js';

const START_ROUTER_FLAGS = ROUTER_FLAGS.filter((f) => !['workers', 'probe', 'proxy-protocol', 'proxy-protocol-from', 'bind'].includes(f.name)).map((f) =>
  f.name === 'log-level'
    ? { ...f, default: 'warn', defaultText: 'warn (access log and events: --log-level info)' }
    : f.name === 'prewarm-token'
      ? { ...f, defaultText: 'a fresh one for the run, shared with the simulated orchestrators' }
      : f,
);

export const startHelp: CommandHelp = {
  usage: 'edge-router start [flags]',
  summary: 'Run the local five-region simulation: orchestrators, registry, router (dev certificate) and admin listener.',
  flags: [...START_ROUTER_FLAGS, ...ROUTING_FLAGS, ...SIMULATION_FLAGS, ...REDIS_FLAGS, ...SHARED_FLAGS, HELP_FLAG],
};
