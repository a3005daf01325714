/** Runs a Redis MULTI and returns its replies in order; the first failed command's error is thrown. */
import type { Redis } from 'ioredis';

export async function execMulti(multi: ReturnType<Redis['multi']>): Promise<unknown[]> {
  const results = await multi.exec().catch(rethrowCause);
  if (results === null) throw new Error('Redis transaction aborted');
  return results.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}

/**
 * A transaction Redis refused as a whole fails with EXECABORT, which says nothing of why: the
 * refusal of the command it queued (OOM, READONLY, NOREPLICAS …, which ioredis keeps as
 * `previousErrors`) is thrown instead, so logs and answers name the cause.
 */
export function rethrowCause(err: unknown): never {
  const previous = (err as { previousErrors?: unknown[] } | null)?.previousErrors?.[0];
  throw previous instanceof Error ? previous : err;
}
