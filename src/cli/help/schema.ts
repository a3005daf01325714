/** What `edge-router schema` takes (schema-command.ts runs it). */
import { HELP_FLAG, type CommandHelp } from '../flags.js';

export const schemaHelp: CommandHelp = {
  usage: 'edge-router schema',
  summary: 'Print the JSON Schema of regions.json (also shipped as schema/regions.schema.json) for editors and CI checks.',
  flags: [HELP_FLAG],
};
