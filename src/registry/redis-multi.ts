/** Runs a Redis MULTI and returns its replies in order; the first failed command's error is thrown. */
import type { Redis } from 'ioredis';

export async function execMulti(multi: ReturnType<Redis['multi']>): Promise<unknown[]> {
  const results = await multi.exec();
  if (results === null) throw new Error('Redis transaction aborted');
  return results.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}
