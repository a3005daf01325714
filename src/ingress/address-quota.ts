/**
 * A per-address count with a ceiling: open connections per peer, or requests in progress per
 * client. One address cannot take more than its share, however many connections it opens.
 * Entries exist only while their count is above zero, so the map is bounded by what is live.
 */
export class AddressQuota {
  private readonly counts = new Map<string, number>();

  /** `limit` 0 = no limit (nothing is counted). */
  constructor(readonly limit: number) {}

  /** Counts one more for `address`, unless it is at its limit. */
  tryTake(address: string): boolean {
    if (this.limit === 0) return true;
    const held = this.counts.get(address) ?? 0;
    if (held >= this.limit) return false;
    this.counts.set(address, held + 1);
    return true;
  }

  /** Gives back one taken by `tryTake`. */
  release(address: string): void {
    if (this.limit === 0) return;
    const held = this.counts.get(address);
    if (held === undefined) return;
    if (held <= 1) this.counts.delete(address);
    else this.counts.set(address, held - 1);
  }

  held(address: string): number {
    return this.counts.get(address) ?? 0;
  }

  /** Addresses holding at least one. */
  get addresses(): number {
    return this.counts.size;
  }
}
