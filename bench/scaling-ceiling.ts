/**
 * How much N workers could give over one on a machine whose cores the load generator and the
 * origin share (bench/workers.ts): a request costs the proxy its CPU time and costs the rest of the
 * machine (wrk, the origin, the kernel's network work) theirs, all from the same cores.
 */
export interface ScalingRun {
  readonly rps: number;
  /** The proxy's own CPU (its whole process tree) per request, µs. */
  readonly proxyUs: number;
  /** Every CPU's busy time per request (the proxy, wrk, the origin, the kernel), µs. */
  readonly machineUs: number;
}

/**
 * The most req/s `workers` workers on `cores` cores could give if every request cost what it did in
 * the one-worker run, the proxy's share and the rest of the machine's alike (workers that add
 * nothing per request anywhere): the cores' time over the whole cost of a request, and never more
 * than `workers` times one worker's core's worth.
 */
export function ceilingRps(cores: number, workers: number, one: ScalingRun): number {
  const others = Math.max(0, one.machineUs - one.proxyUs);
  return Math.min((workers * 1e6) / one.proxyUs, (cores * 1e6) / (one.proxyUs + others));
}
