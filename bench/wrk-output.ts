/** What a wrk run printed, read into numbers (`--latency` output), for the benchmarks that drive it. */
import { BenchError } from './services.js';

export interface WrkResult {
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly requests: number;
  readonly non2xx: number;
  readonly socketErrors: number;
  readonly socketDetail: string;
  /** The target's CPU time (user + system, its whole process tree) per request during the run, µs. */
  readonly cpuUs: number;
}

export const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

function latencyMs(text: string, percentile: string): number {
  const match = new RegExp(`^\\s*${percentile}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, 'm').exec(text);
  if (match === null) throw new BenchError(`wrk output has no ${percentile}% latency line:\n${text}`);
  return Number(match[1]) * UNIT_MS[match[2]!]!;
}

/** wrk's summary; cpuUs is left NaN for the caller, who knows which process was measured. */
export function parseWrk(text: string): WrkResult {
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(text);
  const requests = /(\d+) requests in /.exec(text);
  if (rps === null || requests === null) throw new BenchError(`cannot parse wrk output:\n${text}`);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(text);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const socketErrors = socket === null ? 0 : socket.slice(1).reduce((sum, n) => sum + Number(n), 0);
  return {
    rps: Number(rps[1]),
    p50Ms: latencyMs(text, '50'),
    p99Ms: latencyMs(text, '99'),
    requests: Number(requests[1]),
    non2xx: non2xx === null ? 0 : Number(non2xx[1]),
    socketErrors,
    socketDetail: socket === null ? '' : socket[0],
    cpuUs: NaN,
  };
}
