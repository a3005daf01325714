/**
 * The router's TLS material, served by SNI: a default certificate (`--tls-cert`/`--tls-key`, or
 * a development certificate) plus a directory of per-name pairs (`--tls-dir`), indexed by the
 * names inside the certificates. Files are watched; a replacement is validated off to the side
 * and swapped in whole, as the material is when the clock alone changes it (a served certificate
 * expires, a refused one becomes valid). Each `--tls-dir` pair is judged on its own, at startup
 * and on reload: a bad one is reported and left out, or on a reload keeps the certificate it
 * served before while that is still valid (one customer's broken upload must not keep the router down, nor hold back
 * everyone else's renewals). The default pair (`--tls-cert`) must be good at startup; on a reload
 * it too keeps its previous version. Only an unreadable directory or nothing servable at all
 * refuses a start or a whole reload. Lookups never touch the disk.
 */
import { readdir, realpath } from 'node:fs/promises';
import { basename, dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { ConfigError } from '../../core/errors.js';
import { linkHops } from '../../core/link-hops.js';
import { readIdentities, ReplacementWatch } from '../../core/replacement-watch.js';
import { normalizeServername, wildcardParentOf } from './certificate-names.js';
import {
  CERT_EXTENSION,
  CertificateError,
  KEY_EXTENSION,
  loadCertificatePair,
  readCertificateDirectory,
  parseCertificatePair,
  type CertificatePair,
} from './certificate-pair.js';
import type { CertificatePem } from './dev-certificate.js';

export { certificateMatchesHost, dnsNamesFromSubjectAltName } from './certificate-names.js';
export { CertificateError } from './certificate-pair.js';

export type CertEvent =
  | { readonly type: 'loaded'; readonly names: string[] }
  /** Nothing of the reload was applied: the previous material stays, less what has expired (a `loaded` follows when something was dropped). */
  | { readonly type: 'reload-failed'; readonly file: string; readonly reason: string }
  /** One file of a reload that was otherwise applied (`loaded` follows): it keeps serving what it served before, if anything. */
  | { readonly type: 'file-refused'; readonly file: string; readonly reason: string; readonly keptPrevious: boolean }
  /** The watch on a directory failed after it opened: no file was refused, but replacements there are no longer seen at once. */
  | { readonly type: 'watch-failed'; readonly dir: string; readonly reason: string };

export interface CertificateStoreOptions {
  /** The default certificate (PEM, leaf first, chain may follow), typically `*.<zone>`. */
  readonly certFile?: string;
  readonly keyFile?: string;
  /** Per-name pairs `<stem>.crt` + `<stem>.key`; the stem is only a label, names come from the certificate. */
  readonly dir?: string;
  /** The function zone; with only `dir`, the certificate naming `*.<zone>` becomes the default. */
  readonly zone: string;
  /** Served when neither `certFile` nor `dir` is given. */
  readonly devCert?: CertificatePem;
  /** Reload when a file changes (default true). */
  readonly watch?: boolean;
  /** Quiet period after the last change before reloading, so a pair being replaced is read once, whole. */
  readonly reloadDebounceMs?: number;
  /** How often the default pair's files are compared through their symlinks (replacement-watch.ts; default 10 s). */
  readonly pollMs?: number;
  readonly onEvent?: (event: CertEvent) => void;
}

export type HardenedTlsOptions = Required<
  Pick<SecureContextOptions, 'minVersion' | 'maxVersion' | 'ciphers' | 'honorCipherOrder' | 'ecdhCurve'>
>;

/**
 * TLS 1.2 suites: forward-secret ECDHE with AEAD only (Mozilla "intermediate" without DHE), so no
 * CBC and no static-RSA key exchange. The TLS 1.3 suites (all AEAD) are pinned too, so the whole
 * policy reads here rather than partly in OpenSSL's build defaults (Node sends `TLS_*` to the 1.3 list).
 */
const CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

const TLS_HARDENING: HardenedTlsOptions = Object.freeze({
  minVersion: 'TLSv1.2',
  maxVersion: 'TLSv1.3',
  ciphers: CIPHERS,
  honorCipherOrder: true,
  ecdhCurve: 'X25519:P-256:P-384',
});

interface ServedCertificate {
  readonly pair: CertificatePair;
  readonly context: SecureContext;
}

/** What lookups read; built whole by `loadSnapshot` and replaced whole, never edited. */
interface Snapshot {
  readonly exact: ReadonlyMap<string, SecureContext>;
  /** `*.example.com` is stored under `example.com`, the parent a servername is looked up by. */
  readonly wildcard: ReadonlyMap<string, SecureContext>;
  readonly fallback: ServedCertificate | undefined;
  readonly names: string[];
  /** What each certificate file serves, by its path: what a reload falls back on when the file turns bad. */
  readonly served: ReadonlyMap<string, ServedCertificate>;
  /** Epoch ms when the clock alone changes what is servable: a served certificate expires, or a refused one becomes valid. */
  readonly changesAt: number;
  /** Epoch ms when the first refused certificate becomes valid (Infinity: none waits). */
  readonly becomesValidAt: number;
}

/** A snapshot and the files a reload had to refuse while building it. */
interface LoadedSnapshot {
  readonly snapshot: Snapshot;
  readonly refused: readonly { readonly error: CertificateError; readonly keptPrevious: boolean }[];
}

export class CertificateStore {
  private snapshot: Snapshot;
  private watch: ReplacementWatch | undefined;
  /** Reloads when the clock alone changes what is servable (reloadAtNextChange). */
  private expiry: NodeJS.Timeout | undefined;
  private reloading: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly options: CertificateStoreOptions,
    private readonly zone: string,
    snapshot: Snapshot,
  ) {
    this.snapshot = snapshot;
  }

  /** Loads and validates all material; throws CertificateError naming the file when any is unusable. */
  static async open(options: CertificateStoreOptions): Promise<CertificateStore> {
    checkSources(options);
    const zone = normalizeServername(options.zone);
    const watch = options.watch ?? true;
    // Taken before the read: a pair replaced while it loads is read again.
    const before = watch ? await readIdentities(polledFiles(options)) : undefined;
    const { snapshot, refused } = await loadSnapshot(options, zone);
    const store = new CertificateStore(options, zone, snapshot);
    reportLoaded(options, snapshot, refused);
    if (before !== undefined) {
      store.startWatching(before);
      await store.followPairLinks();
    }
    store.reloadAtNextChange();
    return store;
  }

  /** Exact name, then a one-label wildcard, then the default; undefined only without a default. */
  secureContextFor(servername: string): SecureContext | undefined {
    const { exact, wildcard, fallback } = this.snapshot;
    const name = normalizeServername(servername);
    const parent = wildcardParentOf(name);
    return exact.get(name) ?? (parent === undefined ? undefined : wildcard.get(parent)) ?? fallback?.context;
  }

  defaultContext(): SecureContext | undefined {
    return this.snapshot.fallback?.context;
  }

  /**
   * The default PEM for the server's own `cert`/`key`: clients that send no SNI never reach the
   * SNICallback. After a `loaded` event, pass it again through `server.setSecureContext`.
   */
  defaultCredentials(): CertificatePem | undefined {
    const pair = this.snapshot.fallback?.pair;
    return pair === undefined ? undefined : { cert: pair.cert, key: pair.key };
  }

  /**
   * The hardening the TLS server itself must be created with. Every context here carries it too,
   * but OpenSSL keeps the protocol and cipher settings of the server's base context when the
   * SNICallback switches certificates, so only the server's options actually enforce them.
   */
  tlsOptions(): HardenedTlsOptions {
    return { ...TLS_HARDENING };
  }

  /** Re-reads every file now; resolves once the new material is in use or refused. */
  reload(): Promise<void> {
    this.reloading = this.reloading.then(async () => {
      if (this.closed) return;
      // Before the files are read: a link re-pointed while they are is then seen, not missed.
      await this.followPairLinks();
      try {
        const { snapshot, refused } = await loadSnapshot(this.options, this.zone, this.snapshot);
        if (this.closed) return;
        this.snapshot = snapshot;
        reportLoaded(this.options, snapshot, refused);
      } catch (err) {
        const file = err instanceof CertificateError ? err.file : (this.options.dir ?? this.options.certFile ?? 'tls');
        const reason = err instanceof CertificateError ? err.reason : (err as Error).message;
        this.options.onEvent?.({ type: 'reload-failed', file, reason });
        const kept = withoutExpired(this.snapshot, Date.now());
        if (kept !== this.snapshot) {
          const dropped = kept.served.size !== this.snapshot.served.size;
          this.snapshot = kept;
          if (dropped) this.options.onEvent?.({ type: 'loaded', names: kept.names });
        }
      }
      this.reloadAtNextChange();
    });
    return this.reloading;
  }

  /**
   * A certificate that expires while no file changes must stop being served then: it fails every
   * client, and while it is served its names count as covered by a file, so ACME would never
   * replace it. One refused as not yet valid (a CA's clock a little ahead) must be served once it
   * is, not only after its file is touched. A reload at that moment does either. A moment that
   * passed during the load (a large directory read against the clock of its start) is reloaded at
   * once: skipped, it left no timer at all, and every later expiry went untimed until a file
   * changed. That ends: a load judges by its own start, so the moment is behind the next one, and a
   * reload that failed keeps only moments still ahead (withoutExpired).
   */
  private reloadAtNextChange(): void {
    clearTimeout(this.expiry);
    const now = Date.now();
    const { changesAt } = this.snapshot;
    if (this.closed || !Number.isFinite(changesAt)) return;
    // A timer holds at most 2^31-1 ms (24.8 days): a later moment is reached by reloading and arming again.
    this.expiry = setTimeout(() => void this.reload(), Math.min(Math.max(changesAt - now, 0) + 1, 2 ** 31 - 1));
    this.expiry.unref();
  }

  /** Stops watching. Contexts already handed to connections stay theirs. */
  close(): void {
    this.closed = true;
    clearTimeout(this.expiry);
    this.watch?.close();
  }

  private startWatching(polledBefore: readonly string[]): void {
    const directories = new Map<string, (changed: string) => boolean>();
    for (const [dir, watched] of watchedDirectories(this.options)) directories.set(dir, (changed) => isRelevantChange(changed, watched));
    this.watch = new ReplacementWatch({
      directories,
      polled: polledFiles(this.options),
      polledBefore,
      ...(this.options.pollMs === undefined ? {} : { pollMs: this.options.pollMs }),
      ...(this.options.reloadDebounceMs === undefined ? {} : { debounceMs: this.options.reloadDebounceMs }),
      onChange: () => void this.reload(),
      // Not a refused file (it was logged and counted as one): what is served is unchanged.
      onError: (dir, err) => this.options.onEvent?.({ type: 'watch-failed', dir, reason: err.message }),
    });
  }

  /**
   * Watches where the `--tls-dir` pairs' symlinks lead (link-hops.ts), so a pair replaced there
   * (certbot re-pointing its `live/` links) is read again as one replaced in `--tls-dir` is, with no
   * poll of every pair. Links into `--tls-dir` itself (a Kubernetes volume's `..data`) are left out:
   * its own watch sees their swap. At most MAX_FOLLOWED_DIRECTORIES directories.
   */
  private async followPairLinks(): Promise<void> {
    const { dir } = this.options;
    if (dir === undefined || this.watch === undefined) return;
    let entries: string[];
    try {
      entries = await readdir(dir);
    } catch {
      return; // the reload says why the directory cannot be read
    }
    const files = entries.filter((entry) => !entry.startsWith('.') && (extname(entry) === CERT_EXTENSION || extname(entry) === KEY_EXTENSION)).map((entry) => join(dir, entry));
    const hops = await linkHops(files);
    const inside = [resolve(dir), await realpath(dir).catch(() => resolve(dir))];
    const followed = new Map<string, (changed: string) => boolean>();
    for (const [target, names] of hops) {
      if (inside.some((own) => isWithin(own, target))) continue;
      if (followed.size === MAX_FOLLOWED_DIRECTORIES) break;
      // A change named as the directory itself: it was removed or renamed, its files with it.
      followed.set(target, (changed) => names.has(changed) || changed === basename(target));
    }
    if (!this.closed) this.watch?.follow(followed);
  }
}

/**
 * Most directories outside `--tls-dir` whose links are watched (followPairLinks): each is an
 * inotify watch, a per-user kernel resource (8,192 on older kernels). certbot's layout takes two per
 * name (live/ and archive/); the pairs beyond are read again at the next reload.
 */
const MAX_FOLLOWED_DIRECTORIES = 2_000;

/** Whether `path` is `dir` or lies under it. */
function isWithin(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/** The SNICallback for `tls.createServer`: answers from the store's current snapshot. */
export function sniCallback(store: CertificateStore): (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void {
  return function selectCertificate(servername, cb) {
    cb(null, store.secureContextFor(servername));
  };
}

function checkSources(options: CertificateStoreOptions): void {
  if ((options.certFile === undefined) !== (options.keyFile === undefined)) {
    throw new ConfigError(`TLS: ${options.certFile ?? options.keyFile ?? ''}: a certificate file and a key file go together; one is missing`);
  }
  if (options.certFile === undefined && options.dir === undefined && options.devCert === undefined) {
    throw new ConfigError('TLS: no certificate: give a certificate and key file, a certificate directory, or a development certificate');
  }
  if (normalizeServername(options.zone).length === 0) throw new ConfigError('TLS: the zone is empty');
}

/** What a load tells its listener: each file it refused, then what it now serves. */
function reportLoaded(options: CertificateStoreOptions, snapshot: Snapshot, refused: LoadedSnapshot['refused']): void {
  for (const { error, keptPrevious } of refused) options.onEvent?.({ type: 'file-refused', file: error.file, reason: error.reason, keptPrevious });
  options.onEvent?.({ type: 'loaded', names: snapshot.names });
}

/**
 * Reads every file and builds the lookup maps. A bad file is reported in `refused` and keeps the
 * certificate it served in `previous` (a reload) while that is still valid, or is left out. At
 * startup (no `previous`) a bad default pair throws: it is the operator's own, not a customer's.
 */
async function loadSnapshot(options: CertificateStoreOptions, zone: string, previous?: Snapshot): Promise<LoadedSnapshot> {
  const now = new Date();
  const refused: { error: CertificateError; keptPrevious: boolean }[] = [];
  const fallBack = (certFile: string, error: unknown, isDefault = false): ServedCertificate | undefined => {
    if (!(error instanceof CertificateError) || (previous === undefined && isDefault)) throw error;
    const before = previous?.served.get(certFile);
    // An expired certificate is no fallback: serving it fails every client, and while it is held
    // its names count as covered by a file, so ACME would never replace it.
    const kept = before !== undefined && unexpiredAt(before.pair, now.getTime()) ? before : undefined;
    refused.push({ error, keptPrevious: kept !== undefined });
    return kept;
  };
  const loadMain = async (certFile: string, keyFile: string): Promise<CertificatePair | undefined> => {
    try {
      return await loadCertificatePair(certFile, keyFile, now);
    } catch (err) {
      return fallBack(certFile, err, true)?.pair;
    }
  };
  const loadDirectory = async (dir: string): Promise<CertificatePair[]> => {
    const { pairs, refused: bad } = await readCertificateDirectory(dir, now);
    for (const { certFile, error } of bad) {
      const kept = fallBack(certFile, error);
      if (kept !== undefined) pairs.push(kept.pair);
    }
    return pairs;
  };
  const [main, dirPairs]: [CertificatePair | undefined, CertificatePair[]] = await Promise.all([
    options.certFile !== undefined && options.keyFile !== undefined ? loadMain(options.certFile, options.keyFile) : undefined,
    options.dir === undefined ? [] : loadDirectory(options.dir),
  ]);
  const dev =
    options.certFile === undefined && options.dir === undefined && options.devCert !== undefined
      ? parseCertificatePair({ certFile: 'dev certificate', keyFile: 'dev certificate key' }, options.devCert, now)
      : undefined;
  // Directory pairs are the specific ones, so they claim names before the default does; among them
  // the one expiring last wins a shared name, so a renewal dropped beside the old file takes over.
  const ordered = [...dirPairs].sort((a, b) => b.validTo.getTime() - a.validTo.getTime());
  // Picked from `ordered` by the same rule: from the file order, clients without SNI (and unknown
  // names) would get the old `*.<zone>` while named clients got the renewal.
  const defaultPair = main ?? dev ?? ordered.find((pair) => pair.names.includes(`*.${zone}`));
  // Nothing servable refuses to start, and refuses a reload whole while what is served is still
  // valid (files removed mid-update must not take TLS away): the first bad file says more than
  // "no pairs". But once everything served has expired, nothing is what is served: refused, that
  // reload had kept the expired certificates in service, their names counted as covered by files
  // (so ACME never ordered them), and with no later moment to reload at, for good.
  const stillValid = previous !== undefined && [...previous.served.values()].some((entry) => unexpiredAt(entry.pair, now.getTime()));
  if (defaultPair === undefined && dirPairs.length === 0 && (previous === undefined || stillValid)) {
    if (refused[0] !== undefined) throw refused[0].error;
    throw new CertificateError(options.dir ?? options.certFile ?? 'tls', `no ${CERT_EXTENSION} + ${KEY_EXTENSION} pairs and no default certificate`);
  }

  const served = new Map<string, ServedCertificate>();
  let fallback: ServedCertificate | undefined;
  if (defaultPair !== undefined && !dirPairs.includes(defaultPair)) ordered.push(defaultPair);
  for (const pair of ordered) {
    const before = previous?.served.get(pair.certFile);
    // A pair kept from `previous`, or read again with the same certificate and key, has its context
    // built already. Each new one costs OpenSSL over a millisecond of the event loop (1.2 ms here), and
    // a reload reads every pair: one renewal in a --tls-dir of 1,000 rebuilt all 1,000 in one turn,
    // in every worker at once (found by review).
    let entry = before !== undefined && before.pair.cert === pair.cert && before.pair.key === pair.key ? before : undefined;
    if (entry === undefined) {
      try {
        entry = { pair, context: hardenedContext(pair) };
      } catch (err) {
        entry = fallBack(pair.certFile, err, pair === main);
        if (entry === undefined) continue;
      }
    }
    served.set(pair.certFile, entry);
    if (pair === defaultPair) fallback = entry;
  }
  let becomesValidAt = Infinity;
  for (const { error } of refused) if (error.validFrom !== undefined) becomesValidAt = Math.min(becomesValidAt, error.validFrom.getTime());
  return { snapshot: snapshotOf(served, fallback, becomesValidAt), refused };
}

/**
 * The lookups for `served` (in its order: the first entry naming a name serves it) with `fallback`
 * for clients naming none; `becomesValidAt`, when a refused certificate's validity begins.
 */
function snapshotOf(served: ReadonlyMap<string, ServedCertificate>, fallback: ServedCertificate | undefined, becomesValidAt: number): Snapshot {
  const exact = new Map<string, SecureContext>();
  const wildcard = new Map<string, SecureContext>();
  let changesAt = becomesValidAt;
  for (const entry of served.values()) {
    changesAt = Math.min(changesAt, entry.pair.validTo.getTime());
    for (const name of entry.pair.names) {
      const [map, key] = name.startsWith('*.') ? [wildcard, name.slice(2)] : [exact, name];
      if (!map.has(key)) map.set(key, entry.context);
    }
  }
  const names = [...new Set([...served.values()].flatMap((entry) => entry.pair.names))].sort();
  return { exact, wildcard, fallback, names, served, changesAt, becomesValidAt };
}

/**
 * `snapshot` less the certificates expired by `now`, and waiting only for what is still ahead:
 * what a reload refused whole (files removed mid-update) goes on serving. Kept whole, an expired
 * certificate went on failing every client that named it, where another (the zone's wildcard)
 * could serve them, and its names counted as covered by files, so ACME never ordered them; and a
 * moment already past (a refused certificate's start) armed no timer for the next expiry. The
 * same snapshot when the moment it waits for is still ahead.
 */
function withoutExpired(snapshot: Snapshot, now: number): Snapshot {
  if (snapshot.changesAt > now) return snapshot;
  const served = new Map([...snapshot.served].filter(([, entry]) => unexpiredAt(entry.pair, now)));
  const fallback = snapshot.fallback !== undefined && served.get(snapshot.fallback.pair.certFile) === snapshot.fallback ? snapshot.fallback : undefined;
  return snapshotOf(served, fallback, snapshot.becomesValidAt > now ? snapshot.becomesValidAt : Infinity);
}

/** The pair's TLS context as the router serves it; a CertificateError naming its file when OpenSSL refuses it (`validate` asks too). */
export function hardenedContext(pair: CertificatePair): SecureContext {
  try {
    return createSecureContext({ ...TLS_HARDENING, cert: pair.cert, key: pair.key });
  } catch (err) {
    throw new CertificateError(pair.certFile, `refused by OpenSSL (${(err as Error).message})`);
  }
}

interface WatchedDirectory {
  /** Base names of the default certificate and key that live here. */
  readonly files: Set<string>;
  /** The `--tls-dir` itself: any `.crt` or `.key` in it matters. */
  isPairDir: boolean;
}

function watchedDirectories(options: CertificateStoreOptions): Map<string, WatchedDirectory> {
  const dirs = new Map<string, WatchedDirectory>();
  const entry = (dir: string): WatchedDirectory => {
    const key = resolve(dir);
    const existing = dirs.get(key) ?? { files: new Set<string>(), isPairDir: false };
    dirs.set(key, existing);
    return existing;
  };
  for (const file of [options.certFile, options.keyFile]) if (file !== undefined) entry(dirname(file)).files.add(basename(file));
  if (options.dir !== undefined) entry(options.dir).isPairDir = true;
  return dirs;
}

/** Kubernetes' `..data` swaps count too: ReplacementWatch adds them. */
function isRelevantChange(changed: string, watched: WatchedDirectory): boolean {
  if (watched.files.has(changed)) return true;
  const ext = extname(changed);
  return watched.isPairDir && (ext === CERT_EXTENSION || ext === KEY_EXTENSION);
}

/** The default pair: what a symlink to another tool's files (certbot's, a shared mount) most often names. */
function polledFiles(options: CertificateStoreOptions): string[] {
  return [options.certFile, options.keyFile].filter((file) => file !== undefined);
}

/** Whether `pair` has not expired at `nowMs` (its start was checked when it was loaded). */
function unexpiredAt(pair: CertificatePair, nowMs: number): boolean {
  return pair.validTo.getTime() > nowMs;
}
