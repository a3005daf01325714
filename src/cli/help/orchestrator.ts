/** What `edge-router orchestrator` takes (orchestrator-command.ts runs it). */
import { HELP_FLAG, SHARED_FLAGS, type CommandHelp } from '../flags.js';
import { PREWARM_TOKEN_FILE_FLAG, PREWARM_TOKEN_FLAG } from '../prewarm-token.js';
import { REDIS_FLAGS } from '../redis-flags.js';
import { SIMULATION_FLAGS } from '../simulation-flags.js';
import { TIER_TIMEOUT_FLAGS } from '../router-flags.js';

export const orchestratorHelp: CommandHelp = {
  usage: 'edge-router orchestrator --region <id> --port <port> [--redis <url>] [flags]',
  summary: 'Run one simulated regional orchestrator (container pool, demo functions, heartbeats).',
  flags: [
    { name: 'region', type: 'string', env: 'EDGE_REGION', valueName: 'id', description: 'which region of the regions file this is' },
    { name: 'port', type: 'string', env: 'EDGE_PORT', valueName: 'port', defaultText: 'the port of the region\'s orchestrator URL (80 when it names none)', description: 'listen port' },
    { name: 'host', type: 'string', env: 'EDGE_HOST', valueName: 'addr', defaultText: '127.0.0.1', description: 'listen address' },
    PREWARM_TOKEN_FLAG,
    PREWARM_TOKEN_FILE_FLAG,
    ...SIMULATION_FLAGS,
    // The router's flags, said as the region applies them: a function still running is cut, no grace.
    ...TIER_TIMEOUT_FLAGS.map((f) => ({ ...f, description: `${f.name === 'timeout-standard' ? 'standard' : 'extended'} tier limit a function is cut at → 504 function_timeout (keep it the routers')` })),
    ...REDIS_FLAGS,
    ...SHARED_FLAGS,
    HELP_FLAG,
  ],
};
