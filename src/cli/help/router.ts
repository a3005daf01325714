/** What `edge-router router` takes (router-command.ts runs it). */
import { ACME_FLAGS } from '../acme-flags.js';
import { HELP_FLAG, SHARED_FLAGS, type CommandHelp } from '../flags.js';
import { PROBE_FLAGS } from '../probe-flags.js';
import { REDIS_FLAGS } from '../redis-flags.js';
import { ROUTER_FLAGS } from '../router-flags.js';
import { ROUTING_FLAGS } from '../routing-flags.js';

export const routerHelp: CommandHelp = {
  usage: 'edge-router router [flags]',
  summary: 'Run the edge router: HTTPS ingress, routing, forwarding with failover.',
  flags: [...ROUTER_FLAGS, ...ACME_FLAGS, ...ROUTING_FLAGS, ...PROBE_FLAGS, ...REDIS_FLAGS, ...SHARED_FLAGS, HELP_FLAG],
};
