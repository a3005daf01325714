/** What `edge-router start` takes (start-command.ts runs it): the router's flags less the ones it fixes, and the simulation's. */
import { HELP_FLAG, SHARED_FLAGS, type CommandHelp } from '../flags.js';
import { REDIS_FLAGS } from '../redis-flags.js';
import { ROUTER_FLAGS } from '../router-flags.js';
import { ROUTING_FLAGS } from '../routing-flags.js';
import { SIMULATION_FLAGS } from '../simulation-flags.js';

/** What start-command.ts's startDefaults changes, said where --help and the README show defaults. */
const START_DEFAULTS: Readonly<Record<string, { default?: string; defaultText: string }>> = {
  'log-level': { default: 'warn', defaultText: 'warn (access log and events: --log-level info)' },
  'prewarm-token': { defaultText: 'a fresh one for the run, shared with the simulated orchestrators' },
  'admin-token': { defaultText: 'a fresh one for the run, printed in the dashboard URL' },
  'dev-cert': { defaultText: 'on, unless --tls-cert or --tls-dir is given' },
};

const START_ROUTER_FLAGS = ROUTER_FLAGS.filter((f) => !['workers', 'probe', 'proxy-protocol', 'proxy-protocol-from', 'bind'].includes(f.name)).map((f) =>
  START_DEFAULTS[f.name] === undefined ? f : { ...f, ...START_DEFAULTS[f.name] },
);

export const startHelp: CommandHelp = {
  usage: 'edge-router start [flags]',
  summary: 'Run the local five-region simulation: orchestrators, registry, router (dev certificate) and admin listener.',
  flags: [...START_ROUTER_FLAGS, ...ROUTING_FLAGS, ...SIMULATION_FLAGS, ...REDIS_FLAGS, ...SHARED_FLAGS, HELP_FLAG],
};
