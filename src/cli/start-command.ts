/**
 * `edge-router start` (`npm start`). Will run the router in front of the local five-region
 * simulation once the data plane and orchestrators exist. Until then it says so plainly and
 * shows the part that works: a routing decision for a simulated client.
 */
import { runExplain } from './explain.js';
import { HELP_FLAG, SHARED_FLAGS, type CommandHelp, type ParsedFlags } from './flags.js';
import { writeLine, type CliIo } from './io.js';

export const startHelp: CommandHelp = {
  usage: 'edge-router start [flags]',
  summary: 'Run the local multi-region simulation (today: routing brain only; see README "Status").',
  flags: [...SHARED_FLAGS, HELP_FLAG],
};

export async function runStart(flags: ParsedFlags, io: CliIo): Promise<number> {
  writeLine(
    io.stdout,
    [
      'edge-router: the router, orchestrators and dashboard are not built yet (README, "Status").',
      'What works today is the routing brain. A client in London (127.8.0.1 in geo/sim.mmdb) asking for',
      'my-function-abc123.telnyxcompute.com would be routed like this:',
      '',
    ].join('\n'),
  );
  const values = new Map(flags.values);
  values.set('host', 'my-function-abc123.telnyxcompute.com');
  values.set('ip', ['127.8.0.1']);
  const code = await runExplain({ ...flags, values }, io);
  writeLine(io.stdout, '\nTry: npx edge-router explain --host <host> --ip <ip>   (npx edge-router --help for more)');
  return code;
}
