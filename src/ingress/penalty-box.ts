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

  /** Refuses `address` until `nowMs + penaltyMs` (0 ms: never). */
  add(address: string, nowMs: number): void {
    if (this.penaltyMs <= 0) return;
    this.until.delete(address); // re-insert: the Map's order is the eviction order
    this.until.set(address, nowMs + this.penaltyMs);
    if (this.until.size > this.maxAddresses) this.until.delete(this.until.keys().next().value!);
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
