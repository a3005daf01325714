/**
 * Addresses that attacked recently, refused at connect for a while (a connection closed as an
 * HTTP/2 reset flood puts its address here). Cheaper than letting the same client open connection
 * after connection, each costing a TLS handshake and a burst of request work before the guard
 * trips again. Bounded: past `maxAddresses` the oldest entry goes.
 */
export class PenaltyBox {
  private readonly until = new Map<string, number>();

  constructor(
    readonly penaltyMs: number,
    private readonly maxAddresses = 100_000,
  ) {}

  /** Refuses `address` until `nowMs + penaltyMs` (0 ms: never); returns that time, or null. */
  add(address: string, nowMs: number): number | null {
    if (this.penaltyMs <= 0) return null;
    const untilMs = nowMs + this.penaltyMs;
    this.addUntil(address, untilMs);
    return untilMs;
  }

  /** Refuses `address` until `untilMs` (a penalty another process gave), or longer if it already is. */
  addUntil(address: string, untilMs: number): void {
    const held = this.until.get(address);
    this.until.delete(address); // re-insert: the Map's order is the eviction order
    this.until.set(address, held === undefined ? untilMs : Math.max(held, untilMs));
    if (this.until.size > this.maxAddresses) this.until.delete(this.until.keys().next().value!);
  }

  /** The addresses still refused at `nowMs`, with their end times. */
  *live(nowMs: number): IterableIterator<[address: string, untilMs: number]> {
    for (const entry of this.until) if (entry[1] > nowMs) yield entry;
  }

  holds(address: string, nowMs: number): boolean {
    if (this.until.size === 0) return false;
    const until = this.until.get(address);
    if (until === undefined) return false;
    if (until > nowMs) return true;
    this.until.delete(address);
    return false;
  }

  get size(): number {
    return this.until.size;
  }
}
