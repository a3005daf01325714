/**
 * A private key prefix on the shared test Redis (TEST_REDIS_URL, else 127.0.0.1:6379), a raw
 * client for the test's own reads and writes, and the clean-up: every key under the prefix is
 * deleted after the suite. Call it inside the `describe` that needs it.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll } from 'vitest';

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export function redisKeyspace(label: string): { readonly url: string; readonly prefix: string; readonly raw: Redis } {
  const prefix = `test:${label}:${randomUUID()}:`;
  const raw = new Redis(TEST_REDIS_URL);
  afterAll(async () => {
    const keys = await raw.keys(`${prefix}*`);
    if (keys.length > 0) await raw.del(...keys);
    raw.disconnect();
  });
  return { url: TEST_REDIS_URL, prefix, raw };
}
