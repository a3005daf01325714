/**
 * A command's registry that cannot be reached, or that refused a command: one line and exit 2,
 * not a fault with a stack. Apart from open-registry.ts (it loads the Redis client) because
 * run-cli.ts reads every command's failure through asRegistryUnreachable.
 */
import { EdgeError } from '../core/errors.js';
import { isRedisReply, refusalOfTheMoment } from '../registry/redis-replies.js';

export class RegistryUnreachableError extends EdgeError {
  override readonly name = 'RegistryUnreachableError';
  constructor(message: string) {
    super('registry_unreachable', message);
  }
}

/**
 * A Redis refusal of the moment (LOADING, BUSY …: redis-replies.ts) that reached a command, as the
 * registry_unreachable it is for now: one line, exit 2, naming the reply. Any other reply of
 * Redis's own (OOM from a full Redis under noeviction, MISCONF from one that cannot save, an ACL's
 * NOPERM) is registry_refused, also one line and exit 2, in Redis's words, without "try again": it
 * lasts until an operator acts. The registry passes Redis's replies as they are (a router's watcher
 * reads them), so a one-shot command met one mid-command as a fault, with a stack. Anything else
 * is returned as it is.
 */
export function asRegistryUnreachable(err: unknown): unknown {
  const refusal = refusalOfTheMoment(err);
  if (refusal !== undefined) return new RegistryUnreachableError(`${refusal.meaning} (${refusal.word}); try again`);
  if (isRedisReply(err)) return new EdgeError('registry_refused', `Redis refused the command: ${err.message}`);
  return err;
}
