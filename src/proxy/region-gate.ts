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
 *
 * Tenants (organisations) share a region fairly: one tenant's requests may hold at most
 * `tenantShare` of its slots and of its queue places, and a freed slot goes to the tenants waiting
 * in turn (round robin), first come first served within each. One organisation whose function
 * hangs, or that sends a flood, then takes half a region (by default) rather than all of it, and
 * another's request waits behind none of its queue. A share of 1 is the plain FIFO of one pool.
 * No timers and no I/O here: the owner calls `sweep(now)` on its own clock.
 */
import type { RegionId } from '../core/types.js';

export type TurnAway = 'queue_timeout' | 'region_unavailable';

/** What waits in a gate: an exchange, in practice. The gate owns the `gate*` fields. */
export interface GateWaiter {
  /** Whose request it is (the organisation): the unit of fairness. */
  readonly tenant: string;
  /** A streaming upload: counts against the region's upload share. */
  readonly upload: boolean;
  /**
   * Routed in panic (no region healthy): sent knowingly to regions that are down, so not turned
   * away for it (it only went on to the next region that is down too); its deadline still holds.
   */
  readonly panic?: boolean;
  /** When (monotonicNow(), src/core/monotonic-clock.ts: not Date.now()) the waiter is turned away with `queue_timeout`. */
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
  /** Fraction of a region's slots, and of its queue, one tenant may hold (default 0.5, at least 1). */
  readonly tenantShare?: number;
}

/** A waiter's place in a queue. Dead once the waiter left it: admitted, turned away or cancelled. */
interface Place {
  readonly queue: Queue;
  readonly waiter: GateWaiter;
}

/**
 * The place each queued waiter holds now. `gateQueued` alone cannot tell a cancelled waiter's old
 * place (left in its queue until skipped) from a new one: a waiter cancelled and then queued again,
 * here or at another region, was admitted from its old place too, and the counts of both queues drifted.
 */
const places = new WeakMap<GateWaiter, Place>();

class Queue {
  private items: Place[] = [];
  private head = 0;
  /** Live waiters (cancelled ones may still sit in `items` until skipped). */
  size = 0;

  push(w: GateWaiter): void {
    const place: Place = { queue: this, waiter: w };
    places.set(w, place);
    w.gateQueued = true;
    this.items.push(place);
    this.size++;
  }

  /** The waiter waits in this queue (not elsewhere, nor only in an old place here). */
  holds(w: GateWaiter): boolean {
    return w.gateQueued && places.get(w)?.queue === this;
  }

  /** The oldest live waiter, removed; undefined when none. */
  shift(): GateWaiter | undefined {
    while (this.head < this.items.length) {
      const place = this.items[this.head]!;
      this.items[this.head++] = undefined as unknown as Place;
      if (live(place)) {
        this.leaves(place.waiter);
        this.compact();
        return place.waiter;
      }
    }
    this.compact();
    return undefined;
  }

  /** Takes the waiter out if it waits here; false otherwise. */
  cancel(w: GateWaiter): boolean {
    if (!this.holds(w)) return false;
    this.leaves(w);
    // Cancelled waiters hold their exchanges (and buffered bodies): let them go once none is live.
    if (this.size === 0) {
      this.items = [];
      this.head = 0;
    }
    return true;
  }

  /** Removes and returns live waiters matching `drop`, keeping the others in order. */
  removeWhere(drop: (w: GateWaiter) => boolean, into: GateWaiter[]): void {
    if (this.size === 0) {
      this.items = [];
      this.head = 0;
      return;
    }
    const kept: Place[] = [];
    for (let i = this.head; i < this.items.length; i++) {
      const place = this.items[i]!;
      if (!live(place)) continue;
      if (drop(place.waiter)) {
        this.leaves(place.waiter);
        into.push(place.waiter);
      } else {
        kept.push(place);
      }
    }
    this.items = kept;
    this.head = 0;
  }

  private leaves(w: GateWaiter): void {
    w.gateQueued = false;
    places.delete(w);
    this.size--;
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

const live = (place: Place): boolean => place.waiter.gateQueued && places.get(place.waiter) === place;

/** One tenant's part of a region: its slots in use and its waiters, each kind first come first served. */
class TenantPart {
  active = 0;
  readonly waiting = new Queue();
  readonly uploadsWaiting = new Queue();
  /** In the gate's round-robin ring (it has waiters, or had them when last looked at). */
  inRing = false;

  get queued(): number {
    return this.waiting.size + this.uploadsWaiting.size;
  }

  /** Where a waiter of this kind waits. */
  queueOf(upload: boolean): Queue {
    return upload ? this.uploadsWaiting : this.waiting;
  }
}

class Gate {
  active = 0;
  uploadsActive = 0;
  queued = 0;
  /**
   * Tenants with a slot or a waiter here. An entry left with neither is kept until the next sweep
   * (so a tenant whose requests come one at a time does not cost an allocation each), then dropped.
   */
  readonly tenants = new Map<string, TenantPart>();
  /** Tenants with waiters, in turn; `next` is whose turn it is. */
  ring: TenantPart[] = [];
  next = 0;
  constructor(
    readonly slots: number,
    readonly uploadSlots: number,
    readonly tenantSlots: number,
    readonly tenantQueue: number,
  ) {}

  part(tenant: string): TenantPart {
    let part = this.tenants.get(tenant);
    if (part === undefined) this.tenants.set(tenant, (part = new TenantPart()));
    return part;
  }
}

/** `refused`: the region's queue is full; `over-share`: the tenant's share of it is. */
export type EnterResult = 'admitted' | 'queued' | 'refused' | 'over-share';

const notPanic = (w: GateWaiter): boolean => w.panic !== true;

/** A share of `total`, rounded down, never below 1. */
const shareOf = (total: number, fraction: number): number => Math.max(1, Math.floor(total * fraction));

/** Dispatched plus queued requests at a gate; 0 where there is none. */
function outstandingIn(gate: Gate | undefined): number {
  return gate === undefined ? 0 : gate.active + gate.queued;
}

export class RegionGates {
  private readonly gates = new Map<RegionId, Gate>();
  /** The same gates in the order of `options.regions`, for outstandingAt. */
  private readonly inOrder: Gate[] = [];
  private readonly maxQueue: number;

  constructor(options: RegionGateOptions) {
    this.maxQueue = options.maxQueue ?? 1_024;
    const share = options.uploadShare ?? 0.25;
    const tenantShare = options.tenantShare ?? 0.5;
    for (const region of options.regions) {
      const slots = Math.max(1, options.slots(region));
      const gate = new Gate(slots, shareOf(slots, share), shareOf(slots, tenantShare), shareOf(this.maxQueue, tenantShare));
      this.gates.set(region, gate);
      this.inOrder.push(gate);
    }
  }

  /** Takes a slot, or a place in the queue, or neither (queue full). Never calls the waiter back synchronously. */
  enter(region: RegionId, waiter: GateWaiter): EnterResult {
    const gate = this.gates.get(region);
    if (gate === undefined) return 'refused';
    const part = gate.part(waiter.tenant);
    const queue = part.queueOf(waiter.upload);
    // FIFO within a tenant: nobody overtakes a waiter of its own tenant and kind. Another tenant's
    // waiters, while there is room, are waiting on their own share: they are not overtaken.
    if (queue.size === 0 && this.hasRoom(gate, part, waiter.upload)) {
      this.take(gate, part, waiter.upload);
      return 'admitted';
    }
    if (gate.queued >= this.maxQueue) return 'refused';
    if (part.queued >= gate.tenantQueue) return 'over-share';
    queue.push(waiter);
    gate.queued++;
    if (!part.inRing) {
      part.inRing = true;
      gate.ring.push(part);
    }
    return 'queued';
  }

  /**
   * Takes a slot only if one is free and nobody who could take it waits: for a speculative extra
   * attempt (a hedge), which must neither queue nor overtake a request that is waiting. Released
   * with `leave`. Other tenants' waiters do not stop it: while a slot is free, every tenant still
   * waiting waits on its own share (pump leaves none that could take it), not on this slot.
   */
  tryTake(region: RegionId, tenant: string): boolean {
    const gate = this.gates.get(region);
    if (gate === undefined) return false;
    const part = gate.part(tenant);
    if (part.queued > 0 || !this.hasRoom(gate, part, false)) return false;
    this.take(gate, part, false);
    return true;
  }

  /** Gives back a slot taken by `enter` or `admitted` (or `tryTake`), and admits the next waiters. */
  leave(region: RegionId, tenant: string, upload: boolean): void {
    const gate = this.gates.get(region);
    if (gate === undefined) return;
    gate.active--;
    if (upload) gate.uploadsActive--;
    const part = gate.tenants.get(tenant);
    if (part !== undefined) part.active--;
    if (gate.queued > 0) this.pump(gate);
  }

  /** The waiter's client left: it must never be dispatched. */
  cancel(region: RegionId, waiter: GateWaiter): void {
    const gate = this.gates.get(region);
    const part = gate?.tenants.get(waiter.tenant);
    if (gate === undefined || part === undefined) return;
    if (part.queueOf(waiter.upload).cancel(waiter)) gate.queued--;
  }

  /**
   * Turns away waiters whose region may no longer be used and those past their deadline, and
   * drops tenants with nothing left here. Callbacks run after the queues are consistent, so a
   * turned-away waiter may enter another region.
   */
  sweep(nowMs: number, usable: (region: RegionId) => boolean): void {
    const unusable: GateWaiter[] = [];
    const late: GateWaiter[] = [];
    const expired = (w: GateWaiter) => w.gateDeadline <= nowMs;
    for (const [region, gate] of this.gates) {
      const regionUsable = gate.queued === 0 || usable(region);
      for (const part of gate.tenants.values()) {
        if (part.queued === 0) continue;
        const before = part.queued;
        if (!regionUsable) {
          part.waiting.removeWhere(notPanic, unusable);
          part.uploadsWaiting.removeWhere(notPanic, unusable);
        }
        part.waiting.removeWhere(expired, late);
        part.uploadsWaiting.removeWhere(expired, late);
        gate.queued -= before - part.queued;
      }
      // Emptied here or cancelled since: out of the ring, once for all of them (once per tenant
      // emptied was quadratic in the tenants waiting: seconds for 20,000 at one sweep).
      if (gate.ring.length > 0) this.pruneRing(gate);
      for (const [tenant, part] of gate.tenants) {
        if (part.active === 0 && part.queued === 0 && !part.inRing) gate.tenants.delete(tenant);
      }
    }
    for (const w of unusable) w.turnedAway('region_unavailable');
    for (const w of late) w.turnedAway('queue_timeout');
  }

  /** Dispatched plus queued requests for a region: what this router has outstanding there. */
  outstanding(region: RegionId): number {
    return outstandingIn(this.gates.get(region));
  }

  /**
   * `outstanding` of the region at `index` in the list the gates were made for, without looking
   * it up by id (routing reads it for every region on every request); 0 past the list's end.
   */
  outstandingAt(index: number): number {
    return outstandingIn(this.inOrder[index]);
  }

  stats(region: RegionId): { active: number; queued: number; slots: number; uploadsActive: number; tenantSlots: number } {
    const gate = this.gates.get(region);
    return gate === undefined
      ? { active: 0, queued: 0, slots: 0, uploadsActive: 0, tenantSlots: 0 }
      : { active: gate.active, queued: gate.queued, slots: gate.slots, uploadsActive: gate.uploadsActive, tenantSlots: gate.tenantSlots };
  }

  /** One tenant's slots in use and waiters at a region. */
  tenantStats(region: RegionId, tenant: string): { active: number; queued: number } {
    const part = this.gates.get(region)?.tenants.get(tenant);
    return { active: part?.active ?? 0, queued: part?.queued ?? 0 };
  }

  private hasRoom(gate: Gate, part: TenantPart, upload: boolean): boolean {
    return gate.active < gate.slots && part.active < gate.tenantSlots && (!upload || gate.uploadsActive < gate.uploadSlots);
  }

  private take(gate: Gate, part: TenantPart, upload: boolean): void {
    gate.active++;
    part.active++;
    if (upload) gate.uploadsActive++;
  }

  /** Takes tenants with nothing waiting out of the ring, keeping the others' turns in order. */
  private pruneRing(gate: Gate): void {
    const turns = [...gate.ring.slice(gate.next), ...gate.ring.slice(0, gate.next)];
    gate.ring = turns.filter((part) => part.queued > 0 || (part.inRing = false));
    gate.next = 0;
  }

  /** Fills free slots from the tenants waiting, one waiter per tenant in turn. */
  private pump(gate: Gate): void {
    const admitted: GateWaiter[] = [];
    // Each pass over the ring admits at least one waiter or stops: every tenant left is at its
    // share (or has only uploads waiting, at the upload share), or the slots are full.
    let idleTurns = 0;
    // Tenants with nothing waiting (admitted or cancelled since) are passed as idle turns and taken
    // out of the ring once, at the end: a splice each was quadratic when many had been cancelled.
    let stale = false;
    while (gate.active < gate.slots && gate.ring.length > 0 && idleTurns < gate.ring.length) {
      if (gate.next >= gate.ring.length) gate.next = 0;
      const part = gate.ring[gate.next]!;
      if (part.queued === 0) {
        stale = true;
        gate.next++;
        idleTurns++;
        continue;
      }
      let next: GateWaiter | undefined;
      let upload = false;
      if (part.active < gate.tenantSlots) {
        next = part.waiting.shift();
        if (next === undefined && gate.uploadsActive < gate.uploadSlots) {
          next = part.uploadsWaiting.shift();
          upload = true;
        }
      }
      gate.next++;
      if (next === undefined) {
        idleTurns++;
        continue;
      }
      idleTurns = 0;
      gate.queued--;
      this.take(gate, part, upload);
      admitted.push(next);
    }
    if (stale) this.pruneRing(gate);
    for (const w of admitted) w.admitted();
  }
}
