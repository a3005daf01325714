/** What `edge-router registry` takes (registry-command.ts runs it). */
import { HELP_FLAG, SHARED_FLAGS, type CommandHelp } from '../flags.js';
import { REQUIRED_REDIS_FLAGS } from '../redis-flags.js';

export const registryHelp: CommandHelp = {
  usage: 'edge-router registry <action> [args] --redis <url>',
  summary: [
    'Operate the shared health registry. Actions:',
    '  status [--json]                                   regions: status, heartbeat age, load, drain, weight',
    '  drain <region> | undrain <region>                 stop / resume sending new traffic to a region',
    '  weight <region> <0-100>|default                   proximity weight (2 = ranks as if half as far); default: the regions file\'s',
    '  deploy --org <o> --fn <f> --regions a,b [--tier extended] [--disabled] [--hedge]',
    '  undeploy --org <o> --fn <f>',
    '  domain add <host> --org <o> --fn <f> | domain remove <host>',
    '  residency set --org <o> --regions a,b | residency clear --org <o>',
    '  events [--json] [--limit n]                       the health event log, newest first',
    '  export [--out file]                               functions, domains, residency and overrides as JSON (a backup)',
    '  import <file> [--overwrite]                       write a backup in: entries missing from the registry, or all with --overwrite',
  ].join('\n'),
  // An action and its arguments (`domain add <host>`); each action reads the ones it takes.
  maxArguments: Number.POSITIVE_INFINITY,
  flags: [
    { name: 'json', type: 'boolean', description: 'machine-readable output' },
    { name: 'org', type: 'string', valueName: 'org', description: 'organisation id' },
    { name: 'fn', type: 'string', valueName: 'fn', description: 'function name' },
    { name: 'regions', type: 'string', list: true, valueName: 'a,b', description: 'comma-separated region ids' },
    { name: 'tier', type: 'string', valueName: 'tier', defaultText: 'standard', description: 'timeout tier: standard (30 s) or extended (60 s)' },
    { name: 'disabled', type: 'boolean', description: 'deploy the function disabled' },
    { name: 'hedge', type: 'boolean', description: 'deploy with cold-start hedging on (replayable requests raced from a warm region when the pick is cold)' },
    { name: 'limit', type: 'string', valueName: 'n', defaultText: '50', description: 'how many events to show' },
    { name: 'out', type: 'string', valueName: 'file', defaultText: 'standard output', description: 'export: write the backup to this file' },
    { name: 'overwrite', type: 'boolean', description: 'import: replace entries the registry has already (default: keep them)' },
    ...REQUIRED_REDIS_FLAGS,
    ...SHARED_FLAGS.filter((f) => f.name !== 'regions'),
    { name: 'regions-file', type: 'string', env: 'EDGE_REGIONS', valueName: 'file', defaultText: 'the bundled regions.json', description: 'regions file (named --regions on other commands)' },
    HELP_FLAG,
  ],
};
