/**
 * Says a registry key that cannot be read (a key of the wrong Redis type; a refusal of the moment
 * such as LOADING says nothing of the key, and fails the read instead) once when it turns so, not
 * at every read: a watcher reads every few seconds, and a line at each
 * read would bury everything else in the log. Said again only after it has read well in between:
 * one line per episode. Holds which keys are unreadable now; no I/O (the caller says how to say).
 */
export class UnreadableEpisodes {
  private readonly unreadable = new Set<string>();

  constructor(private readonly say: (key: string, reason: string) => void) {}

  /** `key` could not be read, for `reason`: said unless it could not be read the last time either. */
  failed(key: string, reason: string): void {
    if (this.unreadable.has(key)) return;
    this.unreadable.add(key);
    this.say(key, reason);
  }

  /** `key` was read: its episode, if one was under way, is over. */
  read(key: string): void {
    this.unreadable.delete(key);
  }
}
