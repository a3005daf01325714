/**
 * Latency routing's own account of a function's containers in each region between the region's
 * reports. A report (a heartbeat, about once a second) says how many of the function's containers
 * were idle and busy at the moment it was taken; until the next one, this router adjusts it by
 * what it did itself:
 *
 *   idle now ≈ reported idle − sent + freed
 *
 *   sent   its requests sent since the report and still running (each holds a container the report
 *          counted idle), so a burst does not all count on one idle container;
 *   freed  its requests sent before the report that have ended since (each freed a container the
 *          report counted busy), at most as many as the report counted busy.
 *
 * Containers the report caught busy with other routers' requests are not this router's to count
 * free; but once the report is older than the region's median request time, those requests are
 * most likely over, and only this router's own running requests are known to hold containers.
 *
 * "Since the report" means since the moment the region took it (its timestamp), not since this
 * router received it: a report reaches the router a few milliseconds after it is taken, and a
 * request that ends in between would otherwise leave its container counted busy for a whole
 * second. (On this platform that sent London's steady traffic to Los Angeles 17 % of the time
 * while its one Frankfurt container stood idle.) So each send and end is also written to a small
 * ring of recent events, and when a new report is seen the counts are rebuilt from the events
 * after its timestamp. The ring is shared by every function and bounded: when more events than
 * it holds happened between a report and its arrival, the oldest are not counted, and the
 * estimate errs towards idle (a cold start where nearest routing would have made one too).
 * Timestamps are this router's clock against the region's: on one machine the same, across
 * machines as close as NTP keeps them (milliseconds).
 *
 * Pure bookkeeping on typed arrays: nothing is allocated per request.
 */

/** One function's counts, per region (config order). */
export interface RegionCounts {
  /** The report each region's counts refer to (its timestamp, ms); 0 before the first. */
  readonly reportAt: Float64Array;
  readonly sent: Uint32Array;
  readonly freed: Uint32Array;
  /** This router's requests running there now, whenever sent (never reset by a report). */
  readonly running: Uint32Array;
}

export function newRegionCounts(regionCount: number): RegionCounts {
  return { reportAt: new Float64Array(regionCount), sent: new Uint32Array(regionCount), freed: new Uint32Array(regionCount), running: new Uint32Array(regionCount) };
}

/** Events remembered for rebuilding counts when a report arrives (a report is milliseconds old when it does). */
export const LEDGER_RING_SIZE = 1_024;

export class ContainerLedger {
  private readonly owner: (RegionCounts | undefined)[];
  private readonly region: Uint8Array;
  private readonly sentAt: Float64Array;
  /** NaN for a send; the end's time for an end. */
  private readonly endedAt: Float64Array;
  private next = 0;

  constructor(private readonly size = LEDGER_RING_SIZE) {
    this.owner = new Array<RegionCounts | undefined>(size).fill(undefined);
    this.region = new Uint8Array(size);
    this.sentAt = new Float64Array(size);
    this.endedAt = new Float64Array(size);
  }

  /**
   * Containers taken in region `i` since its report at `reportAt`: sent − freed (negative when
   * more were freed). Once the report is older than the region's median request time
   * (`settledAfterMs`), the requests of others it caught busy are most likely over too: then only
   * this router's own running requests hold containers, and taken = running − busy at the report.
   * (A region with a few long functions among fast ones errs towards idle there: a cold start, as
   * nearest routing would make.)
   */
  taken(counts: RegionCounts, i: number, reportAt: number, busyAtReport: number, nowMs: number, settledAfterMs: number): number {
    this.sync(counts, i, reportAt, busyAtReport);
    const sinceReport = counts.sent[i]! - counts.freed[i]!;
    if (settledAfterMs <= 0 || nowMs - reportAt < settledAfterMs) return sinceReport;
    return Math.min(sinceReport, counts.running[i]! - busyAtReport);
  }

  /**
   * A request was sent to region `i` at `nowMs`. Returns its send time as the ledger keeps it, to
   * hand back to `ended`: never before the report it was counted against (a report already seen
   * was taken before this send, whatever a skewed clock says).
   */
  send(counts: RegionCounts, i: number, reportAt: number, busyAtReport: number, nowMs: number): number {
    this.sync(counts, i, reportAt, busyAtReport);
    const sentAt = Math.max(nowMs, reportAt);
    counts.sent[i]!++;
    counts.running[i]!++;
    this.remember(counts, i, sentAt, NaN);
    return sentAt;
  }

  /** A request sent to region `i` at `sentAt` (as `send` returned it) ended at `nowMs`. */
  ended(counts: RegionCounts, i: number, reportAt: number, busyAtReport: number, sentAt: number, nowMs: number): void {
    this.sync(counts, i, reportAt, busyAtReport);
    this.apply(counts, i, sentAt, busyAtReport);
    if (counts.running[i]! > 0) counts.running[i]!--;
    this.remember(counts, i, sentAt, Math.max(nowMs, reportAt));
  }

  /** An end, against the counts of the report they refer to. */
  private apply(counts: RegionCounts, i: number, sentAt: number, busyAtReport: number): void {
    if (sentAt >= counts.reportAt[i]!) {
      // Sent since the report: its container is idle again, as the report had it.
      if (counts.sent[i]! > 0) counts.sent[i]!--;
    } else if (counts.freed[i]! < busyAtReport) {
      // Sent before the report, which counted its container busy (unless it ended just before the
      // report was taken: hence at most as many as the report counted busy).
      counts.freed[i]!++;
    }
  }

  /** When region `i` has reported since the counts began, rebuilds them from the events after the new report's timestamp. */
  private sync(counts: RegionCounts, i: number, reportAt: number, busyAtReport: number): void {
    if (counts.reportAt[i] === reportAt) return;
    counts.reportAt[i] = reportAt;
    counts.sent[i] = 0;
    counts.freed[i] = 0;
    // Oldest first, so each end meets the count its send left.
    for (let k = 0; k < this.size; k++) {
      const slot = (this.next + k) % this.size;
      if (this.owner[slot] !== counts || this.region[slot] !== i) continue;
      const sentAt = this.sentAt[slot]!;
      const endedAt = this.endedAt[slot]!;
      if (Number.isNaN(endedAt)) {
        if (sentAt >= reportAt) counts.sent[i]!++;
      } else if (endedAt >= reportAt) {
        this.apply(counts, i, sentAt, busyAtReport);
      }
    }
  }

  private remember(counts: RegionCounts, i: number, sentAt: number, endedAt: number): void {
    const slot = this.next;
    this.owner[slot] = counts;
    this.region[slot] = i;
    this.sentAt[slot] = sentAt;
    this.endedAt[slot] = endedAt;
    this.next = (slot + 1) % this.size;
  }
}
