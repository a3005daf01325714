/**
 * Addresses that attacked recently, refused at connect for a while (a connection closed as an
 * HTTP/2 reset flood puts its address here). Cheaper than letting the same client open connection
 * after connection, each costing a TLS handshake and a burst of request work before the guard
 * trips again. Bounded: past `maxAddresses` the oldest entry goes.
 *
 * A repeat offender waits longer. An address that floods again soon after its penalty ended (within
 * four times the penalty it served) gets twice that penalty, up to 16 times the base one, as
 * fail2ban's growing ban times do: an attacker that comes back the moment it is let in otherwise
 * costs the router one flood's work every penalty period for as long as it cares to (4–21 ms of the
 * event loop for a connection's first 100 streams reset, measured in bench/RESULTS.md). With the
 * default 10 s its waves come at 10 s, 30 s, 70 s, 150 s, then every 160 s, instead of every 10 s.
 * An address that stays away four times as long as its last penalty starts again from the base
 * one. A flood seen while the address is still held (its other connections, opened before the
 * penalty) is the same offence and changes nothing.
 */

/** The longest penalty, in base penalties. */
const MAX_ESCALATION = 16;
/** How long after a penalty ends the address is remembered, in lengths of that penalty. */
const REMEMBERED_FOR = 4;

/** One address's penalty: refused from `sinceMs` until `untilMs` (epoch ms). */
export interface Penalty {
  readonly sinceMs: number;
  readonly untilMs: number;
}

/** How many forgotten entries, oldest first, each new penalty drops. */
const FORGET_PER_PUT = 4;
/** How many of the oldest entries an overflow looks through for one no longer refusing anyone, before it drops the oldest. */
const EVICTION_LOOK = 64;

export class PenaltyBox {
  /** By address; the Map's order is the eviction order (least recently penalised first). */
  private readonly penalties = new Map<string, Penalty>();

  constructor(
    readonly penaltyMs: number,
    private readonly maxAddresses = 100_000,
  ) {}

  /**
   * Refuses `address` from `nowMs` for the base penalty, or for twice its last one when it offends
   * again soon after that ended (0 ms base: never); returns the penalty it serves, or null.
   */
  add(address: string, nowMs: number): Penalty | null {
    if (this.penaltyMs <= 0) return null;
    const last = this.penalties.get(address);
    if (last !== undefined && last.untilMs > nowMs) {
      this.put(address, last, nowMs); // the same offence: kept as it is, evicted last
      return last;
    }
    const lengthMs = last !== undefined && remembered(last, nowMs) ? Math.min(MAX_ESCALATION * this.penaltyMs, Math.max(this.penaltyMs, 2 * lengthOf(last))) : this.penaltyMs;
    const penalty = { sinceMs: nowMs, untilMs: nowMs + lengthMs };
    this.put(address, penalty, nowMs);
    return penalty;
  }

  /**
   * A penalty another process gave `address`, ending at `untilMs` after `lengthMs`: refused until
   * then (unless already until later), and remembered toward a repeat offence as if given here.
   */
  addUntil(address: string, untilMs: number, lengthMs: number, nowMs: number): void {
    const last = this.penalties.get(address);
    const penalty = last !== undefined && last.untilMs >= untilMs ? last : { sinceMs: untilMs - Math.max(0, lengthMs), untilMs };
    this.put(address, penalty, nowMs);
  }

  /**
   * Every address still refused or remembered at `nowMs`, with its penalty's end and length (what a
   * process that starts later needs to refuse them and to judge their next offence); forgets the rest.
   */
  *records(nowMs: number): IterableIterator<[address: string, untilMs: number, lengthMs: number]> {
    for (const [address, penalty] of this.penalties) {
      if (remembered(penalty, nowMs)) yield [address, penalty.untilMs, lengthOf(penalty)];
      else this.penalties.delete(address);
    }
  }

  holds(address: string, nowMs: number): boolean {
    if (this.penalties.size === 0) return false;
    const penalty = this.penalties.get(address);
    if (penalty === undefined) return false;
    if (penalty.untilMs > nowMs) return true;
    if (!remembered(penalty, nowMs)) this.penalties.delete(address);
    return false;
  }

  /** Addresses held or remembered. */
  get size(): number {
    return this.penalties.size;
  }

  private put(address: string, penalty: Penalty, nowMs: number): void {
    this.penalties.delete(address); // re-inserted at the back of the eviction order
    this.penalties.set(address, penalty);
    if (this.penalties.size > this.maxAddresses) this.evictOne(nowMs);
    this.forgetOldest(nowMs);
  }

  /**
   * Drops the oldest entries while they are forgotten, a few at a time: a box that is only added to
   * (the primary's relay, which never asks `holds`) would otherwise keep every address it ever saw
   * until its bound.
   */
  private forgetOldest(nowMs: number): void {
    let looked = 0;
    for (const [address, penalty] of this.penalties) {
      if (remembered(penalty, nowMs) || ++looked > FORGET_PER_PUT) return;
      this.penalties.delete(address);
    }
  }

  /**
   * Makes room: an address no longer refused goes before one that is (a remembered entry may be
   * newer than a running penalty of 160 s, and many addresses must not push a held one out), looked
   * for among the oldest few; failing that, the oldest.
   */
  private evictOne(nowMs: number): void {
    let looked = 0;
    let oldest: string | undefined;
    for (const [address, penalty] of this.penalties) {
      oldest ??= address;
      if (penalty.untilMs <= nowMs) return void this.penalties.delete(address);
      if (++looked === EVICTION_LOOK) break;
    }
    if (oldest !== undefined) this.penalties.delete(oldest);
  }
}

/** How long a penalty refuses its address. */
export const lengthOf = (penalty: Penalty): number => penalty.untilMs - penalty.sinceMs;
/** Whether the address still refused, or ended its penalty recently enough that another offence is a repeat. */
const remembered = (penalty: Penalty, nowMs: number): boolean => nowMs < penalty.untilMs + REMEMBERED_FOR * lengthOf(penalty);
