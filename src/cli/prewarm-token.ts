/**
 * The secret routers and orchestrators share for pre-warm requests (`--routing latency`): a
 * router that sent a request away from a cold region asks that region for a container. The
 * token never appears in logs; prefer the environment variable (flags show in `ps`).
 */
import { UsageError } from '../core/errors.js';
import { sourceOf, stringFlag, type FlagSpec, type ParsedFlags } from './flags.js';

export const PREWARM_TOKEN_FLAG: FlagSpec = {
  name: 'prewarm-token',
  type: 'string',
  env: 'EDGE_PREWARM_TOKEN',
  valueName: 'token',
  defaultText: 'none: no pre-warming',
  description: 'shared by routers and orchestrators: lets a router ask a cold region to start a container (--routing latency)',
};

/**
 * The token as an Authorization header carries it. Surrounding whitespace is dropped (a Secret's
 * newline); any other whitespace, control or non-ASCII character is refused at start: undici
 * refused a header with a newline, and an orchestrator reads `Bearer <token> ` without its trailing
 * space, so every pre-warm failed, silently (pre-warming is best effort), for the router's whole run.
 */
export function prewarmToken(flags: ParsedFlags): { prewarmToken?: string } {
  const raw = stringFlag(flags, 'prewarm-token');
  if (raw === undefined) return {};
  const source = sourceOf(flags, 'prewarm-token');
  const token = raw.trim();
  if (token.length < 16) throw new UsageError(`${source}: expected at least 16 characters`);
  const at = token.search(/[^\x21-\x7e]/);
  if (at >= 0) {
    const bad = token.charCodeAt(at);
    const what = bad === 0x20 ? 'whitespace' : bad < 0x20 || bad === 0x7f ? 'a control character' : 'a non-ASCII character';
    // The character is named, never the token.
    throw new UsageError(`${source}: expected a token of visible ASCII characters (no spaces), found ${what} at character ${at + 1}`);
  }
  return { prewarmToken: token };
}
