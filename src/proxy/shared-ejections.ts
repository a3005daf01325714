/**
 * Passive outlier detection's verdicts, shared with every router: an ejection this router decides
 * holds in its own routing at once and is written to the registry (with an event), so the others
 * stop sending there too; and a region that reports healthy again after being down is let back
 * at once, here and in the registry, rather than when its ejection runs out. The registry is
 * reached through the narrow port below, which the HealthRegistry satisfies (proxy/ does not
 * import registry/).
 */
import type { RegionId } from '../core/types.js';
import type { Ejection, OutlierDetector } from './outlier-detector.js';
import { isTlsFailure } from './upstream-error.js';

export interface EjectionStore {
  setEjection(region: RegionId, ejection: { until: number; count: number; cause: string } | null): Promise<void>;
  appendEvent(event: { at: number; region: RegionId; kind: 'ejected'; cause: string }): Promise<boolean>;
}

export interface SharedEjectionsOptions {
  readonly outliers: OutlierDetector;
  readonly store: EjectionStore;
  /**
   * Makes the verdict (an ejection, or null: lifted) this router's own routing at once, whatever
   * the store does with it: routing reads the registry's snapshot, and a store that is away (or
   * slow to echo the write back) left the region ejected here in name only.
   */
  readonly applyHere: (region: RegionId, ejection: { until: number; count: number; cause: string } | null) => void;
  /** Whether the shared snapshot still holds an ejection of `region` (another router's, say). */
  readonly ejectedInSnapshot: (region: RegionId) => boolean;
  readonly onEjected?: (ejection: Ejection) => void;
  readonly onReinstated?: (region: RegionId) => void;
}

export class SharedEjections {
  constructor(private readonly options: SharedEjectionsOptions) {}

  /** This router ejected a region: apply it here, and tell everyone (not for a failed TLS handshake, below). Store failures are ignored (the verdict still holds here). */
  readonly ejected = (ejection: Ejection): void => {
    this.options.onEjected?.(ejection);
    this.options.applyHere(ejection.region, { until: ejection.until, count: ejection.count, cause: ejection.cause });
    const { store } = this.options;
    // A handshake this router failed says as much about its own trust (its --orchestrator-ca, its
    // client certificate, its clock) as about the region: written, one misconfigured router ejected
    // 3 of 5 regions for every router. Held here only; a region whose certificate is really bad is
    // found so by every router on its own, within a few requests. (The event still says it happened.)
    if (ejection.last === undefined || !isTlsFailure(ejection.last)) {
      void store.setEjection(ejection.region, { until: ejection.until, count: ejection.count, cause: ejection.cause }).catch(() => undefined);
    }
    void store.appendEvent({ at: Date.now(), region: ejection.region, kind: 'ejected', cause: ejection.cause }).catch(() => undefined);
  };

  /** The region reports healthy again after being down: lift its ejection, here and for everyone. */
  reportedHealthy(region: RegionId): void {
    const wasEjected = this.options.outliers.reinstate(region);
    if (!wasEjected && !this.options.ejectedInSnapshot(region)) return;
    this.options.onReinstated?.(region);
    this.options.applyHere(region, null);
    void this.options.store.setEjection(region, null).catch(() => undefined);
  }
}
