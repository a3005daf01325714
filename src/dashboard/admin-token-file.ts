/**
 * Watches the admin token file (--admin-token-file) and reports each new token it holds, however
 * the file is replaced: in place, by rename, through a Kubernetes Secret's `..data` swap
 * (ReplacementWatch sees them all). A replacement that is no token — empty, too short, with a
 * space, unreadable while a deploy tool swaps it — is reported as refused, by its problem and never
 * its text: the token in use stays. Each worker of `--workers N` reads its token from the file
 * itself, so each watches it itself.
 */
import { MAX_TOKEN_FILE_BYTES, readProblemOf, readRegularText } from '../core/regular-file.js';
import { basename, dirname } from 'node:path';
import { ReplacementWatch } from '../core/replacement-watch.js';
import { parseAdminToken } from './admin-token-text.js';

export interface AdminTokenFileOptions {
  readonly file: string;
  /** The token read from the file at start. */
  readonly current: string;
  /** The file holds another valid token. */
  readonly onReplaced: (token: string) => void;
  /** The file was replaced by something that is no token: what is wrong, never the text. */
  readonly onRefused: (reason: string) => void;
  /** A watch failed after it opened: replacements are then seen only by the periodic check. */
  readonly onWatchError?: (dir: string, error: Error) => void;
  /** One replacement makes several events: the file is read this long after the last (default 250 ms). */
  readonly debounceMs?: number;
  /** How often the file is compared through its symlinks (ReplacementWatch; default 10 s). */
  readonly pollMs?: number;
}

export class AdminTokenFile {
  private readonly watch: ReplacementWatch;
  /** One read at a time, in order: two reads racing could take an older text last. */
  private reading: Promise<void> = Promise.resolve();
  private current: string;
  private closed = false;

  constructor(private readonly options: AdminTokenFileOptions) {
    this.current = options.current;
    const name = basename(options.file);
    this.watch = new ReplacementWatch({
      directories: new Map([[dirname(options.file), (changed: string) => changed === name]]),
      polled: [options.file],
      ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }),
      ...(options.debounceMs === undefined ? {} : { debounceMs: options.debounceMs }),
      onChange: () => (this.reading = this.reading.then(() => this.read())),
      onError: (dir, err) => options.onWatchError?.(dir, err),
    });
    // The file was read at start, before this watch opened: a replacement in between is caught here.
    this.watch.reportChange();
  }

  close(): void {
    this.closed = true;
    this.watch.close();
  }

  private async read(): Promise<void> {
    let text: string;
    try {
      text = await readRegularText(this.options.file, MAX_TOKEN_FILE_BYTES);
    } catch (err) {
      if (!this.closed) this.options.onRefused(`cannot read it (${readProblemOf(err)})`);
      return;
    }
    if (this.closed) return;
    const parsed = parseAdminToken(text);
    if (!parsed.ok) this.options.onRefused(parsed.problem);
    else if (parsed.token !== this.current) {
      this.current = parsed.token;
      this.options.onReplaced(parsed.token);
    }
  }
}
