/**
 * A worker that cannot read the registry at its start (a replacement forked during a Redis outage)
 * takes the function directory its siblings route by. Without it, it answered its share of the
 * router's connections 503 registry_unreachable and /readyz 503 until Redis came back, while the
 * other workers routed on their last-known snapshot (fail-static): a load balancer saw the router
 * flap, clients got 503s on 1/N of their connections.
 *
 * Why a sibling's state, relayed by the primary, and not a copy the primary keeps current: the
 * sibling's state is exactly what the rest of the router routes by, with nothing to keep in step;
 * a copy kept current would cost every change (20,000 functions cloned over IPC, from N workers) to
 * serve the rare worker started during an outage. The primary keeps the last state it relayed,
 * one copy replaced by the next (never accumulated), for a worker that finds no sibling able to
 * answer (every one of them died at once): what the router last knew beats knowing nothing.
 *
 * The relay says which it handed: a live sibling's state, or the primary's held copy and since when
 * it held it. A held copy may be from an earlier outage, older than the registry's data, and no
 * worker kept it current: the worker routes on it but never writes it back to a registry found
 * without its data (registry-watcher.ts). Only live state, a sibling's or a worker's own, is.
 */
import type { LastKnownState } from '../registry/registry-watcher.js';
import type { MessageLink } from './message-link.js';

/** What the primary hands a worker that asks: a running sibling's state, or the copy it held since `heldSince`. */
export type RelayedState =
  | { readonly source: 'sibling'; readonly known: LastKnownState }
  | { readonly source: 'held'; readonly known: LastKnownState; readonly heldSince: number };

const SEED = 'registry.seed';
const LAST_KNOWN = 'registry.lastKnown';
/** One sibling's answer: a clone of the whole directory, which takes a moment at 20,000 functions. */
const SIBLING_TIMEOUT_MS = 5_000;
/** How often a worker with no directory asks again while nobody has one to give. */
const ASK_AGAIN_MS = 1_000;

/** The part of a RegistryWatcher this needs. */
export interface SeedableWatcher {
  lastKnown(): LastKnownState | undefined;
  seed(known: LastKnownState): boolean;
  readonly snapshot: { readonly directoryUnread?: true };
}

/**
 * A worker's side: answers its siblings (through the primary) with what its watcher knows, and,
 * while its own directory is unread, asks for theirs. Resolves after the first ask (so a worker
 * that can be seeded is before it listens); returns a function that stops asking.
 */
export async function seedFromSiblings(link: MessageLink, watcher: SeedableWatcher): Promise<() => void> {
  link.handle(LAST_KNOWN, () => watcher.lastKnown() ?? null);
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const ask = async (): Promise<void> => {
    if (stopped || watcher.snapshot.directoryUnread !== true) return;
    const relayed = await link.call<RelayedState | null>(SEED, [], SIBLING_TIMEOUT_MS * 3).catch(() => null);
    if (relayed !== null && watcher.seed(seedOf(relayed))) return;
    // Nobody knew yet (every worker starting together), or the registry answered meanwhile (then the next ask returns at once).
    if (!stopped && watcher.snapshot.directoryUnread === true) timer = setTimeout(() => void ask(), ASK_AGAIN_MS).unref();
  };
  await ask();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/** The state to seed with: the primary's held copy marked as one (as of when it was held), whoever passes it on later. */
export function seedOf(relayed: RelayedState): LastKnownState {
  if (relayed.source === 'sibling' || relayed.known.heldCopyAt !== null) return relayed.known;
  return { ...relayed.known, heldCopyAt: relayed.heldSince };
}

/** The primary's side: relays a sibling's last-known state to a worker that asks, keeping the last live one relayed. */
export class LastKnownRelay {
  private readonly links = new Set<MessageLink>();
  private held: { readonly known: LastKnownState; readonly since: number } | undefined;

  constructor(private readonly now: () => number = Date.now) {}

  /** Relays for `link`'s worker; returns a function to call when that worker has gone. */
  attach(link: MessageLink): () => void {
    this.links.add(link);
    link.handle(SEED, () => this.lastKnownFor(link));
    return () => this.links.delete(link);
  }

  /**
   * One sibling after another, not all at once: each answer is the whole directory, and one live
   * one is enough. A sibling that has no state yet (starting too) answers null; one that cannot
   * answer (stuck, dying, still starting) is passed over. A sibling that routes on a held copy
   * itself (seeded from it, Redis not read since) is taken only when no sibling has live state:
   * its copy is the primary's, with the changes pushed to it since. The copy kept is of live
   * state only, so its `since` says when the last live view was handed.
   */
  private async lastKnownFor(asker: MessageLink): Promise<RelayedState | null> {
    let copy: LastKnownState | undefined;
    for (const sibling of [...this.links]) {
      if (sibling === asker || !this.links.has(sibling)) continue;
      const known = await sibling.call<LastKnownState | null>(LAST_KNOWN, [], SIBLING_TIMEOUT_MS).catch(() => null);
      if (known === null) continue;
      if (known.heldCopyAt !== null) {
        copy ??= known;
        continue;
      }
      this.held = { known, since: this.now() };
      return { source: 'sibling', known };
    }
    if (copy !== undefined) return { source: 'sibling', known: copy };
    return this.held === undefined ? null : { source: 'held', known: this.held.known, heldSince: this.held.since };
  }
}
