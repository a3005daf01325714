/**
 * Incremental directory updates. The directory (functions, residency, custom domains) is the
 * large part of the registry: read and validated whole, 20,000 functions cost a router about
 * 100 ms of CPU, most of it one pause of every request it holds; reading it on every deploy, or on
 * every reconcile, stalled them over and over (`npm run bench:registry`). So each directory part carries a revision, changed by every write to it, and each
 * write's change message carries the entry written and the revision before and after it:
 *
 *  - a watcher that holds revision `prev` applies the entry and holds `rev` (no read at all);
 *  - a reconcile reads only the parts whose revision changed (none, usually);
 *  - anything that does not chain (a lost message, a writer of an earlier version that sends no
 *    revision) makes the watcher read that part whole, as before.
 *
 * A revision is `<counter>.<nonce>`: the counter orders the writes to one part (to tell a message
 * a read already included from one it missed), the write's random nonce keeps two revisions apart
 * that a Redis rolled back (restored from an older snapshot, failed over to a replica behind)
 * counted to the same number again. One nonce per write, not per writer: the same writer's next
 * write after a rollback got the very revision of the write lost, and readers that held that one
 * took the new write as read already, for minutes. No I/O.
 */
import { randomBytes } from 'node:crypto';
import type { FunctionRecord, FunctionRef, RegionId } from '../core/types.js';

export const DIRECTORY_PARTS = ['functions', 'residency', 'domains'] as const;
export type DirectoryPart = (typeof DIRECTORY_PARTS)[number];

/** Each part's revision; null: none stored (never written, or only by a version before revisions). */
export type DirectoryRevisions = Readonly<Record<DirectoryPart, string | null>>;

export const NO_REVISIONS: DirectoryRevisions = { functions: null, residency: null, domains: null };

/** What a reader already holds: with it, a read may leave out the parts it holds unchanged. */
export interface HeldDirectory {
  /** The generation the holder's last read found (null: none). */
  readonly generation: string | null;
  /** null for a part the holder wants read whatever its revision. */
  readonly revisions: DirectoryRevisions;
}

/**
 * How a read takes the directory parts it reads: `atomic`, all in one consistent reply; `paged`, a
 * large part a page at a time, not one consistent view (an entry written meanwhile may or may not
 * be in it), for a watcher, which applies the messages of the writes since the revision the read
 * returned: short pauses of its requests instead of one long one.
 */
export type ReadMode = 'atomic' | 'paged';

/** One entry written (a value) or deleted (null), as a change message carries it, decoded. */
export type DirectoryPatch =
  | { readonly part: 'functions'; readonly org: string; readonly fn: string; readonly record: FunctionRecord | null }
  | { readonly part: 'residency'; readonly org: string; readonly regions: ReadonlySet<RegionId> | null }
  | { readonly part: 'domains'; readonly host: string; readonly ref: FunctionRef | null };

/** The directory parts of a registry state. */
export interface Directory {
  readonly functions: ReadonlyMap<string, ReadonlyMap<string, FunctionRecord>>;
  readonly residency: ReadonlyMap<string, ReadonlySet<RegionId>>;
  readonly domains: ReadonlyMap<string, FunctionRef>;
}

/** A well-formed revision: a counter, a dot, a nonce. Anything else in a message is not trusted to chain. */
export const REVISION_PATTERN = /^\d{1,15}\.[0-9A-Za-z_-]{1,32}$/;

/** A write's own nonce (the part of its revision after the counter). */
export function freshNonce(): string {
  return randomBytes(6).toString('base64url');
}

/** The revision after `prev` (null: none yet), written with `nonce`. */
export function nextRevision(prev: string | null, nonce = freshNonce()): string {
  return `${(prev === null ? 0 : counterOf(prev)) + 1}.${nonce}`;
}

function counterOf(revision: string): number {
  const dot = revision.indexOf('.');
  const counter = Number(revision.slice(0, dot));
  return dot > 0 && Number.isSafeInteger(counter) ? counter : 0;
}

/**
 * What a watcher holding revision `held` does with a message that took a part from `prev` to
 * `rev`: apply it (it follows what is held), skip it (a read since included it: its counter is
 * not past the held one), or read the part whole (a message between them was missed). A Redis
 * restored from an older snapshot counts again from lower: its next write may look included; the
 * watcher reads after any failed call, and every reconcile compares revisions, which then differ.
 */
export function chainVerdict(held: string | null, prev: string | null, rev: string): 'apply' | 'included' | 'gap' {
  // Every writer counts one on from the revision before: a message that does not is no write's
  // (a forged or garbled publish), and may not put an entry into the directory without a read.
  if (prev === held && counterOf(rev) === (prev === null ? 0 : counterOf(prev)) + 1) return 'apply';
  if (prev === held) return 'gap';
  if (held !== null && counterOf(rev) <= counterOf(held)) return 'included';
  return 'gap';
}

/**
 * The directory with one entry written or deleted; shares every map it does not change (the
 * snapshot's maps are read by requests in flight: replaced, never mutated).
 */
export function applyPatch<D extends Directory>(directory: D, patch: DirectoryPatch): D {
  switch (patch.part) {
    case 'functions': {
      const functions = new Map(directory.functions);
      const byFn = new Map(functions.get(patch.org));
      if (patch.record === null) byFn.delete(patch.fn);
      else byFn.set(patch.fn, patch.record);
      if (byFn.size === 0) functions.delete(patch.org);
      else functions.set(patch.org, byFn);
      return { ...directory, functions };
    }
    case 'residency': {
      const residency = new Map(directory.residency);
      if (patch.regions === null) residency.delete(patch.org);
      else residency.set(patch.org, patch.regions);
      return { ...directory, residency };
    }
    case 'domains': {
      const domains = new Map(directory.domains);
      if (patch.ref === null) domains.delete(patch.host);
      else domains.set(patch.host, patch.ref);
      return { ...directory, domains };
    }
  }
}
