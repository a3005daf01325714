/**
 * GeoLocator backed by a MaxMind-format database (the `maxmind` package's Reader), with a
 * bounded LRU of finished locations and hot reload: the file is watched, a replacement is
 * validated off to the side and swapped in whole; a bad replacement keeps the previous one.
 * Lookups are synchronous and never throw. Events go to `onEvent` (observability subscribes).
 */
import { isIP } from 'node:net';
import { basename, dirname } from 'node:path';
import { LRUCache } from 'lru-cache';
import type { Reader, Response } from 'maxmind';
import type { GeoLocator } from '../core/geo-locator.js';
import type { ClientLocation } from '../core/types.js';
import { unmapAddress } from '../core/ip.js';
import { readIdentities, ReplacementWatch } from '../core/replacement-watch.js';
import { classifyAddress } from './address-class.js';
import { loadGeoDatabase, type LoadedDatabase } from './load-database.js';
import { normalizeGeoRecord, type NormalizedRecord } from './normalize-record.js';

export type GeoEvent =
  | { readonly type: 'loaded'; readonly file: string; readonly databaseType: string; readonly buildEpoch: Date | null; readonly ipVersion: number }
  | { readonly type: 'reload-failed'; readonly file: string; readonly reason: string }
  /** The watch on the database's directory failed after it opened: replacements are seen by the poll alone. */
  | { readonly type: 'watch-failed'; readonly dir: string; readonly reason: string }
  | { readonly type: 'bad-record'; readonly ip: string; readonly reason: string };

export interface MaxmindLocatorOptions {
  /** Finished locations kept (default 100,000). */
  readonly cacheSize?: number;
  /** Reload when the file changes (default true). */
  readonly watch?: boolean;
  /** Quiet period after the last change before reloading, so a file being copied is read once, whole. */
  readonly reloadDebounceMs?: number;
  /** How often the file is compared through its symlinks, for replacements no watch sees (replacement-watch.ts; default 10 s). */
  readonly pollMs?: number;
  readonly onEvent?: (event: GeoEvent) => void;
}

export interface LocatorStats {
  lookups: number;
  cacheHits: number;
}

export class MaxmindLocator implements GeoLocator {
  readonly stats: LocatorStats = { lookups: 0, cacheHits: 0 };
  private reader: Reader<Response>;
  private readonly cache: LRUCache<string, ClientLocation>;
  private watch: ReplacementWatch | undefined;
  private reloading: Promise<void> = Promise.resolve();

  private constructor(
    readonly file: string,
    db: LoadedDatabase,
    private readonly options: MaxmindLocatorOptions,
  ) {
    this.reader = db.reader;
    this.cache = new LRUCache({ max: options.cacheSize ?? 100_000 });
  }

  /** Opens and validates `file`; throws GeoDatabaseError naming the file when it is unusable. */
  static async open(file: string, options: MaxmindLocatorOptions = {}): Promise<MaxmindLocator> {
    const watch = options.watch ?? true;
    // Taken before the read: a database replaced while it loads is read again.
    const before = watch ? await readIdentities([file]) : undefined;
    const db = await loadGeoDatabase(file);
    const locator = new MaxmindLocator(file, db, options);
    options.onEvent?.({ type: 'loaded', file, databaseType: db.databaseType, buildEpoch: db.buildEpoch, ipVersion: db.reader.metadata.ipVersion });
    if (before !== undefined) locator.startWatching(before);
    return locator;
  }

  locate(rawIp: string): ClientLocation {
    this.stats.lookups++;
    const hit = this.cache.get(rawIp);
    if (hit !== undefined) {
      this.stats.cacheHits++;
      return hit;
    }
    const location = this.lookup(rawIp);
    // Only addresses are remembered. The key is the caller's text (the simulated orchestrator's
    // X-Forwarded-For as a client wrote it, explain's stdin), and the cache counts entries, not
    // bytes: 100,000 remembered 16 KiB strings held 1.6 GB. Checked on a miss only.
    if (rawIp.length <= MAX_ADDRESS_CHARS && isIP(rawIp) !== 0) this.cache.set(rawIp, location);
    return location;
  }

  /** Re-reads the file now; resolves once the new database is in use or refused. */
  reload(): Promise<void> {
    this.reloading = this.reloading.then(async () => {
      try {
        const db = await loadGeoDatabase(this.file);
        this.reader = db.reader;
        this.cache.clear();
        this.options.onEvent?.({ type: 'loaded', file: this.file, databaseType: db.databaseType, buildEpoch: db.buildEpoch, ipVersion: db.reader.metadata.ipVersion });
      } catch (err) {
        this.options.onEvent?.({ type: 'reload-failed', file: this.file, reason: (err as Error).message });
      }
    });
    return this.reloading;
  }

  close(): void {
    this.watch?.close();
    this.watch = undefined;
  }

  private lookup(rawIp: string): ClientLocation {
    const ip = unmapAddress(rawIp);
    const kind = classifyAddress(ip);
    if (kind === 'invalid') return unlocated(rawIp, 'unknown');
    // An IPv4-only database (DB-IP and ip-location-db ship one per family) answers an IPv6 address
    // from the IPv4 network its first 32 bits fall in, without a word: all of 2a00::/12 (Europe)
    // landed in 42.0.0.0/12 (East Asia). Such a client is not located instead.
    if (this.reader.metadata.ipVersion === 4 && ip.includes(':')) return unlocated(rawIp, kind === 'public' ? 'unknown' : kind);
    let normalized: NormalizedRecord | null = null;
    // Reading and reading out are both on a record the database gives: whatever it holds, the
    // client is unlocated and the record reported, never a 500 for every client of its network.
    try {
      const record: unknown = this.reader.get(ip);
      if (record !== null) normalized = normalizeGeoRecord(record);
    } catch (err) {
      normalized = { ok: false, reason: String((err as Error)?.message ?? err) };
    }
    if (normalized?.ok === true) {
      const { country, city, lat, lon } = normalized.facts;
      if (lat !== null) return { ip: rawIp, country, city, lat, lon, source: 'geoip' };
      if (country !== null) return { ip: rawIp, country, city, lat: null, lon: null, source: 'geoip-country' };
    } else if (normalized !== null) {
      this.options.onEvent?.({ type: 'bad-record', ip, reason: normalized.reason });
    }
    return unlocated(rawIp, kind === 'public' ? 'unknown' : kind);
  }

  private startWatching(polledBefore: readonly string[]): void {
    // The directory, not the file: tools replace databases by rename, which a file watch loses.
    const name = basename(this.file);
    this.watch = new ReplacementWatch({
      directories: new Map([[dirname(this.file), (changed: string) => changed === name]]),
      polled: [this.file],
      polledBefore,
      ...(this.options.pollMs === undefined ? {} : { pollMs: this.options.pollMs }),
      ...(this.options.reloadDebounceMs === undefined ? {} : { debounceMs: this.options.reloadDebounceMs }),
      onChange: () => void this.reload(),
      onError: (dir, err) => this.options.onEvent?.({ type: 'watch-failed', dir, reason: err.message }),
    });
  }
}

/** A locator for running without a database: every client falls back. */
export class NoDatabaseLocator implements GeoLocator {
  locate(rawIp: string): ClientLocation {
    const kind = classifyAddress(unmapAddress(rawIp));
    return unlocated(rawIp, kind === 'loopback' || kind === 'private' ? kind : 'no-database');
  }
}

/** The longest IPv6 text (45 characters) with a zone id of up to 15 (Linux IFNAMSIZ − 1), and room to spare. */
const MAX_ADDRESS_CHARS = 64;

function unlocated(ip: string, source: ClientLocation['source']): ClientLocation {
  return { ip, country: null, city: null, lat: null, lon: null, source };
}
