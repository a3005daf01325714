/**
 * Deadline-aware admission: when every region the request may go to is full and the best
 * expected answer cannot arrive inside the function's time limit (30 s standard, 60 s extended),
 * the request is refused at once with 503 and a Retry-After, instead of waiting in a queue only
 * to be cut off with a 504 at the deadline. A client that is told early can go elsewhere or come
 * back; one that waits 30 s for a 504 has also held a queue place the whole time.
 *
 *   expected(region) = rtt + (queue wait > 0 ? queue wait : no idle warm container ? cold start : 0)
 *   queue wait       = (in flight − containers + 1) / containers × the region's median service time
 *
 * The service time is how long a request holds a container (regionServiceMs): the region's median
 * service time where it reports one, else its median request time. The latter is all an
 * orchestrator of an earlier version reports, and may count the queue wait itself (the simulated
 * one's did, from arrival): multiplied by the queue, a long queue then reads longer than it is.
 *
 * A request that queues waits for a busy container to free, not for a new one to start (at its
 * limit the region starts none): a cold start is counted only when there is no queue.
 *
 * A region's containers are its hard limit (the orchestrator starts at most that many). The
 * request being decided is one more in the queue, so a region exactly at its limit already makes
 * it wait about one service time spread over its containers. No data (no median yet) means no
 * queue wait: a region is never refused on a guess. Pure and synchronous.
 */
import type { RegionHealth, RegionId } from '../core/types.js';

/** What is known of one candidate region. */
export interface DeadlineCandidate {
  readonly rttMs: number;
  /** The cold start this request would wait for (0 when an idle warm container is left). */
  readonly coldStartMs: number;
  /** Requests running or queued there (the larger of the region's report and this router's own count). */
  readonly inFlight: number;
  /** Containers it can run at once (its hard limit). */
  readonly containers: number;
  /** How long a request holds a container there (ms; regionServiceMs); 0 = unknown. */
  readonly serviceMs: number;
}

export type DeadlineVerdict =
  | {
      readonly fits: true;
      /** The first candidate expected to answer in time (0 mostly): the one to try first. */
      readonly index: number;
    }
  | {
      readonly fits: false;
      /** The best region's expected answer time (ms). */
      readonly bestMs: number;
      readonly bestRegion: RegionId;
      /** Seconds until the best queue has drained enough for the request to fit (at least 1). */
      readonly retryAfterS: number;
    };

/** Longest Retry-After the router suggests: past it, the estimate is too far ahead to be worth anything. */
export const MAX_RETRY_AFTER_S = 60;

/**
 * How long a request holds a container in a region (ms; 0 = unknown): its median service time when
 * its report carries one (a 0 stands: nothing served yet), else its median request time, which an
 * earlier orchestrator reports alone. Also how long a report's busy containers stay busy
 * (container-ledger.ts), for the same reason.
 */
export function regionServiceMs(health: Pick<RegionHealth, 'latencyMs' | 'serviceMs'> | undefined): number {
  if (health === undefined) return 0;
  return health.serviceMs ?? health.latencyMs.p50;
}

/** Expected wait for a container, in ms (0 when one is free or nothing is known). */
export function expectedQueueWaitMs(inFlight: number, containers: number, serviceMs: number): number {
  const ahead = inFlight - containers + 1;
  if (ahead <= 0 || containers <= 0 || serviceMs <= 0) return 0;
  return (ahead / containers) * serviceMs;
}

export function expectedAnswerMs(c: DeadlineCandidate): number {
  const waitMs = expectedQueueWaitMs(c.inFlight, c.containers, c.serviceMs);
  return c.rttMs + (waitMs > 0 ? waitMs : c.coldStartMs);
}

/**
 * Whether the best of `candidates` is expected to answer within `deadlineMs`, and which comes
 * first that is. `describe` fills `into` for the region at `index` (one object reused: the check
 * allocates nothing when the first fits).
 */
export function checkDeadline(
  candidates: readonly RegionId[],
  deadlineMs: number,
  describe: (region: RegionId, into: MutableCandidate) => void,
): DeadlineVerdict {
  let bestMs = Infinity;
  let bestRegion: RegionId | undefined;
  for (let i = 0; i < candidates.length; i++) {
    describe(candidates[i]!, scratch);
    const ms = expectedAnswerMs(scratch);
    if (ms <= deadlineMs) return i === 0 ? FITS_FIRST : { fits: true, index: i };
    if (ms < bestMs) {
      bestMs = ms;
      bestRegion = candidates[i]!;
    }
  }
  if (bestRegion === undefined) return FITS_FIRST; // no candidate: readiness answers that itself
  const retryAfterS = Math.min(MAX_RETRY_AFTER_S, Math.max(1, Math.ceil((bestMs - deadlineMs) / 1000)));
  return { fits: false, bestMs, bestRegion, retryAfterS };
}

export type MutableCandidate = { -readonly [K in keyof DeadlineCandidate]: DeadlineCandidate[K] };

const FITS_FIRST: DeadlineVerdict = { fits: true, index: 0 };
const scratch: MutableCandidate = { rttMs: 0, coldStartMs: 0, inFlight: 0, containers: 0, serviceMs: 0 };
