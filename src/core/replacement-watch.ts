/**
 * Notices when files the router reads (certificates, the GeoIP database) are replaced, however a
 * deploy tool replaces them. A watch (inotify) on a file's directory sees an edit or a rename over
 * the file at once; a watch on the file itself would be lost at the first rename. But a directory
 * watch stays on the directory it was opened on, so three common replacements pass it by:
 * - Kubernetes volumes (ConfigMap, Secret, projected): the visible names are symlinks through
 *   `..data`, which the kubelet swaps; the names themselves never change, so any `..` entry counts;
 * - a directory that is itself a symlink, re-pointed (`ln -s v2 live.tmp && mv -T live.tmp live`):
 *   only its parent sees the swap, and then the watch moves to what the directory now is;
 * - a file that is a symlink to a file in another directory, replaced there (a shared
 *   `/var/lib/GeoIP` that geoipupdate keeps current): nothing changes where any watch is. Only the
 *   file's identity tells, so `polled` files are compared through their symlinks every `pollMs`;
 *   for many files, whose identities would cost a stat each at every poll, the caller can instead
 *   `follow` the directories their links lead into (link-hops.ts), re-armed as the links change.
 * One replacement makes several events: `onChange` is called once, `debounceMs` after the last.
 */
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

export interface ReplacementWatchOptions {
  /** Directories to watch, each with the test of which changed entry names matter there. */
  readonly directories: ReadonlyMap<string, (changed: string) => boolean>;
  /** Files whose identity (device, inode, size, times, through symlinks) is compared every `pollMs`. */
  readonly polled?: readonly string[];
  /** Default 10 s: a file replaced where no watch looks is read again within this. */
  readonly pollMs?: number;
  /**
   * The identities of `polled` (readIdentities) as the caller took them before it read the files:
   * a file replaced between that read and the watch's first check is then reported. Without it,
   * the first check's identities are the baseline, and such a replacement is missed until the next.
   */
  readonly polledBefore?: readonly string[];
  /** Default 250 ms: `onChange` is called this long after the last event of a replacement. */
  readonly debounceMs?: number;
  readonly onChange: () => void;
  /** A watch that failed after it was opened (it reports nothing more). */
  readonly onError: (dir: string, error: Error) => void;
}

export const DEFAULT_POLL_MS = 10_000;
export const DEFAULT_DEBOUNCE_MS = 250;

export class ReplacementWatch {
  private readonly watchers = new Set<FSWatcher>();
  private poller: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private polling = false;
  /**
   * Identities of `polled` as last seen: at the last check, or as a reported change was about to
   * be read (so the check after it reports only what changed since). Undefined until first read.
   */
  private identities: readonly string[] | undefined;
  private closed = false;
  private checksDone = 0;
  /** The watches `follow` opened, replaced whole at its next call. */
  private followed: FSWatcher[] = [];

  /** Throws when one of `directories` cannot be watched at all. */
  constructor(private readonly options: ReplacementWatchOptions) {
    try {
      for (const [dir, relevant] of options.directories) this.watchFollowingSwaps(dir, relevant);
    } catch (err) {
      this.close(); // the watches already opened must not outlive the failed start
      throw err;
    }
    if ((options.polled ?? []).length > 0) {
      this.identities = options.polledBefore;
      void this.check();
      this.poller = setInterval(() => void this.check(), options.pollMs ?? DEFAULT_POLL_MS);
      this.poller.unref();
    }
  }

  /** Polls of the files completed so far: what a wait for "the watch has looked" counts. */
  get completedChecks(): number {
    return this.checksDone;
  }

  /** Reports a change as a watch event would (debounced): a caller that may have missed one, before its watch opened. */
  reportChange(): void {
    if (this.closed) return;
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.changed(), this.options.debounceMs ?? DEFAULT_DEBOUNCE_MS);
    this.debounce.unref();
  }

  /**
   * The polled files' identities are taken just before the caller reads the files again: the next
   * check then reports a replacement made after that read (which no event may announce: the target
   * of a link, renamed over where nothing watches), and not the one being read now (which would
   * read every file twice per replacement). Before, a check that followed an event reported nothing
   * it found, so a link re-created and then its target replaced before the next poll had the
   * target's replacement missed until some later change, and workers whose polls fell between the
   * two served different versions (found by review).
   */
  private async changed(): Promise<void> {
    const polled = this.options.polled ?? [];
    if (polled.length > 0) {
      const identities = await readIdentities(polled);
      if (this.closed) return;
      this.identities = identities;
    }
    this.options.onChange();
  }

  /**
   * Watches these directories too (a change passing `relevant` is a change, as in `directories`),
   * in place of those of the previous call: where the watched files' links lead now. A directory
   * that cannot be watched (gone, or the kernel's inotify watches spent) is skipped: its files are
   * read again at the next reload. Returns how many are watched.
   */
  follow(directories: ReadonlyMap<string, (changed: string) => boolean>): number {
    for (const watcher of this.followed) this.stopWatcher(watcher);
    this.followed = [];
    if (this.closed) return 0;
    for (const [dir, relevant] of directories) {
      try {
        this.followed.push(this.watchDirectory(dir, relevant));
      } catch {
        // Skipped, as documented above.
      }
    }
    return this.followed.length;
  }

  close(): void {
    this.closed = true;
    clearInterval(this.poller);
    clearTimeout(this.debounce);
    for (const watcher of this.watchers) watcher.close();
    this.watchers.clear();
  }

  private watchFollowingSwaps(dir: string, relevant: (changed: string) => boolean): void {
    let inside: FSWatcher | undefined = this.watchDirectory(dir, (changed) => changed.startsWith('..') || relevant(changed));
    const parent = dirname(dir);
    if (parent === dir) return;
    const name = basename(dir);
    try {
      this.watchDirectory(parent, (changed) => {
        if (changed !== name) return false;
        if (inside !== undefined) this.stopWatcher(inside);
        try {
          inside = this.watchDirectory(dir, (entry) => entry.startsWith('..') || relevant(entry));
        } catch {
          inside = undefined; // mid-swap (`ln -sfn` unlinks first): the next event re-arms it
        }
        return true;
      });
    } catch {
      // A parent we may not watch costs only the whole-directory swap (and the poll still sees it).
    }
  }

  /** Calls onChange when a change in `dir` passes `relevant`. Throws when `dir` cannot be watched. */
  private watchDirectory(dir: string, relevant: (changed: string) => boolean): FSWatcher {
    const watcher = watch(dir, { persistent: false }, (_event, changed) => {
      if (this.closed || (changed !== null && !relevant(changed))) return;
      this.reportChange();
    });
    watcher.on('error', (err) => this.options.onError(dir, err));
    this.watchers.add(watcher);
    return watcher;
  }

  private stopWatcher(watcher: FSWatcher): void {
    watcher.close();
    this.watchers.delete(watcher);
  }

  /** Reads the polled files' identities and reports a change since they were last seen. */
  private async check(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const identities = await readIdentities(this.options.polled ?? []);
      if (this.closed) return;
      const changed = this.identities !== undefined && identities.some((id, i) => id !== this.identities![i]);
      this.identities = identities;
      if (changed) this.reportChange();
      this.checksDone++;
    } finally {
      this.polling = false;
    }
  }
}

/** What tells one version of each file from the next (for `polledBefore`). */
export function readIdentities(files: readonly string[]): Promise<string[]> {
  return Promise.all(files.map(identityOf));
}

/** What tells one version of a file from the next, through symlinks; an unreadable file is its error. */
async function identityOf(file: string): Promise<string> {
  try {
    const info = await stat(file, { bigint: true });
    return `${info.dev}:${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`;
  } catch (err) {
    return `error:${(err as NodeJS.ErrnoException).code ?? String(err)}`;
  }
}
