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
  readonly live = new Set<Watched>();
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

  sweep(nowMs: number): void {
    // Deleting the current entry while iterating a Set is safe: exchanges that end leave at once.
    for (const exchange of this.live) exchange.check(nowMs);
    this.options.gates.sweep(nowMs, (region) => this.options.usable(region, nowMs));
  }
}
