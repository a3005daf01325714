/**
 * A worker whose event loop is stuck (an endless loop: a bug no fault handler sees) never exits,
 * so it was never replaced: it held the connections the cluster handed it, every /metrics waited
 * for it, and every admin write answered "pending", for as long as the router ran. The primary
 * asks each serving worker for a heartbeat; one that answers nothing for the hang threshold (far
 * beyond any pause of a working router: hang-threshold.ts) is judged hung, and so is one that has
 * not begun to serve by its start deadline.
 */
import type { MessageLink } from './message-link.js';
import { HEARTBEAT_EVERY_MS } from './hang-threshold.js';

const HEARTBEAT = 'worker.heartbeat';

/** A tick later than this many periods after the one before was held up (see watchHeartbeat). */
const LATE_TICK = 1.5;

/** A worker's side: answers the primary's heartbeats (register as soon as the link exists). */
export function answerHeartbeats(link: MessageLink): void {
  link.handle(HEARTBEAT, () => undefined);
}

/** What a hung worker's judgement was based on. */
export interface Silence {
  /** The silence counted while the primary was looking (over the threshold). */
  readonly silentMs: number;
  /** The time since its last answer, or its start: far over silentMs when the primary itself was held meanwhile. */
  readonly heardMsAgo: number;
  /**
   * Whether the silence counts from an answer, or, when it never answered, from when it was first
   * seen serving: started (announced) or only listening; `fork`: it never began to serve, and the
   * time counted is its start's, past the start deadline.
   */
  readonly countedFrom: 'answer' | 'start' | 'listening' | 'fork';
}

export interface HeartbeatWatch {
  readonly hungAfterMs: number;
  /** Whether the worker serves (it has listened): before that it is not asked, and judged only by `startDeadlineMs`. */
  readonly serving: () => boolean;
  /** How long it may take to begin serving, counted as its silence is (a held primary's stall is not its). */
  readonly startDeadlineMs: number;
  /** Whether the worker has announced itself: its start is over. */
  readonly started: () => boolean;
  /** Called once, when the worker is judged hung. */
  readonly onHung: (silence: Silence) => void;
  /** How often it is asked (tests shorten it). */
  readonly everyMs?: number;
}

/**
 * Calls `onHung` once when `link`'s worker, once it serves, answers nothing for `hungAfterMs`, or
 * has not begun to serve within `startDeadlineMs`; returns a function that stops watching.
 */
export function watchHeartbeat(link: MessageLink, watch: HeartbeatWatch): () => void {
  const { hungAfterMs, serving, started, startDeadlineMs, onHung, everyMs = HEARTBEAT_EVERY_MS } = watch;
  // Counted from the first answer once it serves, or from the moment it serves (it has listened:
  // the cluster hands it connections from then), whichever comes first. What may block a starting
  // worker's event loop for seconds (reading certificates) comes before it listens, and the
  // threshold is far beyond it. Counted from a first answer only, a worker too busy to answer during
  // its start and stuck for good right after it (a request that loops, taken the moment it was
  // ready) was never judged; counted from its announce, one stuck between listening and announcing
  // took connections and held every admin write "pending", never replaced.
  //
  // The silence is the primary's to measure, and only while it was looking: a tick more than half
  // a period late (the primary was held: its core taken by others, a paused VM) counts one period,
  // not the time it was held. On its return a held primary fires its timers before it reads the
  // answers that came meanwhile, and judged healthy workers hung by its own stall; a wall clock
  // stepped forward did the same to every worker at once (and one stepped back left a stuck
  // worker unjudged for as long). Monotonic time.
  let counted: { silentMs: number; heardAt: number; from: Silence['countedFrom'] } | undefined;
  let countedTo = performance.now();
  const watchedFrom = countedTo;
  let startingMs = 0;
  // At most one heartbeat waits, for up to the threshold: any answer, however late, proves the
  // worker's loop runs. Expired at the period, as each was, a late answer was thrown away: a worker
  // whose loop lagged more than a period (a starved container, long GC pauses) answered every
  // heartbeat and was killed as hung all the same, every such worker together under a load that
  // hits them alike.
  let waiting = false;
  const timer = setInterval(() => {
    const now = performance.now();
    const elapsed = now - countedTo;
    const looked = elapsed > LATE_TICK * everyMs ? everyMs : elapsed;
    countedTo = now;
    if (!serving()) {
      startingMs += looked;
      if (startingMs <= startDeadlineMs) return;
      clearInterval(timer);
      return onHung({ silentMs: Math.round(startingMs), heardMsAgo: Math.round(now - watchedFrom), countedFrom: 'fork' });
    }
    if (counted === undefined) counted = { silentMs: 0, heardAt: now, from: started() ? 'start' : 'listening' };
    else counted.silentMs += looked;
    if (counted.silentMs > hungAfterMs) {
      clearInterval(timer);
      return onHung({ silentMs: Math.round(counted.silentMs), heardMsAgo: Math.round(now - counted.heardAt), countedFrom: counted.from });
    }
    if (waiting) return;
    waiting = true;
    link.call(HEARTBEAT, [], hungAfterMs).then(
      () => {
        waiting = false;
        countedTo = performance.now();
        counted = { silentMs: 0, heardAt: countedTo, from: 'answer' };
      },
      () => {
        waiting = false;
      },
    );
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
