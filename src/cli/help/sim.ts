/** What `edge-router sim` takes (sim-command.ts runs it). */
import { SCENARIO_NAMES } from '../../sim/scenario-names.js';
import { HELP_FLAG, type CommandHelp } from '../flags.js';

export const simHelp: CommandHelp = {
  usage: 'edge-router sim --scenario <name> [--duration s] [--rps n]',
  summary: `Run a simulation scenario and print its report; exit 1 when it fails. Scenarios: ${SCENARIO_NAMES.join(', ')}, all.`,
  flags: [
    { name: 'scenario', type: 'string', env: 'EDGE_SIM_SCENARIO', valueName: 'name', description: `${SCENARIO_NAMES.join(' | ')} | all` },
    { name: 'duration', type: 'string', env: 'EDGE_SIM_DURATION_S', valueName: 's', defaultText: '15 (long-tail: 120, steady-compare: 60)', description: 'length of the run in seconds (long-tail, steady-compare: per routing mode)' },
    { name: 'rps', type: 'string', env: 'EDGE_SIM_RPS', valueName: 'n', defaultText: '60', description: 'requests per second across the client metros' },
    { name: 'routing', type: 'string', env: 'EDGE_SIM_ROUTING', valueName: 'latency|nearest', default: 'latency', description: "the router's routing mode, as the router's --routing (long-tail and steady-compare always compare both)" },
    { name: 'hedge', type: 'boolean', description: 'long-tail: add a third run, latency routing with every function deployed with cold-start hedging' },
    HELP_FLAG,
  ],
};
