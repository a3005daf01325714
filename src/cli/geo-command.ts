/** `edge-router geo build-sim`: writes geo/sim.mmdb from the simulated client metros. */
import { UsageError } from '../core/errors.js';
import { buildSimDatabase } from '../geoip/sim-database.js';
import { CLIENT_METROS, COMPOSE_CLIENT_METROS } from '../sim/client-metros.js';
import { stringFlag, type ParsedFlags } from './flags.js';
import { writeLine, type CliIo } from './io.js';
import { onNamedFile, replaceFile } from './named-file.js';

export async function runGeo(flags: ParsedFlags, io: CliIo): Promise<number> {
  const [action] = flags.positionals;
  if (action !== 'build-sim') throw new UsageError('geo: expected the action "build-sim"');
  const out = stringFlag(flags, 'out') ?? 'geo/sim.mmdb';
  const metros = [...CLIENT_METROS, ...COMPOSE_CLIENT_METROS];
  const bytes = buildSimDatabase(metros);
  // Write beside and rename, so a router watching the file never reads half of it.
  await onNamedFile(out, 'write', () => replaceFile(out, bytes));
  writeLine(io.stdout, `wrote ${out}: ${CLIENT_METROS.length} metros, ${metros.length} subnets, ${bytes.length} bytes`);
  return 0;
}
