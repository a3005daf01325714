/** What `edge-router geo` takes (geo-command.ts runs it). */
import { HELP_FLAG, type CommandHelp } from '../flags.js';

export const geoHelp: CommandHelp = {
  usage: 'edge-router geo build-sim --out <file>',
  summary: 'Generate the simulation GeoIP database: loopback subnets (and the docker-compose client subnets) → client metros around the world.',
  maxArguments: 1,
  flags: [{ name: 'out', type: 'string', valueName: 'file', description: 'where to write the .mmdb', defaultText: 'geo/sim.mmdb' }, HELP_FLAG],
};
