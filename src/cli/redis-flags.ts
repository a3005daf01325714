/** The flags that name the shared health registry (Redis), taken by every command that may use one. */
import type { FlagSpec } from './flags.js';

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
    name: 'redis-sentinels',
    type: 'string',
    list: true,
    env: 'EDGE_REDIS_SENTINELS',
    valueName: 'host:port,…',
    description: 'reach Redis through these Sentinels (then --redis, if given, only supplies password, db and, as rediss://, TLS)',
  },
  {
    name: 'redis-sentinel-name',
    type: 'string',
    env: 'EDGE_REDIS_SENTINEL_NAME',
    valueName: 'name',
    defaultText: 'mymaster',
    description: 'the master group the Sentinels monitor',
  },
  {
    name: 'redis-prefix',
    type: 'string',
    env: 'EDGE_REDIS_PREFIX',
    valueName: 'prefix',
    defaultText: 'edge:',
    description: 'key prefix in Redis (several deployments may share one Redis under different prefixes)',
  },
];

/**
 * REDIS_FLAGS for a command that only works on a shared registry (`registry`, `probe`): the memory
 * registry lives inside a running router, so "none" is no default there but a refusal.
 */
export const REQUIRED_REDIS_FLAGS: readonly FlagSpec[] = REDIS_FLAGS.map((f) =>
  f.name === 'redis' ? { ...f, defaultText: 'none: required (this or --redis-sentinels)' } : f,
);
