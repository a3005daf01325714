/**
 * Admission to each region's upstream pool. At most `slots` requests are dispatched to a region
 * at once — the pool's connection count, so undici never queues a request where no deadline,
 * failover or client disconnect can reach it. The rest wait here, in a FIFO bounded in length
 * and in time (Envoy's `max_pending_requests` and queue timeout are the model):
 *  - a waiter whose region goes down, is drained or is ejected is turned away at the next sweep,
 *    so its exchange can move to the next candidate (not one routed in panic, to regions down already);
 *  - a waiter that has waited past its budget (or its request's deadline) is turned away too;
 *  - a waiter whose client left is cancelled and never dispatched.
 * Streaming uploads (bodies too large to buffer) may hold only `uploadSlots` of a region's slots,
 * so slow uploaders cannot starve everyone else.
 * No timers and no I/O here: the owner calls `sweep(now)` on its own clock.
 */
import type { RegionId } from '../core/types.js';

export type TurnAway = 'queue_timeout' | 'region_unavailable';

/** What waits in a gate: an exchange, in practice. The gate owns the `gate*` fields. */
export interface GateWaiter {
  /** A streaming upload: counts against the region's upload share. */
  readonly upload: boolean;
  /**
   * Routed in panic (no region healthy): sent knowingly to regions that are down, so not turned
   * away for it (it only went on to the next region that is down too); its deadline still holds.
   */
  readonly panic?: boolean;
  /** Epoch ms after which the waiter is turned away with `queue_timeout`. */
  gateDeadline: number;
  /** True while the waiter sits in a queue (false once admitted, turned away or cancelled). */
  gateQueued: boolean;
  /** It got a slot: dispatch now. The slot is released with `leave`. */
  admitted(): void;
  /** It will not get a slot in this region. */
  turnedAway(reason: TurnAway): void;
}

export interface RegionGateOptions {
  readonly regions: readonly RegionId[];
  /** Requests dispatched to one region at once (default 128, the pool's connections). */
  readonly slots: (region: RegionId) => number;
  /** Fraction of a region's slots streaming uploads may hold (default 0.25, at least 1 slot). */
  readonly uploadShare?: number;
  /** Waiters per region; more are refused at once (default 1,024). */
  readonly maxQueue?: number;
}

class Queue {
  private items: GateWaiter[] = [];
  private head = 0;
  /** Live waiters (cancelled ones may still sit in `items` until skipped). */
  size = 0;

  push(w: GateWaiter): void {
    w.gateQueued = true;
    this.items.push(w);
    this.size++;
  }

  /** The oldest live waiter, removed; undefined when none. */
  shift(): GateWaiter | undefined {
    while (this.head < this.items.length) {
      const w = this.items[this.head]!;
      this.items[this.head++] = undefined as unknown as GateWaiter;
      if (w.gateQueued) {
        w.gateQueued = false;
        this.size--;
        this.compact();
        return w;
      }
    }
    this.compact();
    return undefined;
  }

  cancel(w: GateWaiter): void {
    if (!w.gateQueued) return;
    w.gateQueued = false;
    this.size--;
    // Cancelled waiters hold their exchanges (and buffered bodies): let them go once none is live.
    if (this.size === 0) {
      this.items = [];
      this.head = 0;
    }
  }

  /** Removes and returns live waiters matching `drop`, keeping the others in order. */
  removeWhere(drop: (w: GateWaiter) => boolean, into: GateWaiter[]): void {
    if (this.size === 0) {
      this.items = [];
      this.head = 0;
      return;
    }
    const kept: GateWaiter[] = [];
    for (let i = this.head; i < this.items.length; i++) {
      const w = this.items[i]!;
      if (!w.gateQueued) continue;
      if (drop(w)) {
        w.gateQueued = false;
        this.size--;
        into.push(w);
      } else {
        kept.push(w);
      }
    }
    this.items = kept;
    this.head = 0;
  }

  private compact(): void {
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}

class Gate {
  active = 0;
  uploadsActive = 0;
  readonly waiting = new Queue();
  readonly uploadsWaiting = new Queue();
  constructor(
    readonly slots: number,
    readonly uploadSlots: number,
  ) {}

  get queued(): number {
    return this.waiting.size + this.uploadsWaiting.size;
  }
}

export type EnterResult = 'admitted' | 'queued' | 'refused';

const notPanic = (w: GateWaiter): boolean => w.panic !== true;

export class RegionGates {
  private readonly gates = new Map<RegionId, Gate>();
  private readonly maxQueue: number;

  constructor(options: RegionGateOptions) {
    this.maxQueue = options.maxQueue ?? 1_024;
    const share = options.uploadShare ?? 0.25;
    for (const region of options.regions) {
      const slots = Math.max(1, options.slots(region));
      this.gates.set(region, new Gate(slots, Math.max(1, Math.floor(slots * share))));
    }
  }

  /** Takes a slot, or a place in the queue, or neither (queue full). Never calls the waiter back synchronously. */
  enter(region: RegionId, waiter: GateWaiter): EnterResult {
    const gate = this.gates.get(region);
    if (gate === undefined) return 'refused';
    const queue = waiter.upload ? gate.uploadsWaiting : gate.waiting;
    // FIFO: nobody overtakes a waiter of the same kind.
    if (queue.size === 0 && this.hasRoom(gate, waiter.upload)) {
      this.take(gate, waiter.upload);
      return 'admitted';
    }
    if (gate.queued >= this.maxQueue) return 'refused';
    queue.push(waiter);
    return 'queued';
  }

  /**
   * Takes a slot only if one is free and nobody waits for it: for a speculative extra attempt (a
   * hedge), which must neither queue nor overtake a request that is waiting. Released with `leave`.
   */
  tryTake(region: RegionId): boolean {
    const gate = this.gates.get(region);
    if (gate === undefined || gate.queued > 0 || !this.hasRoom(gate, false)) return false;
    this.take(gate, false);
    return true;
  }

  /** Gives back a slot taken by `enter` or `admitted`, and admits the next waiters. */
  leave(region: RegionId, upload: boolean): void {
    const gate = this.gates.get(region);
    if (gate === undefined) return;
    gate.active--;
    if (upload) gate.uploadsActive--;
    this.pump(gate);
  }

  /** The waiter's client left: it must never be dispatched. */
  cancel(region: RegionId, waiter: GateWaiter): void {
    const gate = this.gates.get(region);
    if (gate === undefined) return;
    (waiter.upload ? gate.uploadsWaiting : gate.waiting).cancel(waiter);
  }

  /**
   * Turns away waiters whose region may no longer be used and those past their deadline.
   * Callbacks run after the queues are consistent, so a turned-away waiter may enter another region.
   */
  sweep(nowMs: number, usable: (region: RegionId) => boolean): void {
    const unusable: GateWaiter[] = [];
    const late: GateWaiter[] = [];
    for (const [region, gate] of this.gates) {
      if (gate.queued === 0) continue;
      if (!usable(region)) {
        gate.waiting.removeWhere(notPanic, unusable);
        gate.uploadsWaiting.removeWhere(notPanic, unusable);
      }
      const expired = (w: GateWaiter) => w.gateDeadline <= nowMs;
      gate.waiting.removeWhere(expired, late);
      gate.uploadsWaiting.removeWhere(expired, late);
    }
    for (const w of unusable) w.turnedAway('region_unavailable');
    for (const w of late) w.turnedAway('queue_timeout');
  }

  /** Dispatched plus queued requests for a region: what this router has outstanding there. */
  outstanding(region: RegionId): number {
    const gate = this.gates.get(region);
    return gate === undefined ? 0 : gate.active + gate.queued;
  }

  stats(region: RegionId): { active: number; queued: number; slots: number; uploadsActive: number } {
    const gate = this.gates.get(region);
    return gate === undefined
      ? { active: 0, queued: 0, slots: 0, uploadsActive: 0 }
      : { active: gate.active, queued: gate.queued, slots: gate.slots, uploadsActive: gate.uploadsActive };
  }

  private hasRoom(gate: Gate, upload: boolean): boolean {
    return gate.active < gate.slots && (!upload || gate.uploadsActive < gate.uploadSlots);
  }

  private take(gate: Gate, upload: boolean): void {
    gate.active++;
    if (upload) gate.uploadsActive++;
  }

  private pump(gate: Gate): void {
    const admitted: GateWaiter[] = [];
    while (gate.active < gate.slots) {
      let next = gate.waiting.shift();
      let upload = false;
      if (next === undefined && gate.uploadsActive < gate.uploadSlots) {
        next = gate.uploadsWaiting.shift();
        upload = true;
      }
      if (next === undefined) break;
      this.take(gate, upload);
      admitted.push(next);
    }
    for (const w of admitted) w.admitted();
  }
}
