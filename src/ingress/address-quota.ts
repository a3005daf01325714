/**
 * A per-address count with a ceiling: open connections per peer, or requests in progress per
 * client. One address (or what its key groups it with: an IPv6 /64) cannot take more than its
 * share, however many connections it opens. Entries exist only while their count is above zero,
 * so the map is bounded by what is live.
 */
export class AddressQuota {
  private readonly counts = new Map<string, number>();

  /**
   * `limit` 0 = no limit (nothing is counted). `keyOf` maps an address to the key it is counted
   * under (limitKeyOf: an IPv6 client by its /64); by default each address is its own key.
   */
  constructor(
    readonly limit: number,
    private readonly keyOf: (address: string) => string = (address) => address,
  ) {}

  /** Counts one more for `address`, unless it is at its limit. */
  tryTake(address: string): boolean {
    if (this.limit === 0) return true;
    const key = this.keyOf(address);
    const held = this.counts.get(key) ?? 0;
    if (held >= this.limit) return false;
    this.counts.set(key, held + 1);
    return true;
  }

  /** Gives back one taken by `tryTake`. */
  release(address: string): void {
    if (this.limit === 0) return;
    const key = this.keyOf(address);
    const held = this.counts.get(key);
    if (held === undefined) return;
    if (held <= 1) this.counts.delete(key);
    else this.counts.set(key, held - 1);
  }

  held(address: string): number {
    return this.counts.get(this.keyOf(address)) ?? 0;
  }

  /** Keys holding at least one. */
  get addresses(): number {
    return this.counts.size;
  }
}
