/**
 * The metrics the request path touches on every request — a histogram per duration and the
 * requests counter — kept in plain numbers and exposed through prom-client's registry
 * (`registry.registerMetric`), so /metrics, the cluster aggregation and the text format stay
 * prom-client's.
 *
 * Why not prom-client's own Histogram and Counter here: each of their observations builds a
 * label object and a closure, hashes the labels and turns the bucket bound into a property name;
 * measured under load, the three histograms and the counter cost about as much as the whole
 * access-log line. An observation here is a few comparisons and two additions.
 */
import type { Metric, Registry } from 'prom-client';

/** What prom-client's registry reads of a metric (the shape its own metrics' `get()` return). */
interface MetricValue {
  readonly value: number;
  readonly labels: Record<string, string | number>;
  readonly metricName?: string;
}

interface MetricData {
  readonly name: string;
  readonly help: string;
  readonly type: 'histogram' | 'counter';
  readonly aggregator: 'sum';
  readonly values: MetricValue[];
}

abstract class HotMetric {
  readonly aggregator = 'sum' as const;
  abstract readonly type: 'histogram' | 'counter';
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  /** Adds this metric to `registry`, as prom-client's own metrics add themselves. */
  register(registry: Registry): this {
    // registerMetric takes any object with prom-client's metric surface (name, get, reset).
    registry.registerMetric(this as unknown as Metric);
    return this;
  }

  abstract reset(): void;
  abstract values(): MetricValue[];

  get(): Promise<MetricData> {
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.values() });
  }
}

/** A histogram without labels: cumulative buckets, sum and count, as Prometheus defines them. */
export class HotHistogram extends HotMetric {
  readonly type = 'histogram' as const;
  private readonly bounds: Float64Array;
  /** Observations per bucket, not cumulative; the last one is +Inf. */
  private readonly counts: Float64Array;
  private sum = 0;
  private count = 0;

  constructor(name: string, help: string, bounds: readonly number[]) {
    super(name, help);
    if (bounds.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= bounds[i - 1]!))) throw new Error(`${name}: bucket bounds must be finite and increasing`);
    this.bounds = Float64Array.from(bounds);
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    if (Number.isNaN(value)) return;
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }

  values(): MetricValue[] {
    const out: MetricValue[] = [];
    let cumulative = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      cumulative += this.counts[i]!;
      out.push({ value: cumulative, labels: { le: this.bounds[i]! }, metricName: `${this.name}_bucket` });
    }
    out.push({ value: this.count, labels: { le: '+Inf' }, metricName: `${this.name}_bucket` });
    out.push({ value: this.sum, labels: {}, metricName: `${this.name}_sum` });
    out.push({ value: this.count, labels: {}, metricName: `${this.name}_count` });
    return out;
  }
}

/** One labelled series of a HotCounter: the request path keeps it and adds to it. */
export class CounterSeries {
  value = 0;
  constructor(readonly labels: Readonly<Record<string, string>>) {}
}

/** A counter with labels whose series are looked up once by the caller and then only added to. */
export class HotCounter extends HotMetric {
  readonly type = 'counter' as const;
  private readonly series = new Map<string, CounterSeries>();

  constructor(
    name: string,
    help: string,
    private readonly labelNames: readonly string[],
  ) {
    super(name, help);
  }

  /** The series for these label values (in `labelNames` order), made on first use. */
  seriesFor(...labelValues: string[]): CounterSeries {
    const key = labelValues.join('\u0000');
    let series = this.series.get(key);
    if (series === undefined) {
      if (labelValues.length !== this.labelNames.length) throw new Error(`${this.name}: expected ${this.labelNames.length} label values`);
      series = new CounterSeries(Object.fromEntries(this.labelNames.map((n, i) => [n, labelValues[i]!])));
      this.series.set(key, series);
    }
    return series;
  }

  reset(): void {
    for (const s of this.series.values()) s.value = 0;
  }

  values(): MetricValue[] {
    return [...this.series.values()].map((s) => ({ value: s.value, labels: s.labels }));
  }
}
