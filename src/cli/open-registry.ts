/** Builds the HealthRegistry a command asked for: Redis when a URL is given, else none (memory lives in a router). */
import type { RegionConfig } from '../core/types.js';
import { EVICTING_SERVER_ADVICE, EVICTION_UNCHECKED_ADVICE, RedisDatabaseError, RedisLoginError, RedisRegistry, type RedisRegistryOptions, type SentinelTarget } from '../registry/redis-registry.js';
import type { Logger } from '../observability/logger.js';
import { ConfigError, UsageError } from '../core/errors.js';
import { redactUrl } from '../core/redact-url.js';
import type { ParsedFlags } from './flags.js';
import { sourceOf, stringFlag } from './flags.js';
import { RegistryUnreachableError } from './registry-unreachable.js';

/** The Redis target the flags name: a URL, Sentinels, or nothing (memory registry). */
export function redisTarget(flags: ParsedFlags): { url: string; sentinel?: SentinelTarget } | null {
  const url = stringFlag(flags, 'redis');
  if (url !== undefined && !isRedisUrl(url)) {
    // Shown masked: a URL that fails to parse may still carry a real password.
    // Quoted when it has surrounding whitespace, which the message must show.
    const shown = url.trim() === url ? redactUrl(url) : JSON.stringify(redactUrl(url));
    throw new UsageError(`${sourceOf(flags, 'redis')}: expected redis://[:password@]host:port[/db] or rediss://…, got ${shown}`);
  }
  const sentinels = stringFlag(flags, 'redis-sentinels');
  if (sentinels === undefined) return url === undefined ? null : { url };
  const list = sentinels.split(',').map((entry) => {
    const match = /^\s*([^\s:]+|\[[0-9a-fA-F:]+\]):(\d{1,5})\s*$/.exec(entry);
    if (match === null || Number(match[2]) < 1 || Number(match[2]) > 65_535) throw new UsageError(`${sourceOf(flags, 'redis-sentinels')}: expected host:port,host:port, got ${JSON.stringify(entry)}`);
    return { host: match[1]!.replace(/^\[|\]$/g, ''), port: Number(match[2]) };
  });
  return { url: url ?? 'redis://localhost', sentinel: { sentinels: list, name: stringFlag(flags, 'redis-sentinel-name') ?? 'mymaster' } };
}

/** The prefix of every registry key the flags name (--redis-prefix): what a command names a key by. */
export function redisKeyPrefix(flags: ParsedFlags): string {
  const prefix = stringFlag(flags, 'redis-prefix') ?? 'edge:';
  // A stray newline or space moved every key into a new, empty keyspace: the directory read as
  // empty and every function answered 404, while `validate` passed.
  if (/[^\x21-\x7e]/.test(prefix)) throw new ConfigError(`${sourceOf(flags, 'redis-prefix')}: expected a prefix of visible ASCII characters (no spaces), got ${JSON.stringify(prefix)}`);
  return prefix;
}

/**
 * Whether ioredis can take the URL. Checked here because ioredis throws on a bad one (a port out
 * of range, a password with a stray %) from its constructor, as a TypeError with a stack.
 */
function isRedisUrl(text: string): boolean {
  // new URL() drops surrounding whitespace; ioredis does not, and threw "Invalid URL" on a leading space.
  if (text.trim() !== text) return false;
  let url: URL;
  try {
    url = new URL(text);
    decodeURIComponent(url.username);
    decodeURIComponent(url.password);
  } catch {
    return false;
  }
  // Port 0 is no port to connect to: accepted, it was reported later as a registry that cannot be reached.
  return (url.protocol === 'redis:' || url.protocol === 'rediss:') && url.hostname !== '' && url.port !== '0' && /^(\/\d*)?$/.test(url.pathname);
}

/** The eviction check's findings in a process's log (routers, `start`): an evicting Redis is an error, an unreadable policy a warning. */
export function logEvictionChecks(logger: Logger): Required<Pick<RedisRegistryOptions, 'onEvictingServer' | 'onEvictionUnchecked'>> {
  return {
    onEvictingServer: (policy) => logger.error({ event: 'registry_evicts', policy }, EVICTING_SERVER_ADVICE),
    onEvictionUnchecked: (reason) => logger.warn({ event: 'registry_eviction_unchecked', reason }, EVICTION_UNCHECKED_ADVICE),
  };
}

export async function openRedisRegistry(
  flags: ParsedFlags,
  regions: readonly RegionConfig[],
  handlers: {
    onRejected?: (where: string, reason: string) => void;
    onEvictingServer?: (policy: string) => void;
    onEvictionUnchecked?: (reason: string) => void;
    longRunning?: boolean;
    readsNeedWrites?: boolean;
  } = {},
): Promise<RedisRegistry | undefined> {
  const target = redisTarget(flags);
  if (target === null) return undefined;
  const registry = new RedisRegistry({
    ...target,
    keyPrefix: redisKeyPrefix(flags),
    regions: regions.map((r) => r.id),
    // A one-shot CLI run fails fast with one clear line; a service (probe, orchestrator) keeps reconnecting.
    ...(handlers.longRunning ? {} : { redisOptions: { retryStrategy: () => null } }),
    ...(handlers.onRejected ? { onRejected: handlers.onRejected } : {}),
    ...(handlers.onEvictingServer ? { onEvictingServer: handlers.onEvictingServer } : {}),
    ...(handlers.onEvictionUnchecked ? { onEvictionUnchecked: handlers.onEvictionUnchecked } : {}),
    ...(handlers.readsNeedWrites ? { readsNeedWrites: true } : {}),
  });
  try {
    await registry.ready(3_000);
  } catch (err) {
    await registry.close();
    if (err instanceof RedisLoginError) throw new RegistryUnreachableError(`${err.message}: check the password in ${sourceOf(flags, 'redis')}`);
    if (err instanceof RedisDatabaseError) throw new RegistryUnreachableError(`${err.message}: check the database number in ${sourceOf(flags, 'redis')}`);
    throw new RegistryUnreachableError(`cannot reach the registry: ${(err as Error).message}`);
  }
  return registry;
}
