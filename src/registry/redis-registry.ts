/**
 * HealthRegistry in Redis (ioredis), shared by every router and orchestrator.
 *
 * Key layout (prefix default `edge:`; schema version in `<prefix>schema`):
 *   <prefix>hb:<region>   string  JSON Heartbeat of the region's reporter, expires after 5 × its TTL
 *                                 (garbage collection only); also a probe's, where no report stands,
 *                                 for routers from before probe:<region>
 *   <prefix>probe:<region> string JSON Heartbeat of a prober, the same way
 *   <prefix>service:<region> string JSON { reportedAt, serviceMs }: the median service time of the
 *                                 report of that time (Heartbeat.serviceMs), kept out of hb:<region>,
 *                                 which routers of earlier versions read with a strict schema
 *   <prefix>overrides     hash    region → JSON { drained, weight }
 *   <prefix>ejections     hash    region → JSON { until, count, cause }
 *   <prefix>functions     hash    "<org>/<fn>" → JSON { org, fn, regions, tier, enabled, hedge? }
 *   <prefix>residency     hash    org → JSON [region, …]
 *   <prefix>domains       hash    host → JSON { fn, org }
 *   <prefix>events        list    JSON HealthEvent, newest first, capped at 1,000
 *   <prefix>once:<key>    string  de-duplicates events many routers notice at once (1 h)
 *   <prefix>generation    string  names this body of data; written only by a seed or a restore, so a
 *                                 Redis that restarted empty has none (registry/generation.ts)
 *   <prefix>revisions     hash    directory part (functions, residency, domains) → its revision,
 *                                 changed by every write to the part (directory-patch.ts)
 *   <prefix>changes       channel JSON { v, kind, heartbeat? } published in the same MULTI as the
 *                                 write; a directory write's also carries { prev, rev, field, value }
 *
 * Push is pub/sub: lowest latency, works on every Redis (keyspace notifications need server
 * config that managed Redis often forbids; Streams would add replay we do not need because the
 * watcher reconciles on a timer anyway). Every value read is validated; a bad one is dropped
 * and reported through `onRejected`, never crashing the caller or spoiling other entries. A whole
 * part that cannot be read (a key of the wrong Redis type) is not read as empty but named
 * unreadable (RegistryState.unreadable), said once until it reads again: its readers keep what they
 * last read of it (an org's residency rules read as none would serve it from every region).
 */
import { RedisCertificateVault } from './redis-certificate-vault.js';
import { execMulti, rethrowCause } from './redis-multi.js';
import type { TicketKeyRing } from '../core/ticket-key-ring.js';
import { Redis, type RedisOptions } from 'ioredis';
import { EdgeError, thrownText } from '../core/errors.js';
import { redactUrl } from '../core/redact-url.js';
import type { FunctionRecord, FunctionRef, RegionId } from '../core/types.js';
import {
  DEFAULT_OVERRIDES,
  EVENT_LOG_LIMIT,
  sameRegions,
  storedEvent,
  STORE_CALLS,
  functionKey,
  withTtl,
  type AllHeartbeats,
  type DurableState,
  type Ejection,
  type HealthEvent,
  type HealthRegistry,
  type Heartbeat,
  type RegionOverrides,
  type RegistryChange,
  type RegistryState,
  type RestoredChanges,
  type RestoreMode,
  type StampedResidency,
  type UnreadablePart,
} from './health-registry.js';
import { UnreadableEpisodes } from './unreadable-episodes.js';
import { isRedisReply, isWrongType, LOGIN_REFUSED } from './redis-replies.js';
import { RecordDecoder, SCHEMA_VERSION, checkedHeartbeat, decodeRecord, ejectionSchema, storedEjection, fromFunctionRecord, overridesSchema, residencySchema, storedFunction } from './records.js';
import { SEED_PREFIX } from './generation.js';
import { DIRECTORY_PARTS, NO_REVISIONS, freshNonce, type DirectoryPart, type DirectoryRevisions, type HeldDirectory, type ReadMode } from './directory-patch.js';

/** What readers do with a directory part they cannot read (RegistryState.unreadable), as said with it. */
const KEPT_ENTRIES = 'its entries are kept as last read until it reads again (a router that has read none serves no function: registry_unreachable)';
/** The same for the overrides. */
const KEPT_OVERRIDES = 'the drains and weights are kept as last read until it reads again';
/** The same for the generation: it exists, so the data was not lost (a Redis that restarts empty has no key at all). */
const KEPT_GENERATION = 'the generation last read is kept, and no loss of data is judged (nor anything written back) until it reads again';

/** RedisRegistryOptions.directoryPageEntries's default. */
const DIRECTORY_PAGE_ENTRIES = 1_000;

/**
 * How much wider each look at the event log is than the one before, when the entries it skipped
 * left it short (readEvents): from a limit of 1, the whole capped log in 6 commands (1, 4, 16, 64,
 * 256, 1,000 entries); from the dashboard's 50, in 4.
 */
const EVENTS_WINDOW_GROWTH = 4;

/** One entry of a restore, as written: what it was, to tell what the restore changed (RestoredChanges). */
type RestoredEntry =
  | { readonly part: 'functions'; readonly record: FunctionRecord }
  | { readonly part: 'residency'; readonly org: string; readonly regions: ReadonlySet<RegionId> }
  | { readonly part: 'domains'; readonly host: string; readonly ref: FunctionRef }
  | { readonly part: 'overrides'; readonly region: RegionId; readonly overrides: RegionOverrides };

/**
 * A flat HGETALL (or HSCAN page) reply as an object (`into`, to add a page), without a prototype: a
 * field named `__proto__` is an entry like any other, not a prototype to set.
 */
function hashOf(flat: readonly string[], into = Object.create(null) as Record<string, string>): Record<string, string> {
  for (let i = 0; i + 1 < flat.length; i += 2) into[flat[i]!] = flat[i + 1]!;
  return into;
}

/** Where Redis is: a URL, or Sentinels that name the current master (the URL then only carries credentials/db). */
export interface SentinelTarget {
  readonly sentinels: ReadonlyArray<{ readonly host: string; readonly port: number }>;
  /** The master group name the Sentinels monitor (`sentinel monitor <name> …`). */
  readonly name: string;
}

export interface RedisRegistryOptions {
  /** `redis://` or `rediss://` URL (with Sentinel: only its password and db number are used). */
  readonly url: string;
  /** Connect through Redis Sentinel: ioredis asks the Sentinels for the master and follows failovers. */
  readonly sentinel?: SentinelTarget;
  readonly keyPrefix?: string;
  /** Configured region ids: data about any other region is refused. */
  readonly regions: readonly RegionId[];
  /** A stored value failed validation (log it, count it). */
  readonly onRejected?: (where: string, reason: string) => void;
  /** Connection trouble (already retried by ioredis with backoff). */
  readonly onConnectionError?: (err: Error) => void;
  /**
   * The Redis connected to may evict keys (its `maxmemory-policy` is not noeviction), read on every
   * connect: a failover or a restart may bring a server configured otherwise.
   */
  readonly onEvictingServer?: (policy: string) => void;
  /** The policy could not be read (an ACL user without INFO, a managed Redis that renamed it): not checked. */
  readonly onEvictionUnchecked?: (reason: string) => void;
  /**
   * Reads (readState, readAllHeartbeats) succeed only while Redis also takes writes: each carries
   * one tiny write (`<prefix>writable`) in its transaction. For a router's watcher, whose contact
   * with the registry decides whether heartbeats age: a Redis that answers reads but refuses every
   * write (full under noeviction, a read-only replica, CLIENT PAUSE WRITE, min-replicas unmet)
   * takes no region's heartbeat either, and must read as the outage it is (fail-static), not as
   * every region falling silent at once.
   */
  readonly readsNeedWrites?: boolean;
  /**
   * In a paged read (readState's `mode`), a directory part of more entries than this is read a page
   * of this many at a time (HSCAN) rather than in one reply (default 1,000).
   */
  readonly directoryPageEntries?: number;
  /** Extra ioredis options (Sentinel, TLS, timeouts). */
  readonly redisOptions?: RedisOptions;
}

/**
 * Lua for the scripts that write the directory: takes `part` to its next revision in the revisions
 * hash `key` (directory-patch.ts nextRevision: the counter one on, this write's nonce), replacing a
 * revisions key of the wrong Redis type; returns the revision before ('' for none) and after.
 */
const NEXT_REVISION_LUA = `
local function nextRevision(key, part, nonce)
  local kind = redis.call('TYPE', key).ok
  if kind ~= 'hash' and kind ~= 'none' then redis.call('DEL', key) end
  local prev = redis.call('HGET', key, part) or ''
  local rev = string.format('%d', (tonumber(string.match(prev, '^(%d+)%.')) or 0) + 1) .. '.' .. nonce
  redis.call('HSET', key, part, rev)
  return prev, rev
end`;

/** The hashes a restore writes, in RESTORE_SCRIPT's KEYS (from the 5th) and its triples' part numbers (from 1). */
const RESTORE_PARTS = ['functions', 'residency', 'domains', 'overrides'] as const;

/**
 * KEYS: generation, schema, changes channel, revisions, then the RESTORE_PARTS hashes. ARGV:
 * generation, mode, schema version, change message, seed prefix, the writer's nonce, then (part
 * number in RESTORE_PARTS, field, value) triples. Before writing anything it checks the type of
 * every key it would write into: the generation and each hash it has an entry for (a revisions key
 * of another type is replaced, as every directory write replaces it), as Redis keeps the writes of
 * a script that fails partway: an HSET refused WRONGTYPE midway would leave the entries before it
 * written, the revisions moved, and the rest unwritten. Returns a status, then:
 * - 'stamped': nothing written (a re-seed into a registry another import or restore stamped);
 * - 'unchanged', then the generation that stands: an import whose every entry stood already, into
 *   a stamped registry; nothing written, nothing published;
 * - 'wrongtype', then per key of another type its name and type: nothing written;
 * - 'written', then per entry it wrote (one that was not there, or, with `overwrite`, was there
 *   with another value) the ARGV index of its triple and, for a residency rule or an override, the
 *   value it replaced (nil for none; always nil for a function or a domain, whose old value the
 *   caller has no use for and which made a large reply of a large import): what the restore
 *   changed, told in the step that changed it.
 */
const RESTORE_SCRIPT = `${NEXT_REVISION_LUA}
-- Data of a newer schema is refused before anything is written, as every other write refuses it.
if redis.call('TYPE', KEYS[2]).ok == 'string' then
  local stamped = redis.call('GET', KEYS[2])
  local version = tonumber(stamped)
  if not version or version ~= math.floor(version) or version > tonumber(ARGV[3]) then return {'newer', stamped} end
end
local wrong = {'wrongtype'}
local generationType = redis.call('TYPE', KEYS[1]).ok
if generationType ~= 'string' and generationType ~= 'none' then
  table.insert(wrong, KEYS[1])
  table.insert(wrong, generationType)
  return wrong
end
local current = redis.call('GET', KEYS[1])
if ARGV[2] == 'missing-only' and current and string.sub(current, 1, #ARGV[5]) ~= ARGV[5] then return {'stamped'} end
local used = {}
for i = 7, #ARGV, 3 do used[tonumber(ARGV[i])] = true end
for part = 1, 4 do
  if used[part] then
    local kind = redis.call('TYPE', KEYS[4 + part]).ok
    if kind ~= 'hash' and kind ~= 'none' then
      table.insert(wrong, KEYS[4 + part])
      table.insert(wrong, kind)
    end
  end
end
if #wrong > 1 then return wrong end
redis.call('SET', KEYS[2], ARGV[3], 'NX')
local written = {'written'}
for i = 7, #ARGV, 3 do
  local part = tonumber(ARGV[i])
  local hash = KEYS[4 + part]
  -- Only a residency rule's and an override's old value tell what changed (a rule of the same regions in another order changed nothing).
  local keepBefore = part == 2 or part == 4
  if ARGV[2] == 'overwrite' then
    local before = redis.call('HGET', hash, ARGV[i + 1])
    if before ~= ARGV[i + 2] then
      redis.call('HSET', hash, ARGV[i + 1], ARGV[i + 2])
      table.insert(written, i)
      table.insert(written, keepBefore and before)
    end
  elseif redis.call('HSETNX', hash, ARGV[i + 1], ARGV[i + 2]) == 1 then
    table.insert(written, i)
    table.insert(written, false)
  end
end
-- An import that changed nothing in a stamped registry leaves its generation and revisions: a new
-- one would send every router to read the whole directory again, for nothing. A re-seed stamps
-- always (its restore: name ends the loss for every other router), as does a restore into a
-- registry with no generation (unstamped, routers would take it for lost and re-seed over it).
if #written == 1 and current and ARGV[2] ~= 'missing-only' then return {'unchanged', current} end
for _, part in ipairs({'functions', 'residency', 'domains'}) do nextRevision(KEYS[4], part, ARGV[6]) end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PUBLISH', KEYS[3], ARGV[4])
return written
`;

/**
 * KEYS: the part's hash, the revisions hash, the changes channel, and for a guarded write the hash
 * of its guard. ARGV: part, operation ('set', 'setnx' or 'del'), field, value (JSON; '' for del),
 * the writer's nonce, schema version, the field as a JSON string, and for a guarded write the
 * guard's field and the stamp it must still read as (residencyStamp). Writes the entry; if that
 * changed anything, takes the part to its next revision (directory-patch.ts nextRevision) and
 * publishes the entry with the revisions before and after, all in one step, so the messages of one
 * part chain in the order of its writes. Returns what the hash command returned (0: nothing
 * changed, nothing published), or -1 when the guard reads otherwise (nothing written or published).
 */
const DIRECTORY_WRITE_SCRIPT = `${NEXT_REVISION_LUA}
if #KEYS > 3 then
  local guard = redis.call('HGET', KEYS[4], ARGV[8])
  local stamp = '-'
  if guard then stamp = '=' .. guard end
  if stamp ~= ARGV[9] then return -1 end
end
local changed
if ARGV[2] == 'set' then
  redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
  changed = 1
elseif ARGV[2] == 'setnx' then changed = redis.call('HSETNX', KEYS[1], ARGV[3], ARGV[4])
else changed = redis.call('HDEL', KEYS[1], ARGV[3]) end
if changed == 0 then return 0 end
local prev, rev = nextRevision(KEYS[2], ARGV[1], ARGV[5])
local value = 'null'
if ARGV[2] ~= 'del' then value = ARGV[4] end
redis.call('PUBLISH', KEYS[3], '{"v":' .. ARGV[6] .. ',"kind":"' .. ARGV[1] .. '","prev":' .. cjson.encode(prev) .. ',"rev":"' .. rev .. '","field":' .. ARGV[7] .. ',"value":' .. value .. '}')
return changed
`;

/**
 * KEYS: the revisions hash, the generation, then the functions, residency and domains hashes.
 * ARGV: '1' when the reader holds a directory (else every part is read), the generation it holds,
 * then its revision of each part ('' for none), then the most entries a part is returned with
 * ('' for no limit). Returns each part's revision ('' for none), then per part its HGETALL, 0
 * where the reader holds it unchanged, its entry count where it has more than the limit (the reader
 * pages through it), or the key's type where it is not a hash (bad data: the part reads as
 * unreadable, RegistryState.unreadable, and its readers keep what they last read of it).
 */
const READ_DIRECTORY_SCRIPT = `
local revs = {false, false, false}
if redis.call('TYPE', KEYS[1]).ok == 'hash' then revs = redis.call('HMGET', KEYS[1], 'functions', 'residency', 'domains') end
local generation = redis.pcall('GET', KEYS[2])
if type(generation) ~= 'string' then generation = '' end
local held = ARGV[1] == '1' and ARGV[2] == generation
local limit = tonumber(ARGV[6])
local out = {}
for i = 1, 3 do out[i] = revs[i] or '' end
for i = 1, 3 do
  local kind = redis.call('TYPE', KEYS[2 + i]).ok
  local entries = kind == 'hash' and redis.call('HLEN', KEYS[2 + i]) or 0
  if held and revs[i] and revs[i] == ARGV[2 + i] then out[3 + i] = 0
  elseif limit and entries > limit then out[3 + i] = entries
  elseif kind == 'hash' or kind == 'none' then out[3 + i] = redis.call('HGETALL', KEYS[2 + i])
  else out[3 + i] = kind end
end
return out
`;

/**
 * KEYS: the probe heartbeat's key, the region's report key, the changes channel. ARGV: the heartbeat
 * (JSON), its expiry (ms), the change message, the heartbeat without its TTL (JSON). Stored under
 * its own key; copied (without its TTL) to the report key only where that holds no report (none,
 * or another probe heartbeat), for routers of the version before, which read that key alone: a
 * report there is never replaced by a probe heartbeat.
 */
const PROBE_HEARTBEAT_SCRIPT = `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local standing = redis.call('GET', KEYS[2])
local isProbe = false
if standing then
  local ok, hb = pcall(cjson.decode, standing)
  isProbe = ok and type(hb) == 'table' and hb.source == 'probe'
end
if not standing or isProbe then redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[2]) end
redis.call('PUBLISH', KEYS[3], ARGV[3])
return 1
`;

/**
 * KEYS: the overrides hash, the changes channel. ARGV: region, new `drained` ('true', 'false' or ''
 * to keep), new weight as JSON ('null', a number, or '' to keep), change message. Read, change
 * and write in one script, so concurrent changes of different fields (a drain and a weight) all
 * stand. A stored value the readers would refuse (overridesSchema) counts as absent, as it does
 * for them: the defaults, not drained and the config weight. Redis's cjson reads numbers JSON
 * does not have (010, 0x10, 50.): its weight's text is checked as JSON.parse would read it, or a
 * record every router had refused (so not drained) came back drained with the next weight change.
 */
const UPDATE_OVERRIDES_SCRIPT = `
local function jsonNumber(text)
  if not text then return false end
  for _, int in ipairs({'%-?0', '%-?[1-9]%d*'}) do
    for _, frac in ipairs({'', '%.%d+'}) do
      for _, exp in ipairs({'', '[eE][+-]?%d+'}) do
        if string.match(text, '^' .. int .. frac .. exp .. '$') then return true end
      end
    end
  end
  return false
end
local drained, weight = 'false', 'null'
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if raw then
  local ok, cur = pcall(cjson.decode, raw)
  if ok and type(cur) == 'table' then
    local fields = 0
    for _ in pairs(cur) do fields = fields + 1 end
    local w = cur.weight
    local weightOk = w == cjson.null or (type(w) == 'number' and w >= 0 and w <= 100 and jsonNumber(string.match(raw, '"weight"%s*:%s*([^,}%s]+)')))
    if fields == 2 and type(cur.drained) == 'boolean' and weightOk then
      drained = tostring(cur.drained)
      if w ~= cjson.null then weight = cjson.encode(w) end
    end
  end
end
if ARGV[2] ~= '' then drained = ARGV[2] end
if ARGV[3] ~= '' then weight = ARGV[3] end
redis.call('HSET', KEYS[1], ARGV[1], '{"drained":' .. drained .. ',"weight":' .. weight .. '}')
redis.call('PUBLISH', KEYS[2], ARGV[4])
return 1
`;

/**
 * KEYS: the once key, the event list. ARGV: the event (JSON), the list's bound, the change channel,
 * the message. The event appended and its once key claimed together, or neither: claimed first
 * and appended apart, a failed append (a dropped connection, a replica promoted read-only) left the
 * key claimed, and no router wrote the event for the key's hour. The key is set last: a script
 * whose command fails stops there, with what it wrote before kept.
 */
const APPEND_ONCE_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[1])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[2]) - 1)
redis.call('SET', KEYS[1], '1', 'PX', 3600000)
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
`;

/**
 * KEYS: the ticket-key hash. ARGV: the offered key, the rotation period (ms). nextTicketRing's rule
 * (core/ticket-key-ring.ts) by Redis's clock (one clock for every router): while the current key is
 * younger than the period the ring stands, an empty `next` taking the offer (a clock read earlier
 * than its createdAt rebases that to now); past it the staged key becomes current and the offer is
 * staged (with nothing staged, the offer becomes current).
 * Returns current, previous, createdAt, next ('' for none).
 */
const TICKET_KEYS_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ring = redis.call('HMGET', KEYS[1], 'current', 'previous', 'createdAt', 'next')
local created = tonumber(ring[3])
local staged = ring[4]
if staged == '' then staged = false end
if ring[1] and created and now - created < tonumber(ARGV[2]) then
  if not staged then
    redis.call('HSET', KEYS[1], 'next', ARGV[1])
    staged = ARGV[1]
  end
  local createdAt = ring[3]
  if now < created then
    createdAt = string.format('%d', now)
    redis.call('HSET', KEYS[1], 'createdAt', createdAt)
  end
  return {ring[1], ring[2] or '', createdAt, staged}
end
local current = staged or ARGV[1]
local nextKey = ''
if staged then nextKey = ARGV[1] end
local stamp = string.format('%d', now)
redis.call('HSET', KEYS[1], 'current', current, 'previous', ring[1] or '', 'createdAt', stamp, 'next', nextKey)
return {current, ring[1] or '', stamp, nextKey}
`;

/**
 * A residency rule as stored, as the stamp a guarded write compares (StampedResidency.stamp):
 * `-` for none, else `=` and the stored value. DIRECTORY_WRITE_SCRIPT makes the same of what it reads.
 */
function residencyStamp(raw: string | null): string {
  return raw === null ? '-' : `=${raw}`;
}

/**
 * A Redis that evicts keys under memory pressure can drop any registry key on its own: the
 * function directory, operator settings, an ACME certificate, or only the certificates' change
 * list (the one loss the routers cannot notice).
 */
export const EVICTING_SERVER_ADVICE =
  "the registry's Redis may evict keys (its maxmemory-policy is not noeviction): under memory pressure it can drop functions, operator settings or certificates; set maxmemory-policy noeviction";

export const EVICTION_UNCHECKED_ADVICE = "could not read the registry Redis's maxmemory-policy (INFO memory): make sure it is noeviction";

/** The `maxmemory_policy` line of `INFO memory`, or null when there is none. */
export function evictionPolicyOf(info: string): string | null {
  return /^maxmemory_policy:([\w-]+)\r?$/m.exec(info)?.[1] ?? null;
}

/** How long the key a write check sets (RedisRegistryOptions.readsNeedWrites) lives: it only has to be writable. */
const WRITABLE_KEY_TTL_MS = 60_000;

/**
 * How often the subscriber connection is asked for a PING. A subscriber only listens: a connection
 * that went silent without closing (a lost NAT or conntrack entry) has nothing of its own to time
 * out, and would leave every push missed, unnoticed, for as long as the process runs
 * (pingSubscriber, SILENT_CONNECTION_MS).
 */
const SUBSCRIBER_PING_MS = 1_000;

/** ioredis's rejection of a command that got no answer within `commandTimeout`. */
const COMMAND_TIMED_OUT = 'Command timed out';

/**
 * How long a connection must have heard nothing at all from Redis, a command or PING of its
 * unanswered, before it is taken for silent and dropped. A Redis that is only busy (a long Lua
 * script, a fork or an fsync stall) answers nothing meanwhile either, on any connection, and its
 * connections are fine: dropped at the first timeout (2 s), every router connected again at once
 * (its commands failing meanwhile, its watchers all resyncing against a Redis already struggling),
 * and a command of the old connection timing out dropped the new one too. Past Redis's
 * busy-reply-threshold (5 s by default) a busy server answers BUSY to whatever waits: heard.
 */
const SILENT_CONNECTION_MS = 6_000;

/** When a connection last heard from Redis (any bytes, or its connect), to tell a silent connection from a busy server. */
class Hearing {
  private heardAt = 0;
  /** When the first command still unanswered since then was sent (waiting). */
  private waitingSince: number | undefined;

  constructor(private readonly redis: Redis) {
    redis.on('connect', () => {
      this.heard();
      // Per chunk read from Redis, not per request: one clock read.
      redis.stream.on('data', this.heard);
    });
  }

  private readonly heard = (): void => {
    this.heardAt = Date.now();
    this.waitingSince = undefined;
  };

  /** A command (or PING) sent at `sentAt` waits for its answer, or got none in time. */
  waiting(sentAt: number): void {
    this.waitingSince ??= sentAt;
  }

  /** Whether a command has waited and nothing at all has come from Redis for SILENT_CONNECTION_MS. */
  silent(nowMs: number): boolean {
    return this.waitingSince !== undefined && nowMs - Math.max(this.heardAt, this.waitingSince) >= SILENT_CONNECTION_MS;
  }

  /**
   * Drops a silent connection; ioredis connects again. Destroyed, not ended: a connection that
   * hears nothing hears no FIN either, and ioredis's own disconnect waits 2 s more for one.
   */
  drop(): void {
    this.waitingSince = undefined;
    this.redis.stream.destroy();
  }
}

/** A connection-level failure (refused, closed, offline, timed out) becomes registry_unreachable; Redis's own replies and our errors pass. */
function unreachable(err: unknown): never {
  if (err instanceof EdgeError || isRedisReply(err)) throw err;
  throw new EdgeError('registry_unreachable', `the registry is unreachable: ${thrownText(err)}`);
}

/** Redis answered but refused the login. Its reply names no secret, so the message may carry it. */
export class RedisLoginError extends EdgeError {
  override readonly name = 'RedisLoginError';
  constructor(where: string, reply: string) {
    super('registry_unreachable', `Redis at ${where} refused the login (${reply})`);
  }
}

/** Redis refused the database the URL names (SELECT: `ERR DB index is out of range`); ioredis went on in database 0. */
export class RedisDatabaseError extends EdgeError {
  override readonly name = 'RedisDatabaseError';
  constructor(where: string, db: number, reply: string) {
    super('registry_unreachable', `Redis at ${where} has no database ${db} (${reply})`);
  }
}

/** A key a write would go into that holds another Redis type (RegistryKeyTypeError). */
export interface MistypedKey {
  readonly part: (typeof RESTORE_PARTS)[number] | 'generation';
  /** The Redis key, prefix and all (redis-cli TYPE <key>). */
  readonly key: string;
  /** The type it holds (Redis TYPE: string, list, set, zset, stream). */
  readonly holds: string;
  /** The type the write needs. */
  readonly expected: 'hash' | 'string';
}

/** A restore refused, nothing written: keys it would write into hold another Redis type. */
export class RegistryKeyTypeError extends EdgeError {
  override readonly name = 'RegistryKeyTypeError';
  constructor(readonly keys: readonly MistypedKey[]) {
    super('registry_key_type', `cannot restore into the registry: ${keys.map((k) => `${k.key} holds a ${k.holds}, not a ${k.expected}`).join('; ')} (nothing written)`);
  }
}

export class SchemaVersionError extends EdgeError {
  override readonly name = 'SchemaVersionError';
  constructor(message: string) {
    super('registry_schema', message);
  }
}

export class RedisRegistry implements HealthRegistry {
  readonly kind = 'redis';
  private readonly prefix: string;
  private readonly known: ReadonlySet<RegionId>;
  private readonly decode: RecordDecoder;
  private readonly cmd: Redis;
  private readonly cmdHearing: Hearing;
  private sub: Redis | undefined;
  private subHearing: Hearing | undefined;
  private subPing: NodeJS.Timeout | undefined;
  private subPingInFlight = false;
  /** Subscriptions not yet ended: the channel is unsubscribed when the last one ends. */
  private subscribers = 0;
  private schemaChecked = false;
  /** The last connect's SELECT of the configured database (undefined: database 0, or not connected yet). */
  private databaseChecked: Promise<void> | undefined;
  /**
   * The channel changes are published on. Pub/sub ignores the database selected: two deployments
   * sharing one Redis by database number (redis://h/0 and redis://h/1) with one prefix heard each
   * other's heartbeats (a staging probe's "down" took prod's region down), so a database other than
   * 0 is in the name.
   */
  private readonly channel: string;
  /** Keys found unreadable, each said once until it reads again (one registry serves every reader of a process). */
  private readonly episodes = new UnreadableEpisodes((where, reason) => this.reject(where, reason));

  constructor(private readonly options: RedisRegistryOptions) {
    this.prefix = options.keyPrefix ?? 'edge:';
    this.known = new Set(options.regions);
    this.decode = new RecordDecoder(this.known, (where, reason) => this.reject(where, reason));
    // Every call that reaches Redis fails, when Redis cannot be reached, as the catalogue's
    // registry_unreachable (503 from the admin API, one line from a command), not as a fault.
    // And none runs in a database other than the one configured (databaseChecked).
    const self = this as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    for (const name of STORE_CALLS) {
      const call = self[name]!.bind(this);
      self[name] = (...args) =>
        (this.databaseChecked === undefined ? call(...args) : this.databaseChecked.then(() => call(...args))).catch((err: unknown) => {
          this.dropIfSilent(err);
          return unreachable(err);
        });
    }
    this.cmd = this.connect(this.connectionOptions());
    this.cmdHearing = new Hearing(this.cmd);
    this.cmd.on('error', (err: Error) => options.onConnectionError?.(err));
    const db = this.cmd.options.db ?? 0;
    this.channel = db === 0 ? this.key('changes') : `${this.key('changes')}@db${db}`;
    if (db !== 0) this.cmd.on('ready', () => (this.databaseChecked = this.selectDatabase(db)));
    if (options.onEvictingServer !== undefined) this.cmd.on('ready', () => void this.checkEvictionPolicy());
  }

  /**
   * A command that timed out on a connection ioredis takes for ready: the connection may have gone
   * silent without closing (a lost NAT or conntrack entry, a Sentinel master frozen or cut off),
   * and ioredis never drops a connection for a timeout: every later command would go down it and
   * time out too, for as long as the kernel retransmits (minutes), though a new connection would
   * work. Dropped, ioredis connects again (with Sentinel, to the master the Sentinels name now).
   * Only once nothing has come from Redis for a while (SILENT_CONNECTION_MS): a server that is
   * merely busy times commands out too.
   */
  private dropIfSilent(err: unknown): void {
    if (!(err instanceof Error) || err.message !== COMMAND_TIMED_OUT || this.cmd.status !== 'ready') return;
    const now = Date.now();
    this.cmdHearing.waiting(now - (this.cmd.options.commandTimeout ?? 0));
    if (this.cmdHearing.silent(now)) this.cmdHearing.drop();
  }

  /** Reads the server's eviction policy (on every connect) and reports one that may evict, or that it could not tell. */
  private async checkEvictionPolicy(): Promise<void> {
    const { onEvictingServer, onEvictionUnchecked } = this.options;
    let policy: string | null;
    try {
      policy = evictionPolicyOf(await this.cmd.info('memory'));
    } catch (err) {
      onEvictionUnchecked?.(thrownText(err));
      return;
    }
    if (policy === null) onEvictionUnchecked?.('INFO memory has no maxmemory_policy line');
    else if (policy !== 'noeviction') onEvictingServer?.(policy);
  }

  private connect(options: RedisOptions): Redis {
    const { sentinel } = this.options;
    if (sentinel === undefined) return new Redis(this.options.url, options);
    const url = new URL(this.options.url);
    return new Redis({
      ...options,
      sentinels: sentinel.sentinels.map((s) => ({ host: s.host, port: s.port })),
      name: sentinel.name,
      // Ask again at every failover the Sentinels announce (+switch-master), not only once the old
      // master's connection closes: one cut off from the Sentinels alone still answers, and every
      // write would go on into it, a master nobody reads and whose data its demotion throws away.
      failoverDetector: true,
      ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
      ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
      db: Number(url.pathname.slice(1) || 0),
      // rediss:// asks for TLS to Redis: without these ioredis would reach the master the
      // Sentinels name in the clear, the password with it. (The Sentinels are asked as before.)
      ...(url.protocol === 'rediss:' ? { tls: options.tls ?? {}, enableTLSForSentinelMode: true } : {}),
    });
  }

  /** Where this registry connects, without secrets (for messages). */
  describe(): string {
    const { sentinel } = this.options;
    return sentinel === undefined
      ? redactUrl(this.options.url)
      : `Sentinel master "${sentinel.name}" via ${sentinel.sentinels.map((s) => `${s.host}:${s.port}`).join(',')}`;
  }

  private connectionOptions(): RedisOptions {
    return {
      // Fail fast while disconnected: callers (watcher, reporter) have their own fallbacks and
      // retries; a command queued for minutes would only hide an outage.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: 2_000,
      connectTimeout: 2_000,
      retryStrategy: (attempt: number) => Math.min(50 * 2 ** attempt, 2_000),
      ...this.options.redisOptions,
    };
  }

  private key(name: string): string {
    return `${this.prefix}${name}`;
  }

  /**
   * Waits until the command connection is usable (for CLIs that want a clear error). Redis that
   * answered but refused the login fails as a RedisLoginError: the fix is the password, not the network.
   */
  async ready(timeoutMs = 3_000): Promise<void> {
    await this.connected(timeoutMs);
    // A database the server does not have is refused by SELECT on connect, which ioredis only
    // reports as an 'error' event before carrying on in database 0: every key went there.
    await this.databaseChecked;
  }

  /**
   * SELECTs `db` again on each connect: a server without it refuses, and the refusal fails every
   * call until a connect finds the database (a router must not read and write another database's
   * keys, database 0's, as ioredis would after its own SELECT failed).
   */
  private selectDatabase(db: number): Promise<void> {
    const checked = this.cmd.select(db).then(
      () => undefined,
      (err: unknown) => {
        if (isRedisReply(err)) throw new RedisDatabaseError(this.describe(), db, err.message);
        throw err;
      },
    );
    checked.catch(() => undefined); // read by the calls that wait for it; not unhandled meanwhile
    return checked;
  }

  private async connected(timeoutMs: number): Promise<void> {
    if (this.cmd.status === 'ready') return;
    let refusal: string | undefined;
    const failure = (suffix: string) =>
      refusal === undefined ? new Error(`cannot reach Redis at ${this.describe()}${suffix}`) : new RedisLoginError(this.describe(), refusal);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(failure(` within ${timeoutMs} ms`));
      }, timeoutMs);
      const onReady = () => {
        cleanup();
        resolve();
      };
      // 'end' means ioredis gave up reconnecting (retryStrategy returned null): no point waiting.
      const onEnd = () => {
        cleanup();
        reject(failure(''));
      };
      const onError = (err: Error) => {
        if (LOGIN_REFUSED.test(err.message)) refusal = err.message;
      };
      const cleanup = () => {
        clearTimeout(timer);
        this.cmd.off('ready', onReady);
        this.cmd.off('end', onEnd);
        this.cmd.off('error', onError);
      };
      this.cmd.on('ready', onReady);
      this.cmd.on('end', onEnd);
      this.cmd.on('error', onError);
    });
  }

  async writeHeartbeat(written: Heartbeat, ttlMs: number): Promise<void> {
    const heartbeat = checkedHeartbeat(withTtl(written, ttlMs));
    await this.ensureSchema();
    const json = JSON.stringify(heartbeat);
    if (heartbeat.source === 'probe') {
      // Routers of earlier versions read the report key and the change message with a strict
      // schema: there the heartbeat goes without its TTL, which the message carries beside it.
      const { ttlMs: stamped, ...plain } = heartbeat;
      const plainJson = JSON.stringify(plain);
      const message = `{"v":${SCHEMA_VERSION},"kind":"heartbeat","heartbeat":${plainJson},"ttlMs":${stamped}}`;
      await this.cmd.eval(PROBE_HEARTBEAT_SCRIPT, 3, this.key(`probe:${heartbeat.region}`), this.key(`hb:${heartbeat.region}`), this.channel, json, String(ttlMs * 5), message, plainJson);
      return;
    }
    // The same for a report's service time: beside the report (its own key, naming the report's
    // time) and beside the message's heartbeat, which those routers read without looking further.
    const { serviceMs, ...plain } = heartbeat;
    const plainJson = JSON.stringify(plain);
    const multi = this.cmd.multi().set(this.key(`hb:${heartbeat.region}`), plainJson, 'PX', ttlMs * 5);
    if (serviceMs !== undefined) multi.set(this.key(`service:${heartbeat.region}`), JSON.stringify({ reportedAt: heartbeat.reportedAt, serviceMs }), 'PX', ttlMs * 5);
    const beside = serviceMs === undefined ? '' : `,"serviceMs":${JSON.stringify(serviceMs)}`;
    await execMulti(multi.publish(this.channel, `{"v":${SCHEMA_VERSION},"kind":"heartbeat","heartbeat":${plainJson}${beside}}`));
  }

  async setOverrides(region: RegionId, overrides: RegionOverrides): Promise<void> {
    await this.hashWrite('overrides', (m) => m.hset(this.key('overrides'), region, JSON.stringify(overrides)));
  }

  async updateOverrides(region: RegionId, change: Partial<RegionOverrides>): Promise<void> {
    await this.ensureSchema();
    const drained = change.drained === undefined ? '' : String(change.drained);
    const weight = change.weight === undefined ? '' : JSON.stringify(change.weight);
    await this.cmd.eval(UPDATE_OVERRIDES_SCRIPT, 2, this.key('overrides'), this.channel, region, drained, weight, `{"v":${SCHEMA_VERSION},"kind":"overrides"}`);
  }

  async setEjection(region: RegionId, ejection: Ejection | null): Promise<void> {
    await this.hashWrite('ejections', (m) =>
      ejection === null ? m.hdel(this.key('ejections'), region) : m.hset(this.key('ejections'), region, JSON.stringify(storedEjection(ejection))),
    );
  }

  async putFunction(record: FunctionRecord): Promise<void> {
    await this.directoryWrite('functions', 'set', functionKey(record.org, record.fn), JSON.stringify(fromFunctionRecord(record)));
  }

  async putFunctionUnderResidency(record: FunctionRecord, stamp: string): Promise<boolean> {
    // The org's rule compared in the same script as the write: a residency set from any process
    // lands before it (the write refused, the caller checks again) or after it (the write stands,
    // and setOrgResidency names it if the new rule strands it).
    const guard = { hash: 'residency' as const, field: record.org, stamp };
    return (await this.directoryWrite('functions', 'set', functionKey(record.org, record.fn), JSON.stringify(fromFunctionRecord(record)), guard)) !== -1;
  }

  async assertFunction(record: FunctionRecord): Promise<boolean> {
    // Only a real write is news (the script publishes nothing otherwise): orchestrators re-assert
    // every few seconds.
    return (await this.directoryWrite('functions', 'setnx', functionKey(record.org, record.fn), JSON.stringify(fromFunctionRecord(record)))) === 1;
  }

  async deleteFunction(org: string, fn: string): Promise<boolean> {
    return (await this.directoryWrite('functions', 'del', functionKey(org, fn))) === 1;
  }

  async setResidency(org: string, regions: readonly RegionId[] | null): Promise<void> {
    if (regions === null) await this.directoryWrite('residency', 'del', org);
    else await this.directoryWrite('residency', 'set', org, JSON.stringify([...regions]));
  }

  async putDomain(host: string, ref: FunctionRef): Promise<void> {
    await this.directoryWrite('domains', 'set', host, JSON.stringify({ fn: ref.fn, org: ref.org }));
  }

  async deleteDomain(host: string): Promise<boolean> {
    return (await this.directoryWrite('domains', 'del', host)) === 1;
  }

  async appendEvent(event: HealthEvent, onceKey?: string): Promise<boolean> {
    await this.ensureSchema();
    const json = JSON.stringify(storedEvent(event));
    const message = `{"v":${SCHEMA_VERSION},"kind":"events"}`;
    if (onceKey !== undefined) {
      return (await this.cmd.eval(APPEND_ONCE_SCRIPT, 2, this.key(`once:${onceKey}`), this.key('events'), json, String(EVENT_LOG_LIMIT), this.channel, message)) === 1;
    }
    await execMulti(this.cmd.multi().lpush(this.key('events'), json).ltrim(this.key('events'), 0, EVENT_LOG_LIMIT - 1).publish(this.channel, message));
    return true;
  }

  async shareTicketKeys(fresh: string, rotateEveryMs: number): Promise<TicketKeyRing> {
    const [current, previous, createdAt, next] = (await this.cmd.eval(TICKET_KEYS_SCRIPT, 1, this.key('tls-ticket-keys'), fresh, String(rotateEveryMs))) as [string, string, string, string];
    return { current, previous: previous === '' ? null : previous, next: next === '' ? null : next, createdAt: Number(createdAt) };
  }

  async stampGeneration(candidate: string): Promise<string> {
    await this.ensureSchema();
    const [, standing] = await execMulti(this.cmd.multi().set(this.key('generation'), candidate, 'NX').get(this.key('generation')));
    return String(standing);
  }

  async restore(state: DurableState, generation: string, mode: RestoreMode): Promise<RestoredChanges | null> {
    // Entries as (part number, field, value) triples, in one list for the script below; what each is, to tell what the script changed.
    const entries: string[] = [];
    const written: RestoredEntry[] = [];
    const add = (entry: RestoredEntry, field: string, value: string) => {
      entries.push(String(RESTORE_PARTS.indexOf(entry.part) + 1), field, value);
      written.push(entry);
    };
    for (const byFn of state.functions.values()) {
      for (const record of byFn.values()) add({ part: 'functions', record }, functionKey(record.org, record.fn), storedFunction(record));
    }
    for (const [org, regions] of state.residency) add({ part: 'residency', org, regions }, org, JSON.stringify([...regions]));
    for (const [host, ref] of state.domains) add({ part: 'domains', host, ref }, host, JSON.stringify({ fn: ref.fn, org: ref.org }));
    for (const [region, overrides] of state.overrides) add({ part: 'overrides', region, overrides }, region, JSON.stringify({ drained: overrides.drained, weight: overrides.weight }));
    // One script, so the checks and the writes are atomic: a re-seed (missing-only) writes only
    // into a registry that still has no generation, or a fresh `seed:` one (another router's
    // stamp of the empty registry); an import or a re-seed that got there first stands. And every
    // key it writes is of the type it writes, or none of it is written.
    const [status, ...reply] = (await this.cmd.eval(
      RESTORE_SCRIPT,
      4 + RESTORE_PARTS.length,
      this.key('generation'),
      this.key('schema'),
      this.channel,
      this.key('revisions'),
      ...RESTORE_PARTS.map((part) => this.key(part)),
      generation,
      mode,
      String(SCHEMA_VERSION),
      `{"v":${SCHEMA_VERSION},"kind":"resync"}`,
      SEED_PREFIX,
      freshNonce(),
      ...entries,
    )) as [string, ...Array<number | string | null>];
    this.schemaChecked = false;
    if (status === 'newer') {
      this.checkSchema(String(reply[0]));
      throw new SchemaVersionError(`registry data has schema version ${JSON.stringify(reply[0])}: upgrade the router`);
    }
    if (status === 'stamped') return null;
    if (status === 'unchanged') return { functions: [], residency: new Map(), domains: new Map(), overrides: new Map(), generation: String(reply[0]) };
    if (status === 'wrongtype') {
      const keys: MistypedKey[] = [];
      for (let i = 0; i < reply.length; i += 2) {
        const key = String(reply[i]);
        const part = key === this.key('generation') ? 'generation' : RESTORE_PARTS.find((name) => this.key(name) === key)!;
        keys.push({ part, key, holds: String(reply[i + 1]), expected: part === 'generation' ? 'string' : 'hash' });
      }
      throw new RegistryKeyTypeError(keys);
    }
    const changes = { functions: [] as FunctionRecord[], residency: new Map<string, ReadonlySet<RegionId>>(), domains: new Map<string, FunctionRef>(), overrides: new Map<RegionId, { before: RegionOverrides | null; after: RegionOverrides }>(), generation };
    for (let i = 0; i < reply.length; i += 2) {
      // ARGV index of the entry's triple (Lua counts from 1, the entries start at the 7th).
      const entry = written[(Number(reply[i]) - 7) / 3];
      const replaced = reply[i + 1] ?? null;
      if (entry === undefined) continue;
      // A value replaced by one routers read the same changed nothing (a rule's regions in another order, an override written otherwise).
      if (entry.part === 'functions') changes.functions.push(entry.record);
      else if (entry.part === 'domains') changes.domains.set(entry.host, entry.ref);
      else if (entry.part === 'residency') {
        const before = decodeRecord(residencySchema, replaced === null ? null : String(replaced));
        if (!(before.ok && sameRegions(entry.regions, new Set(before.value)))) changes.residency.set(entry.org, entry.regions);
      } else {
        const decoded = decodeRecord(overridesSchema, replaced === null ? null : String(replaced));
        const before = decoded.ok ? decoded.value : null;
        const was = before ?? DEFAULT_OVERRIDES;
        if (was.drained !== entry.overrides.drained || was.weight !== entry.overrides.weight) changes.overrides.set(entry.region, { before, after: { drained: entry.overrides.drained, weight: entry.overrides.weight } });
      }
    }
    return changes;
  }

  async readState(held?: HeldDirectory, mode: ReadMode = 'atomic'): Promise<RegistryState> {
    const regionIds = [...this.known];
    const pageEntries = this.options.directoryPageEntries ?? DIRECTORY_PAGE_ENTRIES;
    const multi = this.cmd.multi();
    if (this.options.readsNeedWrites) multi.set(this.key('writable'), '1', 'PX', WRITABLE_KEY_TTL_MS);
    const heldArgs = held === undefined ? ['0', ''] : ['1', held.generation ?? ''];
    const heldRevisions = DIRECTORY_PARTS.map((part) => held?.revisions[part] ?? '');
    const directoryKeys = ['revisions', 'generation', ...DIRECTORY_PARTS].map((name) => this.key(name));
    const replies = await multi
      .get(this.key('generation'))
      .get(this.key('schema'))
      .mget(...this.heartbeatKeys(regionIds))
      .hgetall(this.key('overrides'))
      .hgetall(this.key('ejections'))
      .eval(READ_DIRECTORY_SCRIPT, directoryKeys.length, ...directoryKeys, ...heldArgs, ...heldRevisions, mode === 'paged' ? String(pageEntries) : '')
      .exec()
      .catch(rethrowCause);
    if (replies === null) throw new Error('Redis transaction aborted');
    if (this.options.readsNeedWrites) {
      const [err] = replies.shift()!;
      if (err) throw err;
    }
    // In the order of the commands above: each key's name, and what it reads as when it cannot be read.
    const keys = ['generation', 'schema', 'hb:*', 'overrides', 'ejections'];
    const empty = [null, null, [], {}, {}];
    const unreadable = new Map<UnreadablePart, string>();
    const results = replies.map(([err, value], i) => {
      const key = keys[i];
      if (err === null) {
        if (key !== undefined) this.episodes.read(key);
        return value;
      }
      // A key of the wrong Redis type is bad data: read as empty, said once. Thrown, it would fail
      // every full read, freezing the router's directory and settings until someone deleted the key
      // by hand. The overrides are named unreadable: a reader keeps the drains it last read. So is
      // the generation: read as none, it was taken for lost data, written back at every read (and
      // refused, the key being of the wrong type).
      if (isWrongType(err) && key !== undefined) {
        if (key === 'overrides' || key === 'generation') {
          unreadable.set(key, err.message);
          this.episodes.failed(key, `${err.message}; ${key === 'overrides' ? KEPT_OVERRIDES : KEPT_GENERATION}`);
        } else this.episodes.failed(key, err.message);
        return empty[i];
      }
      throw err;
    });
    const [generation, schema, hbs, overrides, ejections, directory] = results as [
      string | null,
      string | null,
      (string | null)[],
      Record<string, string>,
      Record<string, string>,
      unknown[],
    ];
    this.checkSchema(schema);
    const { revisions, unchanged, parts, paged } = this.directoryRead(directory, unreadable);
    for (const part of paged) {
      const scanned = await this.scanPart(part, pageEntries, unreadable);
      if (scanned !== undefined) parts[part] = scanned;
    }
    return {
      generation,
      ...this.decodeHeartbeats(regionIds, hbs),
      overrides: this.decode.regionHash('overrides', overrides, overridesSchema),
      ejections: this.decode.regionHash('ejections', ejections, ejectionSchema),
      functions: await this.decode.functions(parts.functions),
      residency: await this.decode.residency(parts.residency),
      domains: await this.decode.domains(parts.domains),
      revisions,
      unchanged,
      unreadable,
    };
  }

  /**
   * READ_DIRECTORY_SCRIPT's reply: each part's revision, and its entries (none for a part left out,
   * or of the wrong type: added to `unreadable`).
   */
  private directoryRead(reply: unknown[], unreadable: Map<UnreadablePart, string>): {
    revisions: DirectoryRevisions;
    unchanged: Set<DirectoryPart>;
    parts: Record<DirectoryPart, Record<string, string>>;
    paged: DirectoryPart[];
  } {
    const revisions: Record<DirectoryPart, string | null> = { ...NO_REVISIONS };
    const parts = { functions: {}, residency: {}, domains: {} } as Record<DirectoryPart, Record<string, string>>;
    const unchanged = new Set<DirectoryPart>();
    const paged: DirectoryPart[] = [];
    DIRECTORY_PARTS.forEach((part, i) => {
      const revision = reply[i];
      revisions[part] = typeof revision === 'string' && revision !== '' ? revision : null;
      const entries = reply[DIRECTORY_PARTS.length + i];
      if (entries === 0) unchanged.add(part);
      else if (typeof entries === 'number') paged.push(part);
      else if (typeof entries === 'string') {
        const why = `WRONGTYPE the key holds a ${entries}, not a hash`;
        unreadable.set(part, why);
        this.episodes.failed(part, `${why}; ${KEPT_ENTRIES}`);
      } else if (Array.isArray(entries)) {
        parts[part] = hashOf(entries as string[]);
        this.episodes.read(part);
      }
    });
    return { revisions, unchanged, parts, paged };
  }

  /**
   * A directory part a page at a time (scanHash); undefined, and added to `unreadable`, when Redis
   * refuses a page WRONGTYPE (the key replaced by one of another type since the read began): the
   * pages before it are not the part, and a reader takes none of it. Any other refusal (LOADING
   * while Redis restarts, BUSY, MASTERDOWN, READONLY, TRYAGAIN, an ACL's NOPERM) says nothing of
   * the key: it fails the whole read, as the read's own transaction refused so would, and as a
   * connection lost midway does; named unreadable, the key was logged and reported (/readyz) as bad
   * data, and a router at start held its directory back until the next reconcile.
   */
  private async scanPart(part: DirectoryPart, pageEntries: number, unreadable: Map<UnreadablePart, string>): Promise<Record<string, string> | undefined> {
    try {
      const entries = await this.scanHash(this.key(part), pageEntries);
      this.episodes.read(part);
      return entries;
    } catch (err) {
      if (!isWrongType(err)) throw err;
      const why = `${err.message} (a paged read, refused midway)`;
      unreadable.set(part, why);
      this.episodes.failed(part, `${why}; ${KEPT_ENTRIES}`);
      return undefined;
    }
  }

  /**
   * A hash a page at a time (HSCAN): each reply small, so parsing it is a short pause of the
   * requests, not one of tens of ms. Not one consistent read: an entry written or deleted meanwhile
   * may or may not be in it (every entry there throughout is) — a paged read is for a watcher,
   * which applies the change messages of every write since the revision the read returned.
   */
  private async scanHash(key: string, pageEntries: number): Promise<Record<string, string>> {
    const hash = hashOf([]);
    let cursor = '0';
    do {
      const [next, flat] = await this.cmd.hscan(key, cursor, 'COUNT', pageEntries);
      hashOf(flat, hash);
      cursor = next;
    } while (cursor !== '0');
    return hash;
  }

  async readAllHeartbeats(): Promise<AllHeartbeats> {
    const regionIds = [...this.known];
    if (!this.options.readsNeedWrites) return this.decodeHeartbeats(regionIds, await this.cmd.mget(...this.heartbeatKeys(regionIds)));
    const [, raws] = await execMulti(this.cmd.multi().set(this.key('writable'), '1', 'PX', WRITABLE_KEY_TTL_MS).mget(...this.heartbeatKeys(regionIds)));
    return this.decodeHeartbeats(regionIds, raws as (string | null)[]);
  }

  /** Every region's report key, then every region's probe key, then its service-time key: one MGET. */
  private heartbeatKeys(regionIds: readonly RegionId[]): string[] {
    return [...regionIds.map((id) => this.key(`hb:${id}`)), ...regionIds.map((id) => this.key(`probe:${id}`)), ...regionIds.map((id) => this.key(`service:${id}`))];
  }

  /**
   * Sorts what heartbeatKeys read by each heartbeat's source, not by its key (a report key may hold
   * a probe heartbeat: a copy, or one written by a prober of the version before), newest per region.
   */
  private decodeHeartbeats(regionIds: readonly RegionId[], raws: readonly (string | null)[]): AllHeartbeats {
    const heartbeats = new Map<RegionId, Heartbeat>();
    const probeHeartbeats = new Map<RegionId, Heartbeat>();
    // Probe keys first: of equal times, the first found stands, and a report key's copy of a probe
    // heartbeat lacks its TTL.
    const n = regionIds.length;
    const found = [
      ...this.decode.heartbeats(regionIds, raws.slice(n, 2 * n), 'probe').values(),
      ...this.decode.heartbeats(regionIds, raws.slice(0, n)).values(),
    ];
    for (const hb of found) {
      const into = hb.source === 'probe' ? probeHeartbeats : heartbeats;
      const known = into.get(hb.region);
      if (known === undefined || known.reportedAt < hb.reportedAt) into.set(hb.region, hb);
    }
    return { heartbeats: this.decode.serviceTimes(heartbeats, regionIds, raws.slice(2 * n, 3 * n)), probeHeartbeats };
  }

  async readOverrides(): Promise<ReadonlyMap<RegionId, RegionOverrides>> {
    return this.decode.regionHash('overrides', await this.cmd.hgetall(this.key('overrides')), overridesSchema);
  }

  async readResidency(org: string): Promise<StampedResidency> {
    const raw = await this.cmd.hget(this.key('residency'), org);
    if (raw === null) return { allowed: null, stamp: residencyStamp(raw) };
    // Decoded as a whole read decodes it: a deploy is checked against the rule routers route by (one
    // they cannot read allows no region, so nothing is deployed past it).
    return { allowed: (await this.decode.residency({ [org]: raw })).get(org) ?? null, stamp: residencyStamp(raw) };
  }

  async readEvents(limit: number): Promise<HealthEvent[]> {
    // LRANGE wants whole numbers, and 0 would still return one event: a fractional or zero limit reads as the memory registry's does.
    const count = Math.max(0, Math.min(Math.floor(limit), EVENT_LOG_LIMIT));
    if (count === 0) return [];
    // The newest `window` entries, each time in one command (one view: events pushed in between
    // shift nothing already read). Entries skipped (a later version's kinds, malformed ones) do
    // not count against the limit: while they leave the read short and the log has more, the
    // window widens, up to the newest EVENT_LOG_LIMIT entries, all a log kept to its cap holds. So
    // a log of nothing else costs one read at most 6 commands (EVENTS_WINDOW_GROWTH) and EVENT_LOG_LIMIT
    // entries past the ones asked for; the common read, one command.
    for (let window = count; ; window = Math.min(window * EVENTS_WINDOW_GROWTH, EVENT_LOG_LIMIT)) {
      const raw = await this.cmd.lrange(this.key('events'), 0, window - 1);
      const decoded = this.decode.eventsUnsaid(raw);
      if (decoded.events.length >= count || raw.length < window || window >= EVENT_LOG_LIMIT) {
        decoded.say();
        return decoded.events.slice(0, count);
      }
    }
  }

  async subscribe(onChange: (change: RegistryChange) => void): Promise<() => Promise<void>> {
    if (this.sub === undefined) {
      // Subscriber mode needs its own connection; it queues SUBSCRIBE until connected and
      // re-subscribes by itself after a reconnect, after which we ask for a full resync.
      this.sub = this.connect({ ...this.connectionOptions(), enableOfflineQueue: true, maxRetriesPerRequest: null });
      this.subHearing = new Hearing(this.sub);
      this.sub.on('error', (err: Error) => this.options.onConnectionError?.(err));
      this.subPing = setInterval(() => void this.pingSubscriber(), SUBSCRIBER_PING_MS).unref();
    }
    const sub = this.sub;
    const channel = this.channel;
    this.subscribers++;
    let connectedBefore = false;
    const onReady = () => {
      if (connectedBefore) {
        // ioredis re-subscribes by itself, but 'ready' comes before that SUBSCRIBE is answered: a
        // resync read now could finish first, and a write between the two would be neither read nor
        // pushed. Our own SUBSCRIBE is answered after ioredis's, in order, with the channel live.
        const resync = () => onChange({ kind: 'resync' });
        sub.subscribe(channel).then(resync, resync);
      }
      connectedBefore = true;
    };
    const onMessage = (ch: string, message: string) => {
      if (ch !== channel) return;
      // Anyone who can PUBLISH reaches every subscriber at once: a message the decoder fails on
      // (it should refuse, never throw) is refused here rather than thrown inside ioredis's event,
      // where it would be an uncaught exception in every router and orchestrator together.
      let change: RegistryChange | undefined;
      try {
        change = this.decode.change(message);
      } catch (err) {
        this.reject('changes', `message could not be read: ${err instanceof Error ? err.message : 'unknown error'}`);
        return;
      }
      if (change !== undefined) onChange(change);
    };
    sub.on('ready', onReady);
    sub.on('message', onMessage);
    /** Takes this subscription's listeners off; true when it was the channel's last subscriber. */
    const detach = (): boolean => {
      sub.off('ready', onReady);
      sub.off('message', onMessage);
      return --this.subscribers === 0;
    };
    try {
      await sub.subscribe(channel);
    } catch (err) {
      // Refused by Redis itself (an ACL without the channel: NOPERM): no retry will mend it, and the
      // caller is told, with nothing left attached.
      if (isRedisReply(err)) {
        detach();
        throw err;
      }
      // Not answered in time (Redis unreachable at start). Refused here, the listeners stayed
      // attached with no way to detach them (the caller had no unsubscribe), and the count of
      // subscribers never came back to 0. Kept instead: the SUBSCRIBE stays queued, and the
      // connection's next 'ready' subscribes again and asks for a resync (the pushes missed since).
    }
    connectedBefore = true;
    let unsubscribed = false;
    return async () => {
      if (unsubscribed) return;
      unsubscribed = true;
      // Every subscriber shares the one channel subscription: leave it only with the last of them,
      // or one watcher's stop would silence every other subscriber of this registry.
      if (detach()) await sub.unsubscribe(channel).catch(() => undefined);
    };
  }

  /**
   * A subscriber connection that does not answer a PING in time, and has heard nothing from Redis
   * for SILENT_CONNECTION_MS (a busy server answers none either), is dropped: ioredis connects again
   * and re-subscribes, and its 'ready' asks every watcher for a resync (the pushes missed meanwhile).
   */
  private async pingSubscriber(): Promise<void> {
    const sub = this.sub;
    const hearing = this.subHearing;
    if (sub === undefined || hearing === undefined || sub.status !== 'ready' || this.subscribers === 0) return;
    const now = Date.now();
    // Looked at every tick, not only when a PING times out: dropped once silent, not up to a PING later.
    if (hearing.silent(now)) {
      this.options.onConnectionError?.(new Error(`the subscriber connection heard nothing from Redis for ${SILENT_CONNECTION_MS} ms, a PING unanswered: connecting again`));
      hearing.drop();
      return;
    }
    if (this.subPingInFlight) return;
    this.subPingInFlight = true;
    hearing.waiting(now);
    // Answered (heard), or timed out (commandTimeout): either way the next tick may send another.
    await sub.ping().catch(() => undefined);
    this.subPingInFlight = false;
  }

  async close(): Promise<void> {
    clearInterval(this.subPing);
    this.sub?.disconnect();
    this.cmd.disconnect();
  }

  /** The ACME certificate vault in this Redis, on this registry's connection (closed with it). */
  certificateVault(onRejected?: (where: string, reason: string) => void): RedisCertificateVault {
    return new RedisCertificateVault(this.cmd, this.prefix, onRejected);
  }

  // --- helpers -------------------------------------------------------------------------------

  /**
   * One directory entry written or deleted, with its part's next revision and change message
   * (DIRECTORY_WRITE_SCRIPT); with `guard`, only while that hash's field still reads as its stamp
   * (-1 otherwise).
   */
  private async directoryWrite(
    part: DirectoryPart,
    operation: 'set' | 'setnx' | 'del',
    field: string,
    value = '',
    guard?: { readonly hash: DirectoryPart; readonly field: string; readonly stamp: string },
  ): Promise<number> {
    await this.ensureSchema();
    const keys = [this.key(part), this.key('revisions'), this.channel, ...(guard === undefined ? [] : [this.key(guard.hash)])];
    const args = [part, operation, field, value, freshNonce(), String(SCHEMA_VERSION), JSON.stringify(field), ...(guard === undefined ? [] : [guard.field, guard.stamp])];
    const written = await this.cmd.eval(DIRECTORY_WRITE_SCRIPT, keys.length, ...keys, ...args);
    return Number(written);
  }

  private async hashWrite(kind: RegistryChange['kind'], write: (m: ReturnType<Redis['multi']>) => unknown): Promise<number> {
    await this.ensureSchema();
    const multi = this.cmd.multi();
    write(multi);
    multi.publish(this.channel, `{"v":${SCHEMA_VERSION},"kind":"${kind}"}`);
    const [first] = await execMulti(multi);
    return typeof first === 'number' ? first : 0;
  }

  /** Stamps the schema version once, and refuses to write into data from a newer version. */
  private async ensureSchema(): Promise<void> {
    if (this.schemaChecked) return;
    await this.cmd.set(this.key('schema'), String(SCHEMA_VERSION), 'NX');
    // A schema key of the wrong Redis type is bad data, as readState takes it (none stamped):
    // thrown, it would stop every write, heartbeats included, of every process started after it.
    const stamped = await this.cmd.get(this.key('schema')).catch((err: unknown) => {
      if (!isWrongType(err)) throw err;
      this.episodes.failed('schema', err.message);
      return null;
    });
    this.checkSchema(stamped);
    this.schemaChecked = true;
  }

  private checkSchema(raw: string | null): void {
    if (raw === null) return;
    const version = Number(raw);
    if (!Number.isInteger(version) || version > SCHEMA_VERSION) {
      throw new SchemaVersionError(
        `registry data has schema version ${JSON.stringify(raw)} but this router understands ${SCHEMA_VERSION}: upgrade the router`,
      );
    }
  }

  private reject(where: string, reason: string): void {
    this.options.onRejected?.(`${this.prefix}${where}`, reason);
  }
}
