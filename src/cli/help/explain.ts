/** What `edge-router explain` takes (explain.ts runs it). */
import { HELP_FLAG, SHARED_FLAGS, type CommandHelp } from '../flags.js';
import { REDIS_FLAGS } from '../redis-flags.js';
import { ROUTING_FLAGS } from '../routing-flags.js';

export const explainHelp: CommandHelp = {
  usage: 'edge-router explain --host <host> (--ip <ip>... | --ips -) [flags]',
  summary:
    'Print the routing decision for a host and client address(es) as JSON. With --redis the live registry\n' +
    'decides; without one every region is taken as healthy and every function as deployed everywhere.\n' +
    'Exit 2 for a rejected host.',
  flags: [
    { name: 'host', type: 'string', valueName: 'host', description: 'request host, e.g. my-fn-abc123.telnyxcompute.com' },
    { name: 'ip', type: 'string', multiple: true, valueName: 'ip', description: 'client address' },
    { name: 'ips', type: 'string', valueName: '-', description: 'read client addresses from stdin, one per line ("-")' },
    { name: 'json', type: 'boolean', description: 'compact single-line JSON (several addresses always print one line each)' },
    {
      name: 'unknown-functions',
      type: 'string',
      env: 'EDGE_UNKNOWN_FUNCTIONS',
      valueName: 'reject|forward',
      defaultText: 'reject with a registry (--redis or --redis-sentinels), forward without',
      description: 'a function missing from the directory: not found (reject) or deployed everywhere (forward)',
    },
    ...ROUTING_FLAGS,
    ...REDIS_FLAGS,
    ...SHARED_FLAGS,
    HELP_FLAG,
  ],
};
