/**
 * The `long-tail` scenario: a few hundred functions with Zipf-like popularity, requested from
 * every client metro at a modest total rate, so most functions are cold most of the time. The
 * same seeded request sequence runs twice, against a fresh topology each time: once with
 * `--routing nearest`, once with `--routing latency`; the last line compares them
 * (`long-tail latency/nearest: cold starts R1, p50 R2, p95 R3`, lower is better). With `hedge`,
 * a third run deploys every function with cold-start hedging on, under latency routing, and
 * reports `long-tail latency+hedging/nearest: …` just before that line.
 */
import type { FunctionRecord } from '../core/types.js';
import { evenly, SCENARIO_METROS } from './scenario-metros.js';
import { generateLoad, type Sample } from './load-generator.js';
import { formatReport, percentile, summarize } from './report.js';
import { SimTopology } from './topology.js';

export interface LongTailRun {
  readonly durationS: number;
  readonly rps: number;
  readonly root: string;
  readonly log: (line: string) => void;
  /** How many functions (default 300). */
  readonly functions?: number;
  /** Add a third run: latency routing with every function hedging. */
  readonly hedge?: boolean;
}

export interface LongTailResult {
  readonly report: string;
  readonly failures: readonly string[];
  /** latency ÷ nearest, lower is better. */
  readonly ratios: Ratios;
  /** latency with hedging ÷ nearest, when that run was asked for. */
  readonly hedgedRatios?: Ratios;
}

interface Ratios {
  readonly coldStarts: number;
  readonly p50: number;
  readonly p95: number;
}

const ORG = 'tail';

/** A well-mixed 32-bit hash of (a, b), in [0, 1): the same request gets the same function in both runs. */
function uniform(a: number, b: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x632be5ab, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return (h >>> 0) / 2 ** 32;
}

/** Cumulative Zipf (s = 1) weights over `n` ranks, for inverse-CDF sampling. */
export function zipfCdf(n: number): Float64Array {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 1; k <= n; k++) cdf[k - 1] = sum += 1 / k;
  for (let k = 0; k < n; k++) cdf[k]! /= sum;
  return cdf;
}

/** The function (1-based rank) of a metro's n-th request. */
export function functionOf(cdf: Float64Array, metroIndex: number, n: number): number {
  const u = uniform(metroIndex + 1, n);
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cdf[mid]! < u) lo = mid + 1;
    else hi = mid;
  }
  return lo + 1;
}

async function runOnce(mode: 'nearest' | 'latency', run: LongTailRun, records: readonly FunctionRecord[], cdf: Float64Array): Promise<Sample[]> {
  const label = records[0]?.hedge === true ? `${mode}+hedging` : mode;
  run.log(`scenario long-tail (${label}): starting redis, five orchestrators and a router…`);
  const topology = await SimTopology.start({ root: run.root, log: run.log, routerFlags: ['--routing', mode] });
  try {
    await topology.deploy(records);
    // Orchestrators and the router learn the directory by push; give the last write a moment.
    await new Promise((r) => setTimeout(r, 500));
    run.log(`scenario long-tail (${label}): ${run.durationS} s at ${run.rps} req/s over ${records.length} functions`);
    return await generateLoad({
      port: topology.httpsPort,
      host: `f1-${ORG}.telnyxcompute.com`,
      hostFor: (metro, n) => `f${functionOf(cdf, SCENARIO_METROS.indexOf(metro), n)}-${ORG}.telnyxcompute.com`,
      path: '/',
      metros: SCENARIO_METROS,
      phases: [{ fromS: 0, rps: evenly(run.rps) }],
      durationS: run.durationS,
    });
  } finally {
    await topology.stop();
  }
}

function latencies(samples: readonly Sample[]): number[] {
  return samples.filter((s) => s.error === null).map((s) => s.latencyMs).sort((a, b) => a - b);
}

const ratio = (a: number, b: number) => (b === 0 ? (a === 0 ? 1 : Infinity) : a / b);

export async function runLongTail(run: LongTailRun): Promise<LongTailResult> {
  const count = run.functions ?? 300;
  const records: FunctionRecord[] = Array.from({ length: count }, (_, i) => ({ org: ORG, fn: `f${i + 1}`, regions: null, tier: 'standard', enabled: true }));
  const cdf = zipfCdf(count);
  const nearest = await runOnce('nearest', run, records, cdf);
  const latency = await runOnce('latency', run, records, cdf);
  const hedged = run.hedge === true ? await runOnce('latency', run, records.map((r) => ({ ...r, hedge: true })), cdf) : undefined;
  const [a, b] = [summarize(nearest), summarize(latency)];
  const compare = (samples: readonly Sample[], summary: ReturnType<typeof summarize>): Ratios => {
    const [la, lb] = [latencies(nearest), latencies(samples)];
    return {
      coldStarts: ratio(summary.coldStarts, a.coldStarts),
      p50: ratio(percentile(lb, 0.5), percentile(la, 0.5)),
      p95: ratio(percentile(lb, 0.95), percentile(la, 0.95)),
    };
  };
  const ratios = compare(latency, b);
  const h = hedged === undefined ? undefined : summarize(hedged);
  const hedgedRatios = hedged === undefined ? undefined : compare(hedged, h!);
  const facts = (samples: readonly Sample[]) => {
    const l = latencies(samples);
    return { 'p50 / p95 ms': `${percentile(l, 0.5).toFixed(1)} / ${percentile(l, 0.95).toFixed(1)}`, 'cold starts': samples.filter((s) => s.cold).length };
  };
  const failures: string[] = [];
  for (const [mode, report] of [['nearest', a], ['latency', b], ...(h === undefined ? [] : [['latency+hedging', h] as const])] as const) {
    if (report.errors > 0) failures.push(`${mode}: ${report.errors} requests failed (${Object.keys(report.errorKinds).join(', ')}); expected none`);
  }
  const line = (name: string, r: Ratios) => `long-tail ${name}/nearest: cold starts ${r.coldStarts.toFixed(2)}, p50 ${r.p50.toFixed(2)}, p95 ${r.p95.toFixed(2)}`;
  const parts = [formatReport('long-tail (nearest)', a, facts(nearest)), '', formatReport('long-tail (latency)', b, facts(latency)), ''];
  if (hedged !== undefined) parts.push(formatReport('long-tail (latency+hedging)', h!, facts(hedged)), '', line('latency+hedging', hedgedRatios!));
  parts.push(line('latency', ratios));
  return { report: parts.join('\n'), failures, ratios, ...(hedgedRatios === undefined ? {} : { hedgedRatios }) };
}
