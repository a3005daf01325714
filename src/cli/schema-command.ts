/** `edge-router schema`: prints the JSON Schema of regions.json (the file shipped in schema/). */
import { regionsJsonSchemaText } from '../config/regions-json-schema.js';
import type { ParsedFlags } from './flags.js';
import type { CliIo } from './io.js';

export async function runSchema(_flags: ParsedFlags, io: CliIo): Promise<number> {
  io.stdout.write(regionsJsonSchemaText());
  return 0;
}
