import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { HotCounter, HotHistogram } from '../../src/observability/hot-metrics.js';

const BOUNDS = [0.001, 0.01, 0.1, 1];
const OBSERVED = [0, 0.0005, 0.001, 0.002, 0.01, 0.05, 0.5, 1, 3, 100, 0.1];

describe('hot metrics', () => {
  it('expose exactly what prom-client Histogram and Counter expose for the same observations', async () => {
    const theirs = new Registry();
    const ours = new Registry();
    const histogram = new Histogram({ name: 'h_seconds', help: 'a histogram', buckets: BOUNDS, registers: [theirs] });
    const counter = new Counter({ name: 'c_total', help: 'a counter', labelNames: ['region', 'route'], registers: [theirs] });
    const hot = new HotHistogram('h_seconds', 'a histogram', BOUNDS).register(ours);
    const hotCounter = new HotCounter('c_total', 'a counter', ['region', 'route']).register(ours);
    for (const v of OBSERVED) {
      histogram.observe(v);
      hot.observe(v);
    }
    counter.labels('fra', 'warm').inc();
    counter.labels('fra', 'warm').inc();
    counter.labels('nyc', 'nearest').inc();
    const series = hotCounter.seriesFor('fra', 'warm');
    series.value++;
    hotCounter.seriesFor('fra', 'warm').value++; // the same series
    hotCounter.seriesFor('nyc', 'nearest').value++;
    expect(await ours.metrics()).toBe(await theirs.metrics());
    // The JSON the cluster aggregation reads: the same, but for prom-client's empty exemplar slots.
    const withoutExemplars = (metrics: unknown) => JSON.parse(JSON.stringify(metrics, (key, value: unknown) => (key === 'exemplar' ? undefined : value)));
    expect(await ours.getMetricsAsJSON()).toEqual(withoutExemplars(await theirs.getMetricsAsJSON()));
  });

  it('sums across workers like prom-client metrics (cluster aggregation)', async () => {
    const a = new Registry();
    const b = new Registry();
    new HotHistogram('h_seconds', 'a histogram', BOUNDS).register(a).observe(0.005);
    new HotHistogram('h_seconds', 'a histogram', BOUNDS).register(b).observe(0.5);
    const merged = AggregatorRegistry.aggregate([await a.getMetricsAsJSON(), await b.getMetricsAsJSON()]);
    const text = await merged.metrics();
    expect(text).toMatch(/^h_seconds_bucket\{le="0.01"\} 1$/m);
    expect(text).toMatch(/^h_seconds_bucket\{le="1"\} 2$/m);
    expect(text).toMatch(/^h_seconds_count 2$/m);
  });

  it('ignores NaN, refuses unordered bounds and a wrong number of label values, and resets', async () => {
    expect(() => new HotHistogram('x', 'x', [1, 0.5])).toThrow(/increasing/);
    expect(() => new HotCounter('c', 'c', ['a']).seriesFor('1', '2')).toThrow(/1 label values/);
    const registry = new Registry();
    const h = new HotHistogram('h', 'h', [1]).register(registry);
    h.observe(Number.NaN);
    h.observe(2);
    expect(await registry.metrics()).toMatch(/^h_count 1$/m);
    h.reset();
    expect(await registry.metrics()).toMatch(/^h_count 0$/m);
  });
});
