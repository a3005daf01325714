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

/**
 * h2load's summary: req/s, mean time per request, and what did not succeed. Its `errored` counts
 * the requests that failed below HTTP (a reset, a lost connection; `timeout` is part of it) and
 * `failed` those and the HTTP-level failures together: summed, each was counted twice. Any answer
 * but a 2xx is a failure here (the origin answers 200; a 3xx is a proxy misconfigured).
 */
export function parseH2load(text: string): WrkResult {
  const rps = Number(/finished in [\d.]+s, ([\d.]+) req\/s/.exec(text)?.[1] ?? NaN);
  const req = /requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(text);
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(text);
  const mean = /time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)/.exec(text);
  if (!Number.isFinite(rps) || req === null || codes === null || mean === null) throw new BenchError(`could not read h2load's output:\n${text.split('\n').slice(-12).join('\n')}`);
  const errored = Number(req[4]);
  return {
    rps,
    p50Ms: Number(mean[1]) * UNIT_MS[mean[2]!]!, // h2load reports no percentiles: the mean stands in (the table says so)
    p99Ms: NaN,
    requests: Number(req[1]),
    non2xx: Number(codes[2]) + Number(codes[3]) + Number(codes[4]),
    socketErrors: errored,
    socketDetail: `${errored} requests errored below HTTP (reset or connection lost), ${req[5]} of them timed out`,
    cpuUs: NaN,
  };
}
