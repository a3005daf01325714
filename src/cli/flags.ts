/**
 * Command-line flags as data: one table per command gives parsing (node:util parseArgs),
 * the env variable each flag falls back to, its default and its help line, so `--help`
 * cannot drift from what is parsed. Precedence: flag > env > (config file, resolved by the
 * caller) > default.
 */
import { parseArgs } from 'node:util';
import { ConfigError, UsageError } from '../core/errors.js';

export interface FlagSpec {
  readonly name: string;
  readonly type: 'string' | 'boolean';
  /** Environment variable consulted when the flag is absent. */
  readonly env?: string;
  /**
   * The value when neither the flag nor its env variable is given, as it would be typed: parsing
   * applies it and help shows it, so the two cannot disagree.
   */
  readonly default?: string;
  /**
   * Help's words for a default the caller works out (from the regions file, the machine, …)
   * when there is no plain `default`; it replaces `default` in help when both are set.
   */
  readonly defaultText?: string;
  readonly description: string;
  readonly multiple?: boolean;
  /**
   * Its one value is a comma-separated list: given twice, it is refused (parseArgs keeps the last,
   * and a user who repeats a list flag means both lists). Other one-value flags given twice take
   * the last, as command lines do (a wrapper adds its defaults first, the caller overrides them).
   */
  readonly list?: boolean;
  readonly valueName?: string;
}

export interface CommandHelp {
  readonly usage: string;
  readonly summary: string;
  readonly flags: readonly FlagSpec[];
  /** Words that are not flags the command takes at most (an action and its arguments); default none. */
  readonly maxArguments?: number;
}

export interface ParsedFlags {
  /** Value per flag name from the command line, env or the flag's `default`; absent when none gave one. */
  readonly values: ReadonlyMap<string, string | boolean | string[]>;
  readonly positionals: readonly string[];
  /** Where each present value came from, for error messages (`--zone`, `EDGE_ZONE` or `default`). */
  readonly sources: ReadonlyMap<string, string>;
}

export const HELP_FLAG: FlagSpec = { name: 'help', type: 'boolean', description: 'show this help and exit' };

/** Flags every command understands. */
export const SHARED_FLAGS: readonly FlagSpec[] = [
  {
    name: 'regions',
    type: 'string',
    env: 'EDGE_REGIONS',
    valueName: 'file',
    defaultText: 'the bundled regions.json',
    description: 'regions file: regions, capacity, country fallbacks, custom domains',
  },
  {
    name: 'geoip',
    type: 'string',
    env: 'EDGE_GEOIP',
    valueName: 'mmdb',
    defaultText: 'regions file "geoip", else the bundled geo/sim.mmdb',
    description: 'GeoIP database (MaxMind City/Country or DB-IP flat city), or "none" to run without one',
  },
  {
    name: 'zone',
    type: 'string',
    env: 'EDGE_ZONE',
    valueName: 'domain',
    defaultText: 'regions file "zone", else telnyxcompute.com',
    description: 'DNS zone whose <fn>-<org> names are routed',
  },
  {
    name: 'trusted-proxies',
    list: true,
    type: 'string',
    env: 'EDGE_TRUSTED_PROXIES',
    valueName: 'cidrs',
    defaultText: 'regions file "trustedProxies", else none',
    description: 'comma-separated CIDRs whose forwarding header (the router\'s --client-address-header) is believed; none: no proxy, whatever the regions file says',
  },
  {
    name: 'orchestrator-ca',
    type: 'string',
    env: 'EDGE_ORCHESTRATOR_CA',
    valueName: 'file',
    defaultText: "the system's CAs only",
    description: 'PEM certificates that https orchestrators\' certificates may also chain to (a private CA); probes and requests check each orchestrator against its own URL\'s name',
  },
  {
    name: 'orchestrator-client-cert',
    type: 'string',
    env: 'EDGE_ORCHESTRATOR_CLIENT_CERT',
    valueName: 'file',
    defaultText: 'none',
    description: 'client certificate (PEM file) the router presents to https orchestrators that require one (mutual TLS); with --orchestrator-client-key',
  },
  {
    name: 'orchestrator-client-key',
    type: 'string',
    env: 'EDGE_ORCHESTRATOR_CLIENT_KEY',
    valueName: 'file',
    defaultText: 'none',
    description: 'private key (PEM file) of --orchestrator-client-cert',
  },
];

export function parseFlags(argv: readonly string[], specs: readonly FlagSpec[], env: NodeJS.ProcessEnv): ParsedFlags {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {};
  for (const spec of specs) options[spec.name] = { type: spec.type, ...(spec.multiple ? { multiple: true } : {}) };
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; options: typeof options; allowPositionals: true; strict: true; tokens: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true, tokens: true });
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\. To specify a positional argument.*$/s, ''));
  }
  // A list flag given twice: parseArgs keeps the last, and the first list was dropped unread
  // (`deploy --regions fra --regions nyc` deployed to nyc alone, `--trusted-proxies a
  // --trusted-proxies b` trusted b alone), as extra words were before they were refused.
  const lists = new Set(specs.filter((spec) => spec.list === true).map((spec) => spec.name));
  const seen = new Set<string>();
  for (const token of parsed.tokens) {
    if (token.kind !== 'option' || !lists.has(token.name)) continue;
    if (seen.has(token.name)) throw new UsageError(`--${token.name} given more than once: give its values in one, comma-separated (--${token.name} a,b)`);
    seen.add(token.name);
  }
  const values = new Map<string, string | boolean | string[]>();
  const sources = new Map<string, string>();
  for (const spec of specs) {
    const given = parsed.values[spec.name];
    if (given !== undefined) {
      values.set(spec.name, given as string | boolean | string[]);
      sources.set(spec.name, `--${spec.name}`);
      continue;
    }
    const fromEnv = spec.env === undefined ? undefined : env[spec.env];
    if (fromEnv === undefined || fromEnv === '') {
      if (spec.default !== undefined) {
        values.set(spec.name, spec.multiple ? [spec.default] : spec.default);
        sources.set(spec.name, 'default');
      }
      continue;
    }
    sources.set(spec.name, spec.env!);
    // Refused rather than read: kept as given, " " became an empty list of trusted proxies that
    // overrode regions.json's, and a newline became a Redis key prefix of its own.
    if (spec.type === 'string' && fromEnv.trim() === '') throw new ConfigError(`${spec.env!}: holds only whitespace (${JSON.stringify(fromEnv)}): leave it unset or empty for the default, or give a value`);
    if (spec.type === 'boolean') values.set(spec.name, envBoolean(spec.env!, fromEnv));
    else values.set(spec.name, spec.multiple ? fromEnv.split(',').map((s) => s.trim()) : envText(fromEnv));
  }
  return { values, positionals: parsed.positionals, sources };
}

/**
 * A string env variable's value without surrounding whitespace, which an .env file, a Kubernetes
 * Secret or `$(cat file)` leaves by accident: `EDGE_REGIONS="/etc/edge/regions.json "` read as a
 * path ending in a space failed as "/etc/edge/regions.json : file not found", and `EDGE_LOG_LEVEL`
 * with a newline was refused, while numbers and switches were read. (Whitespace only is refused
 * before this.)
 */
function envText(raw: string): string {
  return raw.trim();
}

/**
 * A boolean env variable's value. A word it does not know is refused rather than read as false:
 * `EDGE_PROXY_PROTOCOL=enabled` must not quietly turn the protocol off.
 */
function envBoolean(name: string, raw: string): boolean {
  const word = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(word)) return true;
  if (['0', 'false', 'no', 'off'].includes(word)) return false;
  throw new UsageError(`${name}: expected 1/true/yes/on or 0/false/no/off, got ${JSON.stringify(raw)}`);
}

/** Where a flag's value came from, as an error about it names it: `--name`, or the env variable that set it. */
export function sourceOf(flags: ParsedFlags, name: string): string {
  const source = flags.sources.get(name);
  return source === undefined || source === 'default' ? `--${name}` : source;
}

export function stringFlag(flags: ParsedFlags, name: string): string | undefined {
  const v = flags.values.get(name);
  return typeof v === 'string' ? v : undefined;
}

/** The value of a flag that has a `default` in its table (so parsing always gives one). */
export function valueOf(flags: ParsedFlags, name: string): string {
  const raw = stringFlag(flags, name);
  if (raw === undefined) throw new Error(`--${name}: no value and no default in the flag table`);
  return raw;
}

export function listFlag(flags: ParsedFlags, name: string): string[] {
  const v = flags.values.get(name);
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}

export function boolFlag(flags: ParsedFlags, name: string): boolean {
  return flags.values.get(name) === true;
}

/** What help says a flag's default is (empty: none). */
export function defaultShown(f: FlagSpec): string {
  return f.defaultText ?? f.default ?? '';
}

export function formatHelp(help: CommandHelp): string {
  const rows = help.flags.map((f) => {
    const left = `  --${f.name}${f.type === 'string' ? ` <${f.valueName ?? 'value'}>` : ''}`;
    const shownDefault = defaultShown(f);
    const extras = [f.env ? `env ${f.env}` : '', shownDefault ? `default: ${shownDefault}` : ''].filter(Boolean).join('; ');
    return { left, right: `${f.description}${f.multiple ? ' (repeatable)' : ''}${extras ? ` [${extras}]` : ''}` };
  });
  const width = Math.max(...rows.map((r) => r.left.length)) + 2;
  return [
    `Usage: ${help.usage}`,
    '',
    help.summary,
    '',
    'Flags:',
    ...rows.map((r) => r.left.padEnd(width) + r.right),
    '',
  ].join('\n');
}
