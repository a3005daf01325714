/**
 * Reading numbers out of a /metrics text (Prometheus exposition format) in tests.
 */

/**
 * The sum of a metric's series: every series of `name`, or, given a name with its labels as
 * exposed (`edge_router_reloads_refused_total{file="admin-token"}`), that series alone. NaN when
 * there is none, so a metric that was never registered is not read as zero.
 */
export function metricSum(metrics: string, series: string): number {
  const whole = series.includes('{');
  let sum = 0;
  let found = false;
  for (const line of metrics.split('\n')) {
    const matches = whole ? line.startsWith(`${series} `) : line.startsWith(`${series}{`) || line.startsWith(`${series} `);
    if (!matches) continue;
    found = true;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return found ? sum : Number.NaN;
}
