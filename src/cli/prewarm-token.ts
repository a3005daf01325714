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

export function prewarmToken(flags: ParsedFlags): { prewarmToken?: string } {
  const token = stringFlag(flags, 'prewarm-token');
  if (token === undefined) return {};
  if (token.length < 16) throw new UsageError(`${sourceOf(flags, 'prewarm-token')}: expected at least 16 characters`);
  return { prewarmToken: token };
}
