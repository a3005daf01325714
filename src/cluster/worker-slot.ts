/**
 * A worker's slot in its cluster (0..N-1), handed down by the primary in the environment and kept
 * by a replacement worker when one dies, so the slots stay exactly 0..N-1. Latency routing uses it
 * to give each worker a disjoint share of a region's idle containers (routing/route-decider.ts):
 * workers count only their own sends, and two workers must not both count on one idle container.
 */
import type { WorkerSlot } from '../core/types.js';

const SLOT = 'EDGE_WORKER_SLOT';
const COUNT = 'EDGE_WORKER_COUNT';

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
