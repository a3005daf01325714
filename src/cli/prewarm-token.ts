/**
 * The secret routers and orchestrators share for pre-warm requests (`--routing latency`): a
 * router that sent a request away from a cold region asks that region for a container. The
 * token never appears in logs; prefer a file (`--prewarm-token-file`, a mounted secret: a variable
 * shows in `docker inspect`, a flag in `ps`) or the environment variable.
 */
import { MAX_TOKEN_FILE_BYTES, readProblemOf, readRegularTextSync } from '../core/regular-file.js';
import { ConfigError, UsageError } from '../core/errors.js';
import { pathWorthShowing, unshownSecretFile } from '../core/file-contents.js';
import { sourceOf, stringFlag, type FlagSpec, type ParsedFlags } from './flags.js';
import { secretSourceOf } from './secret-source.js';

export const PREWARM_TOKEN_FLAG: FlagSpec = {
  name: 'prewarm-token',
  type: 'string',
  env: 'EDGE_PREWARM_TOKEN',
  valueName: 'token',
  defaultText: 'none: no pre-warming',
  description: 'shared by routers and orchestrators: lets a router ask a cold region to start a container (--routing latency)',
};

export const PREWARM_TOKEN_FILE_FLAG: FlagSpec = {
  name: 'prewarm-token-file',
  type: 'string',
  env: 'EDGE_PREWARM_TOKEN_FILE',
  valueName: 'file',
  description: 'read the pre-warm token from this file (a mounted secret)',
};

/**
 * The token from `--prewarm-token` or `--prewarm-token-file`, by the admin token's rule
 * (secret-source.ts). Read once at start (a small file).
 */
export function prewarmToken(flags: ParsedFlags): { prewarmToken?: string } {
  const source = secretSourceOf(flags, 'prewarm-token', 'prewarm-token-file', 'the pre-warm token');
  if (source === 'file') return { prewarmToken: tokenFromFile(flags) };
  if (source === 'value') return { prewarmToken: checkedToken(stringFlag(flags, 'prewarm-token')!, sourceOf(flags, 'prewarm-token')) };
  return {};
}

function tokenFromFile(flags: ParsedFlags): string {
  const file = stringFlag(flags, 'prewarm-token-file')!;
  const source = sourceOf(flags, 'prewarm-token-file');
  if (file.trim() === '') throw new UsageError(`${source}: expected the path of a file holding the pre-warm token, got ""`);
  let text: string;
  try {
    text = readRegularTextSync(file, MAX_TOKEN_FILE_BYTES);
  } catch (err) {
    const code = readProblemOf(err);
    // The token itself, given where its file's path belongs, must not reach the log as a path.
    if (!pathWorthShowing(file)) throw new ConfigError(`${source}: ${unshownSecretFile('pre-warm token file', 'token', code)}`);
    throw new ConfigError(`${file}: cannot read the pre-warm token (${code})`);
  }
  return checkedToken(text, file);
}

/**
 * The token as an Authorization header carries it. Surrounding whitespace is dropped (a Secret's
 * or a file's newline); any other whitespace, control or non-ASCII character is refused at start: undici
 * refused a header with a newline, and an orchestrator reads `Bearer <token> ` without its trailing
 * space, so every pre-warm failed, silently (pre-warming is best effort), for the router's whole run.
 */
function checkedToken(raw: string, source: string): string {
  const token = raw.trim();
  if (token.length < 16) throw new UsageError(`${source}: expected at least 16 characters`);
  const at = token.search(/[^\x21-\x7e]/);
  if (at >= 0) {
    const bad = token.charCodeAt(at);
    const what = bad === 0x20 ? 'whitespace' : bad < 0x20 || bad === 0x7f ? 'a control character' : 'a non-ASCII character';
    // The character is named, never the token.
    throw new UsageError(`${source}: expected a token of visible ASCII characters (no spaces), found ${what} at character ${at + 1}`);
  }
  return token;
}
