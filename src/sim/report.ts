/** Turns load samples into the scenario report: totals, per-metro latency and regions, cold starts. Pure. */
import type { Sample } from './load-generator.js';

export interface MetroReport {
  readonly metro: string;
  readonly requests: number;
  readonly errors: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** region → share of this metro's answered requests. */
  readonly regions: Readonly<Record<string, number>>;
}

export interface Report {
  readonly requests: number;
  readonly errors: number;
  readonly errorKinds: Readonly<Record<string, number>>;
  readonly coldStarts: number;
  readonly metros: readonly MetroReport[];
  readonly routes: Readonly<Record<string, number>>;
}

/** Nearest rank: the smallest value with at least q of the samples at or below it. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export function summarize(samples: readonly Sample[]): Report {
  const byMetro = new Map<string, Sample[]>();
  const errorKinds: Record<string, number> = {};
  const routes: Record<string, number> = {};
  let errors = 0;
  let coldStarts = 0;
  for (const s of samples) {
    (byMetro.get(s.metro) ?? byMetro.set(s.metro, []).get(s.metro)!).push(s);
    if (s.error !== null) {
      errors++;
      errorKinds[s.error] = (errorKinds[s.error] ?? 0) + 1;
    }
    if (s.cold) coldStarts++;
    if (s.route !== null) {
      const kind = s.route.split(':')[0]!;
      routes[kind] = (routes[kind] ?? 0) + 1;
    }
  }
  const metros = [...byMetro.entries()].map(([metro, list]) => {
    const ok = list.filter((s) => s.error === null);
    const latencies = ok.map((s) => s.latencyMs).sort((a, b) => a - b);
    const regions: Record<string, number> = {};
    for (const s of ok) if (s.region !== null) regions[s.region] = (regions[s.region] ?? 0) + 1;
    for (const r of Object.keys(regions)) regions[r] = Math.round((regions[r]! / Math.max(1, ok.length)) * 1000) / 1000;
    return { metro, requests: list.length, errors: list.length - ok.length, p50Ms: round(percentile(latencies, 0.5)), p99Ms: round(percentile(latencies, 0.99)), regions };
  });
  return { requests: samples.length, errors, errorKinds, coldStarts, metros, routes };
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

export function formatReport(name: string, report: Report, extra: Readonly<Record<string, string | number>>): string {
  const lines = [
    `scenario ${name}: ${report.requests} requests, ${report.errors} errors${report.errors ? ` ${JSON.stringify(report.errorKinds)}` : ''}, ${report.coldStarts} cold starts`,
    ...Object.entries(extra).map(([k, v]) => `  ${k}: ${v}`),
    `  routes: ${Object.entries(report.routes).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    '',
    '  metro          requests  errors  p50 ms  p99 ms  regions',
    ...report.metros.map(
      (m) =>
        `  ${m.metro.padEnd(14)} ${String(m.requests).padStart(8)}  ${String(m.errors).padStart(6)}  ${String(m.p50Ms).padStart(6)}  ${String(m.p99Ms).padStart(6)}  ${Object.entries(m.regions)
          .sort((a, b) => b[1] - a[1])
          .map(([r, share]) => `${r} ${Math.round(share * 100)}%`)
          .join(', ')}`,
    ),
  ];
  return lines.join('\n');
}
