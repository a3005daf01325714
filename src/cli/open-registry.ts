/** Builds the HealthRegistry a command asked for: Redis when a URL is given, else none (memory lives in a router). */
import type { RegionConfig } from '../core/types.js';
import { RedisRegistry, redactUrl } from '../registry/redis-registry.js';
import type { FlagSpec, ParsedFlags } from './flags.js';
import { stringFlag } from './flags.js';

export const REDIS_FLAGS: readonly FlagSpec[] = [
  {
    name: 'redis',
    type: 'string',
    env: 'REDIS_URL',
    valueName: 'url',
    defaultText: 'none (the in-process memory registry)',
    description: 'health registry: redis://[:password@]host:port[/db] or rediss:// for TLS',
  },
  {
    name: 'redis-prefix',
    type: 'string',
    env: 'EDGE_REDIS_PREFIX',
    valueName: 'prefix',
    defaultText: 'edge:',
    description: 'key prefix in Redis (use a {hash tag} such as {edge}: on Redis Cluster)',
  },
];

export async function openRedisRegistry(
  flags: ParsedFlags,
  regions: readonly RegionConfig[],
  handlers: { onRejected?: (where: string, reason: string) => void; longRunning?: boolean } = {},
): Promise<RedisRegistry | undefined> {
  const url = stringFlag(flags, 'redis');
  if (url === undefined) return undefined;
  const registry = new RedisRegistry({
    url,
    keyPrefix: stringFlag(flags, 'redis-prefix') ?? 'edge:',
    regions: regions.map((r) => r.id),
    // A one-shot CLI run fails fast with one clear line; a service (probe, orchestrator) keeps reconnecting.
    ...(handlers.longRunning ? {} : { redisOptions: { retryStrategy: () => null } }),
    ...(handlers.onRejected ? { onRejected: handlers.onRejected } : {}),
  });
  try {
    await registry.ready(3_000);
  } catch (err) {
    await registry.close();
    throw new RegistryUnreachableError(`cannot reach the registry at ${redactUrl(url)}: ${(err as Error).message}`);
  }
  return registry;
}

export class RegistryUnreachableError extends Error {
  override readonly name = 'RegistryUnreachableError';
}
