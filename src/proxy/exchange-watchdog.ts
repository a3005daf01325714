/**
 * One clock for every live exchange: a single interval looks at each of them (slow bodies,
 * clients that stopped reading) and sweeps the region gates (queues past their budget, regions
 * that became unusable). One timer for the process instead of one or more per request, which is
 * cheaper on the hot path and bounds the precision of those limits to `intervalMs`.
 */
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
  /** May requests still be dispatched to this region (up, not drained, not ejected)? */
  readonly usable: (region: RegionId, nowMs: number) => boolean;
  /** Default 250 ms. */
  readonly intervalMs?: number;
}

export class ExchangeWatchdog {
  /** Exchanges add themselves when they start and remove themselves when they finish. */
  readonly live = new LiveList<Watched>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: ExchangeWatchdogOptions) {}

  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => this.sweep(Date.now()), this.options.intervalMs ?? 250);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
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

  sweep(nowMs: number): void {
    // Exchanges that end during their check leave the list at once (see LiveList.forEach).
    this.live.forEach((exchange) => exchange.check(nowMs));
    this.options.gates.sweep(nowMs, (region) => this.options.usable(region, nowMs));
  }
}
