/**
 * Telling lost registry data from undeployed functions. A Redis that restarts without
 * persistence answers every read, with nothing: to a router that trusted it, every function
 * would look undeployed. The registry therefore carries a generation, a name for its body of
 * data that only a seed or a restore writes (never an ordinary write), so data that vanished
 * leaves no generation behind. A router compares what it remembers with what it reads.
 *
 * A generation says how it came to be: `seed:` when a router stamped a registry it found empty
 * (a new deployment, or one that lost its data before any router noticed), `import:` for an
 * operator's `registry import`, `restore:` when a router put back what it knew after a loss. A
 * router that knew another generation and now reads a `seed:` one has lost data, not been handed
 * new data: it restores what it knew.
 *
 * The restore is stamped with a new name, not the one the router knew. Had it put back the old
 * `seed:` name, a process that stamped the emptied registry with a `seed:` of its own (a router or
 * orchestrator started after the loss) would read the old name as a seed too, judge its own data
 * lost and restore over it, and so on for ever: two seeds each taking the other for a loss. A
 * `restore:` name is news to every other process, which takes the restored data.
 */
import { randomUUID } from 'node:crypto';

export type GenerationVerdict =
  /** Neither knows one (a new registry, or one from before generations): stamp one. */
  | { readonly kind: 'unstamped' }
  /** The first one this router reads: adopt it. */
  | { readonly kind: 'adopt'; readonly generation: string }
  | { readonly kind: 'same' }
  /** The registry has none, but this router knew one: its data is gone. Keep serving the last-known state and re-seed it. */
  | { readonly kind: 'lost'; readonly generation: string }
  /** A different one: someone restored or imported on purpose. Take the registry's data. */
  | { readonly kind: 'replaced'; readonly from: string; readonly to: string };

export function judgeGeneration(known: string | null, read: string | null): GenerationVerdict {
  if (read === null) return known === null ? { kind: 'unstamped' } : { kind: 'lost', generation: known };
  if (known === null) return { kind: 'adopt', generation: read };
  if (read === known) return { kind: 'same' };
  if (read.startsWith(SEED_PREFIX)) return { kind: 'lost', generation: known };
  return { kind: 'replaced', from: known, to: read };
}

export const SEED_PREFIX = 'seed:';
export const RESTORE_PREFIX = 'restore:';

/** A new generation: how it came to be, when (for people reading Redis) and a random part. */
export function newGeneration(origin: 'seed' | 'import' | 'restore', now: number = Date.now()): string {
  return `${origin}:${new Date(now).toISOString()}/${randomUUID().slice(0, 8)}`;
}
