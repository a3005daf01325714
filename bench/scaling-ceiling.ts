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
 * The most req/s `cores` could give the N-worker run if each request cost the proxy what it did
 * with one worker (a cluster that adds nothing per request) and the rest of the machine what it
 * took in the N-worker run.
 */
export function ceilingRps(cores: number, one: ScalingRun, many: ScalingRun): number {
  const others = Math.max(0, many.machineUs - many.proxyUs);
  return (cores * 1e6) / (one.proxyUs + others);
}
