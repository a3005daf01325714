/**
 * A worker's slot in its cluster (0..N-1), handed down by the primary in the environment and kept
 * by a replacement worker when one dies, so the slots stay exactly 0..N-1. Latency routing uses it
 * to give each worker a disjoint share of a region's idle containers (routing/route-decider.ts):
 * workers count only their own sends, and two workers must not both count on one idle container.
 */
import type { WorkerSlot } from '../core/types.js';

const SLOT = 'EDGE_WORKER_SLOT';
const COUNT = 'EDGE_WORKER_COUNT';
/**
 * The copy of the regions file the primary took at its start, which every worker reads instead of
 * the file: a replacement worker read the file afresh, so one edited since the start had half the
 * requests routed by the old regions and half by the new (seen in review).
 */
export const REGIONS_COPY = 'EDGE_WORKER_REGIONS_COPY';

/** The environment that tells a worker where the primary's copy of the regions file is. */
export function regionsCopyEnv(path: string): Record<string, string> {
  return { [REGIONS_COPY]: path };
}

/** Where the primary's copy of the regions file is, for a cluster worker; undefined otherwise. */
export function regionsCopyFrom(env: NodeJS.ProcessEnv): string | undefined {
  const path = env[REGIONS_COPY];
  return path === undefined || path === '' || workerSlotFrom(env) === undefined ? undefined : path;
}

/** The environment a worker is forked with. */
export function workerSlotEnv(slot: number, of: number): Record<string, string> {
  return { [SLOT]: String(slot), [COUNT]: String(of) };
}

/** The slot this process was given, or undefined when it is not a cluster worker (or the values make no sense). */
export function workerSlotFrom(env: NodeJS.ProcessEnv): WorkerSlot | undefined {
  const slot = Number(env[SLOT]);
  const of = Number(env[COUNT]);
  if (!Number.isInteger(slot) || !Number.isInteger(of) || of < 2 || slot < 0 || slot >= of) return undefined;
  return { slot, of };
}
