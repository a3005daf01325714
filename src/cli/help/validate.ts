/** What `edge-router validate` takes (validate-command.ts runs it): the router's flags. */
import type { CommandHelp } from '../flags.js';
import { routerHelp } from './router.js';

export const validateHelp: CommandHelp = {
  usage: 'edge-router validate [router flags]',
  summary:
    'Check a router configuration without starting it: flags, regions file, GeoIP database, certificates\n' +
    '(key match, expiry, names) and, with --redis, the registry (reachable, schema, records). Takes the\n' +
    "router's flags and environment. Exit 0 when all is usable, 2 with one line per problem; a setting\n" +
    'given that would do nothing is a warning line on stderr, and changes neither.',
  flags: routerHelp.flags,
};
