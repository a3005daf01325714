/**
 * HTTP/2 streams opened and reset by the client, per address, over all its connections of the
 * last window. The rapid-reset guard judges a connection once it has opened enough streams
 * (reset-flood-guard.ts); a client that resets 99 streams and opens a new connection was never
 * judged, bounded only by the connect rate (100 connections a second: about 10,000 requests a
 * second started at the regions and thrown away, from one address). Each connection also counts
 * into its address's tally, which is judged by the same rule.
 *
 * A connection takes its address's tally when it opens and counts into that object directly (no
 * lookup per stream). A window starts when the first connection of an address asks for a tally
 * and ends `windowMs` later; a connection opened after that gets a new one. Past `maxAddresses`
 * the oldest entry goes, so many addresses cost bounded memory.
 */
export interface AddressResets {
  streams: number;
  resets: number;
  readonly sinceMs: number;
}

const SWEEP_INTERVAL_MS = 5_000;

export class ResetTallies {
  private readonly tallies = new Map<string, AddressResets>();
  private lastSweepMs = 0;

  constructor(
    private readonly windowMs = 10_000,
    private readonly maxAddresses = 100_000,
  ) {}

  /** The tally a connection from `address` opened at `nowMs` counts into. */
  of(address: string, nowMs: number): AddressResets {
    if (nowMs - this.lastSweepMs >= SWEEP_INTERVAL_MS || nowMs < this.lastSweepMs) this.sweep(nowMs);
    const current = this.tallies.get(address);
    if (current !== undefined && this.live(current, nowMs)) return current;
    if (current !== undefined) this.tallies.delete(address);
    else if (this.tallies.size >= this.maxAddresses) this.tallies.delete(this.tallies.keys().next().value!);
    const fresh: AddressResets = { streams: 0, resets: 0, sinceMs: nowMs };
    this.tallies.set(address, fresh);
    return fresh;
  }

  /** Addresses with a tally in its window. */
  get size(): number {
    return this.tallies.size;
  }

  private live(tally: AddressResets, nowMs: number): boolean {
    return nowMs - tally.sinceMs < this.windowMs && nowMs >= tally.sinceMs;
  }

  private sweep(nowMs: number): void {
    this.lastSweepMs = nowMs;
    for (const [address, tally] of this.tallies) if (!this.live(tally, nowMs)) this.tallies.delete(address);
  }
}
