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

interface Penalty {
  readonly sinceMs: number;
  readonly untilMs: number;
}

export class PenaltyBox {
  /** By address; the Map's order is the eviction order (least recently penalised first). */
  private readonly penalties = new Map<string, Penalty>();

  constructor(
    readonly penaltyMs: number,
    private readonly maxAddresses = 100_000,
  ) {}

  /**
   * Refuses `address` from `nowMs` for the base penalty, or for twice its last one when it offends
   * again soon after that ended (0 ms base: never); returns the end time, or null.
   */
  add(address: string, nowMs: number): number | null {
    if (this.penaltyMs <= 0) return null;
    const last = this.penalties.get(address);
    if (last !== undefined && last.untilMs > nowMs) {
      this.put(address, last); // the same offence: kept as it is, evicted last
      return last.untilMs;
    }
    const lengthMs = last !== undefined && this.remembered(last, nowMs) ? Math.min(MAX_ESCALATION * this.penaltyMs, Math.max(this.penaltyMs, 2 * lengthOf(last))) : this.penaltyMs;
    this.put(address, { sinceMs: nowMs, untilMs: nowMs + lengthMs });
    return nowMs + lengthMs;
  }

  /**
   * Refuses `address` until `untilMs` (a penalty another process gave at about `nowMs`), or longer
   * if it already is. Its length counts as this box's own would toward a repeat offence.
   */
  addUntil(address: string, untilMs: number, nowMs: number): void {
    const last = this.penalties.get(address);
    const held = last !== undefined && last.untilMs > nowMs;
    this.put(address, held ? { sinceMs: last.sinceMs, untilMs: Math.max(last.untilMs, untilMs) } : { sinceMs: Math.min(nowMs, untilMs), untilMs });
  }

  /** The addresses still refused at `nowMs`, with their end times. */
  *live(nowMs: number): IterableIterator<[address: string, untilMs: number]> {
    for (const [address, penalty] of this.penalties) if (penalty.untilMs > nowMs) yield [address, penalty.untilMs];
  }

  holds(address: string, nowMs: number): boolean {
    if (this.penalties.size === 0) return false;
    const penalty = this.penalties.get(address);
    if (penalty === undefined) return false;
    if (penalty.untilMs > nowMs) return true;
    if (!this.remembered(penalty, nowMs)) this.penalties.delete(address);
    return false;
  }

  /** Addresses held or remembered. */
  get size(): number {
    return this.penalties.size;
  }

  private remembered(penalty: Penalty, nowMs: number): boolean {
    return nowMs < penalty.untilMs + REMEMBERED_FOR * lengthOf(penalty);
  }

  private put(address: string, penalty: Penalty): void {
    this.penalties.delete(address); // re-inserted at the back of the eviction order
    this.penalties.set(address, penalty);
    if (this.penalties.size > this.maxAddresses) this.penalties.delete(this.penalties.keys().next().value!);
  }
}

const lengthOf = (penalty: Penalty): number => penalty.untilMs - penalty.sinceMs;
