/**
 * One clock for every live exchange: a single interval looks at each of them (slow bodies,
 * clients that stopped reading) and sweeps the region gates (queues past their budget, regions
 * that became unusable). One timer for the process instead of one or more per request, which is
 * cheaper on the hot path and bounds the precision of those limits to `intervalMs`.
 *
 * A sweep that runs late does not judge at once. Its limits mostly read "nothing happened since T"
 * (no body byte, no drain, no answer, no free slot), and after a stall of the event loop (a long
 * collection, a starved CPU, a long synchronous task) the timer fires before Node has read what
 * arrived meanwhile: timers run before the loop's poll phase. So a late tick only schedules the
 * sweep for after the next poll phase (one setImmediate), and judges then. An upload that kept
 * sending through a 1.2 s stall was cut as idle with a 500 ms --body-idle-timeout, and a region
 * whose answer waited in the socket would have been blamed for the deadline. Only a late tick
 * defers: a punctual one costs a subtraction, and no exchange gets a timer of its own.
 */
import { monotonicNow } from '../core/monotonic-clock.js';
import type { RegionId } from '../core/types.js';
import type { RegionGates } from './region-gate.js';

/** What the watchdog needs of an exchange. */
export interface Watched {
  check(nowMs: number): void;
  /** The drain's deadline: end now, and say so (exchange.ts). */
  shutdown?(): void;
  /** Where the watched item sits in its LiveList (-1 when in none); the list's, not the item's. */
  watchSlot?: number;
}

/**
 * The exchanges in progress: an array with each item's index kept on the item, so adding and
 * removing are O(1) and allocate nothing.
 *
 * Not a Set, on purpose: a Set that gains and loses an entry per request is rebuilt every few
 * dozen requests, and V8 links each retired table to its successor (for live iterators). A
 * retired table that has reached the old generation then keeps its young successor, and every
 * exchange listed in it, alive through each scavenge until the next full collection: measured at
 * about 6 KB of finished requests promoted per request, which made scavenges 3-4x slower and
 * the router's whole request graph old-generation garbage.
 */
export class LiveList<T extends Watched> {
  private readonly items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  add(item: T): void {
    if (item.watchSlot !== undefined && item.watchSlot >= 0) return;
    item.watchSlot = this.items.length;
    this.items.push(item);
  }

  delete(item: T): void {
    const slot = item.watchSlot;
    if (slot === undefined || slot < 0 || this.items[slot] !== item) return;
    const last = this.items.pop()!;
    if (last !== item) {
      this.items[slot] = last;
      last.watchSlot = slot;
    }
    item.watchSlot = -1;
  }

  /**
   * Calls `visit` for each item. Backwards, so an item that removes itself (or any other) during
   * its visit moves only an already-visited item into the gap; that one may be visited twice,
   * which a check tolerates.
   */
  forEach(visit: (item: T) => void): void {
    for (let i = this.items.length - 1; i >= 0; i--) {
      const item = this.items[i];
      if (item !== undefined) visit(item);
    }
  }
}

export interface ExchangeWatchdogOptions {
  readonly gates: RegionGates;
  /** May requests still be dispatched to this region (up, not drained, not ejected)? `nowMs`: Date.now() (an ejection's end is another router's wall clock). */
  readonly usable: (region: RegionId, nowMs: number) => boolean;
  /** Default 250 ms. */
  readonly intervalMs?: number;
}

/** A tick later than this fraction of the interval means the loop was stalled (timers are otherwise punctual to a few ms). */
const LATE_FRACTION = 0.25;
/**
 * Loop turns a deferred sweep waits at most while each of them stalls again: a poll callback that
 * blocks after some sockets were read leaves what arrived meanwhile unread once more. Bounded, so
 * a loop that stalls on every turn still has its limits kept.
 */
const MAX_DEFERRED_TURNS = 4;

/** Pure: did a timer (or a deferred turn) run late enough that bytes may be waiting unread? */
export function ranLate(dueAtMs: number, nowMs: number, intervalMs: number): boolean {
  return nowMs - dueAtMs > intervalMs * LATE_FRACTION;
}

export class ExchangeWatchdog {
  /** Exchanges add themselves when they start and remove themselves when they finish. */
  readonly live = new LiveList<Watched>();
  private timer: NodeJS.Timeout | undefined;
  private readonly intervalMs: number;
  /** When the interval's next tick is due (monotonicNow()). */
  private tickDueAt = 0;
  /** A late tick's sweep, waiting for the loop to read what arrived during the stall. */
  private deferred: NodeJS.Immediate | undefined;
  private deferredAt = 0;
  private deferredTurns = 0;
  /** Made once: deferring allocates no closure. */
  private readonly sweepAfterReads = (): void => this.deferredSweep();

  constructor(private readonly options: ExchangeWatchdogOptions) {
    this.intervalMs = options.intervalMs ?? 250;
  }

  start(): void {
    if (this.timer !== undefined) return;
    this.tickDueAt = monotonicNow() + this.intervalMs;
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    clearImmediate(this.deferred);
    this.deferred = undefined;
  }

  /** The interval's tick: sweep now when on time, after the pending reads when late. */
  private tick(): void {
    const nowMs = monotonicNow();
    const late = ranLate(this.tickDueAt, nowMs, this.intervalMs);
    // Node re-arms an interval from the moment its callback runs.
    this.tickDueAt = nowMs + this.intervalMs;
    if (this.deferred !== undefined) return; // the deferred sweep will judge, after the reads
    if (!late) return this.sweep(nowMs);
    this.deferredTurns = 0;
    this.defer(nowMs);
  }

  private defer(nowMs: number): void {
    this.deferredAt = nowMs;
    this.deferred = setImmediate(this.sweepAfterReads);
    this.deferred.unref();
  }

  private deferredSweep(): void {
    this.deferred = undefined;
    const nowMs = monotonicNow();
    if (ranLate(this.deferredAt, nowMs, this.intervalMs) && ++this.deferredTurns < MAX_DEFERRED_TURNS) return this.defer(nowMs);
    this.sweep(nowMs);
  }

  /** The drain's deadline: every exchange still in progress ends now (one that throws is reported, and the rest still end). */
  shutdownAll(onFault: (err: unknown) => void): void {
    this.live.forEach((exchange) => {
      try {
        exchange.shutdown?.();
      } catch (err) {
        onFault(err);
      }
    });
  }

  /** `nowMs`: monotonicNow(), the request path's clock; a region's usability is judged on the wall clock (its ejection's end is). */
  sweep(nowMs: number): void {
    // Exchanges that end during their check leave the list at once (see LiveList.forEach).
    this.live.forEach((exchange) => exchange.check(nowMs));
    const wallMs = Date.now();
    this.options.gates.sweep(nowMs, (region) => this.options.usable(region, wallMs));
  }
}
