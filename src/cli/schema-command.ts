/** `edge-router schema`: prints the JSON Schema of regions.json (the file shipped in schema/). */
import { regionsJsonSchemaText } from '../config/regions-json-schema.js';
import { HELP_FLAG, type CommandHelp, type ParsedFlags } from './flags.js';
import type { CliIo } from './io.js';

export const schemaHelp: CommandHelp = {
  usage: 'edge-router schema',
  summary: 'Print the JSON Schema of regions.json (also shipped as schema/regions.schema.json) for editors and CI checks.',
  flags: [HELP_FLAG],
};

export async function runSchema(_flags: ParsedFlags, io: CliIo): Promise<number> {
  io.stdout.write(regionsJsonSchemaText());
  return 0;
}
