/**
 * The `edge-router` command: dispatches to subcommands and turns errors into exit codes
 * (2 for usage and configuration errors, 1 for anything unexpected). Commands added by later
 * work register here.
 */
import { describeError, UsageError } from '../core/errors.js';
import { formatHelp, parseFlags, type CommandHelp, type ParsedFlags } from './flags.js';
import { COMMAND_HELPS, type CommandName } from './help/commands.js';
import { writeLine, type CliIo } from './io.js';
import { packageVersion } from './package-root.js';
import { asRegistryUnreachable } from './registry-unreachable.js';

type Run = (flags: ParsedFlags, io: CliIo) => Promise<number>;

interface Command {
  readonly help: CommandHelp;
  /**
   * The command's implementation, imported only to run it: imported up front, every command (the
   * router, the orchestrator, the simulation) was loaded for `--help`, `schema` or `registry`
   * too, about a CPU-second in each of the hundreds of processes the tests start.
   */
  load(): Promise<Run>;
}

/** Each command's implementation, imported only to run it (see `Command.load`). */
const LOADERS: Record<CommandName, () => Promise<Run>> = {
  router: async () => (await import('./router-command.js')).runRouter,
  start: async () => (await import('./start-command.js')).runStart,
  orchestrator: async () => (await import('./orchestrator-command.js')).runOrchestrator,
  validate: async () => (await import('./validate-command.js')).runValidate,
  explain: async () => (await import('./explain.js')).runExplain,
  probe: async () => (await import('./probe-command.js')).runProbe,
  registry: async () => (await import('./registry-command.js')).runRegistry,
  geo: async () => (await import('./geo-command.js')).runGeo,
  sim: async () => (await import('./sim-command.js')).runSim,
  schema: async () => (await import('./schema-command.js')).runSchema,
  reference: async () => (await import('./reference-command.js')).runReference,
};

const COMMANDS: Record<string, Command> = Object.fromEntries(COMMAND_HELPS.map(([name, help]) => [name, { help, load: LOADERS[name] }]));

/**
 * A summary's first sentence, on one line: summaries wrap at any word, so their first line could
 * stop mid-sentence ("… With --redis the live registry").
 */
function firstSentence(summary: string): string {
  const text = summary.replace(/\s*\n\s*/g, ' ');
  return /^.*?\.(?=\s|$)/.exec(text)?.[0] ?? text;
}

function topHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length)) + 2;
  return [
    'Usage: edge-router <command> [flags]',
    '',
    'Multi-region ingress for the function platform.',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}${firstSentence(c.help.summary)}`),
    '',
    'Run `edge-router <command> --help` for the flags of a command (each with its env variable and default);',
    '`edge-router --version` for the version.',
    '',
  ].join('\n');
}

export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-V' || name === 'version') {
    writeLine(io.stdout, `edge-router ${packageVersion()} (node ${process.version})`);
    return 0;
  }
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(topHelp());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    writeLine(io.stderr, `edge-router: unknown command "${name}". Run edge-router --help.`);
    return 2;
  }
  try {
    // Help from the command line alone: a bad environment variable must not hide the help that
    // says what it takes (EDGE_ZONE=" " refused `router --help`, exit 2).
    if (parseFlags(rest, command.help.flags, {}).values.get('help') === true) {
      io.stdout.write(formatHelp(command.help));
      return 0;
    }
    const flags = parseFlags(rest, command.help.flags, io.env);
    // A word that is not a flag's value was dropped unread: a second address after --ip, or a flag
    // typed without its dashes (`https-port 8443`), and the command went on without it.
    const stray = flags.positionals[command.help.maxArguments ?? 0];
    if (stray !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(stray)}: a value goes after its flag (--name value), one flag per value`);
    const run = await command.load();
    return await run(flags, io);
  } catch (thrown) {
    // A command's registry call that Redis refused for the moment: the registry is unreachable, not broken.
    const err = asRegistryUnreachable(thrown);
    if (err instanceof UsageError) {
      writeLine(io.stderr, `edge-router ${name}: ${err.message}\n\n${formatHelp(command.help)}`);
      return 2;
    }
    const described = describeError(err);
    if (described.exitCode === 2) {
      const hint = described.code === 'address_in_use' || described.code === 'address_not_permitted' ? `: free it, or choose other ports (edge-router ${name} --help lists the --*-port flags)` : '';
      writeLine(io.stderr, `edge-router ${name}: ${described.message}${hint}`);
      return 2;
    }
    writeLine(io.stderr, `edge-router ${name}: unexpected error: ${(err as Error).stack ?? String(err)}`);
    return 1;
  }
}
