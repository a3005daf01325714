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
 * free; but once the report is older than the region's median service time (its median request
 * time where it reports none: regionServiceMs in deadline-admission.ts), those requests are most
 * likely over, and only this router's own running requests are known to hold containers.
 *
 * "Since the report" means since the moment the region took it (its timestamp), not since this
 * router received it: a report reaches the router a few milliseconds after it is taken, and a
 * request that ends in between would otherwise leave its container counted busy for a whole
 * second. (On this platform that sent London's steady traffic to Los Angeles 17 % of the time
 * while its one Frankfurt container stood idle.) So each function keeps, per region, its last few
 * sends and ends, and when a new report is seen the counts are rebuilt from the events after its
 * timestamp. When more happened in that window than are kept (a function at thousands of requests
 * a second), the oldest are not counted, and the estimate errs towards idle: a cold start where
 * nearest routing would have made one too. Timestamps are this router's clock against the
 * region's: on one machine the same, across machines as close as NTP keeps them (milliseconds).
 *
 * Bookkeeping in one typed array allocated once per function: nothing is allocated per request.
 */

/** Sends and ends kept per function and region for rebuilding the counts when a report arrives. */
export const EVENTS_KEPT = 8;

// One Float64Array per function, a fixed block per region (config order): one allocation per
// function instead of one per field (typed arrays cost a microsecond each to make).
const REPORT_AT = 0; // the report the counts refer to (its timestamp, ms); NaN before the first
const BUSY = 1; // busy containers that report counted
const SENT = 2;
const FREED = 3;
const RUNNING = 4; // this router's requests running there now, whenever sent (never reset by a report)
const NEXT_EVENT = 5; // next event slot to write
const EVENTS = 6; // EVENTS_KEPT × (send time, end time or NaN for a send, when written)
const BLOCK = EVENTS + 3 * EVENTS_KEPT;

/** One function's counts in every region. */
export type RegionCounts = Float64Array;

export function newRegionCounts(regionCount: number): RegionCounts {
  const counts = new Float64Array(regionCount * BLOCK);
  for (let i = 0; i < regionCount; i++) {
    counts[i * BLOCK + REPORT_AT] = NaN;
    for (let k = 0; k < EVENTS_KEPT; k++) counts[i * BLOCK + EVENTS + 3 * k + 2] = -Infinity;
  }
  return counts;
}

/** Whether the counts of region `i` refer to the report at `reportAt` (else `rebase` first). */
export function isCurrent(counts: RegionCounts, i: number, reportAt: number): boolean {
  return counts[i * BLOCK + REPORT_AT] === reportAt;
}

/** Starts region `i`'s counts again from the report at `reportAt`, replaying the events after its timestamp. */
export function rebase(counts: RegionCounts, i: number, reportAt: number, busyAtReport: number): void {
  const at = i * BLOCK;
  counts[at + REPORT_AT] = reportAt;
  counts[at + BUSY] = busyAtReport;
  let sends = 0;
  let sentAndEnded = 0;
  let freed = 0;
  // Newest first, back to the first event written before the report; the counts do not depend on
  // the order (a send and its end cancel out wherever they are).
  const next = counts[at + NEXT_EVENT]!;
  for (let k = 0; k < EVENTS_KEPT; k++) {
    const e = at + EVENTS + 3 * ((next + EVENTS_KEPT - 1 - k) % EVENTS_KEPT);
    if (counts[e + 2]! < reportAt) break;
    const sentAt = counts[e]!;
    const endedAt = counts[e + 1]!;
    if (Number.isNaN(endedAt)) {
      if (sentAt >= reportAt) sends++;
    } else if (sentAt >= reportAt) sentAndEnded++;
    else if (endedAt >= reportAt) freed++;
  }
  counts[at + SENT] = Math.max(0, sends - sentAndEnded);
  counts[at + FREED] = Math.min(freed, busyAtReport);
}

/**
 * Containers taken in region `i` since its report at `reportAt`: sent − freed (negative when
 * more were freed); NaN when the counts refer to an earlier report (`rebase`, then ask again: one
 * call on the request path, not two). Once the report is older than the region's median request
 * time (`settledAfterMs`), the requests of others it caught busy are most likely over too: then
 * only this router's own running requests hold containers, and taken = running − busy at the
 * report. (A region with a few long functions among fast ones errs towards idle there: a cold
 * start, as nearest routing would make.)
 */
export function taken(counts: RegionCounts, i: number, reportAt: number, nowMs: number, settledAfterMs: number): number {
  const at = i * BLOCK;
  if (counts[at + REPORT_AT] !== reportAt) return NaN;
  // `| 0`: whole numbers kept as doubles, handed back as small integers (a double returned from a
  // call that is not inlined is boxed: an allocation per region per request).
  const sinceReport = (counts[at + SENT]! - counts[at + FREED]!) | 0;
  if (settledAfterMs <= 0 || nowMs - counts[at + REPORT_AT]! < settledAfterMs) return sinceReport;
  return Math.min(sinceReport, (counts[at + RUNNING]! - counts[at + BUSY]!) | 0);
}

/**
 * A request was sent to region `i` at `nowMs`. Returns its send time as the ledger keeps it, to
 * hand back to `ended`: never before the report it was counted against (a report already seen
 * was taken before this send, whatever a skewed clock says).
 */
export function sent(counts: RegionCounts, i: number, nowMs: number): number {
  const at = i * BLOCK;
  const sentAt = Math.max(nowMs, counts[at + REPORT_AT]! || 0);
  counts[at + SENT]!++;
  counts[at + RUNNING]!++;
  remember(counts, at, sentAt, NaN, sentAt);
  return sentAt;
}

/** A request sent to region `i` at `sentAt` (as `sent` returned it) ended at `nowMs`. */
export function ended(counts: RegionCounts, i: number, sentAt: number, nowMs: number): void {
  const at = i * BLOCK;
  if (sentAt >= counts[at + REPORT_AT]!) {
    // Sent since the report: its container is idle again, as the report had it.
    if (counts[at + SENT]! > 0) counts[at + SENT]!--;
  } else if (counts[at + FREED]! < counts[at + BUSY]!) {
    // Sent before the report, which counted its container busy (unless it ended just before the
    // report was taken: hence at most as many as the report counted busy).
    counts[at + FREED]!++;
  }
  if (counts[at + RUNNING]! > 0) counts[at + RUNNING]!--;
  const endedAt = Math.max(nowMs, counts[at + REPORT_AT]! || 0);
  remember(counts, at, sentAt, endedAt, endedAt);
}

function remember(counts: RegionCounts, at: number, sentAt: number, endedAt: number, writtenAt: number): void {
  const next = counts[at + NEXT_EVENT]!;
  const e = at + EVENTS + 3 * next;
  counts[e] = sentAt;
  counts[e + 1] = endedAt;
  counts[e + 2] = writtenAt;
  counts[at + NEXT_EVENT] = (next + 1) % EVENTS_KEPT;
}
