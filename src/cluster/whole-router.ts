/**
 * The router as one thing, whatever `--workers` is: the admin API asks this for metrics, the
 * dashboard's per-region numbers, and for every worker to have applied an operator's change
 * before it answers. In one process the answers are local; in a cluster the worker that took
 * the admin request asks the primary, which gathers every worker's part over the IPC links and
 * combines them (metrics with prom-client's cluster aggregation, region numbers summed).
 */
import { AggregatorRegistry } from 'prom-client';
import type { RegionId } from '../core/types.js';
import type { RegionStats, RouterMetrics } from '../observability/metrics.js';
import type { MessageLink } from './message-link.js';

export interface WholeRouter {
  /** Prometheus text for the whole router. */
  metrics(): Promise<string>;
  /** Per-region numbers for the whole router. */
  regionStats(): Promise<ReadonlyMap<RegionId, RegionStats>>;
  /**
   * Resolves once every worker's snapshot includes the registry writes made so far: true, or
   * false when a worker could not confirm it (its read failed, or it did not answer in time).
   */
  settle(): Promise<boolean>;
}

/** What a router process offers to the whole: its own metrics and its registry watcher. */
export interface RouterPart {
  readonly metrics: RouterMetrics;
  readonly watcher: { resync(): Promise<boolean> };
}

export function singleProcessRouter(part: RouterPart): WholeRouter {
  return {
    metrics: () => part.metrics.registry.metrics(),
    regionStats: async () => part.metrics.allRegionStats(),
    settle: () => part.watcher.resync(),
  };
}

/**
 * A cluster worker's view: answers the primary's questions about this worker and asks the
 * primary for the whole. `announce()` tells the primary this worker can now be asked.
 */
export function clusterWorkerRouter(link: MessageLink, part: RouterPart): WholeRouter & { announce(): Promise<void> } {
  link.handle(WORKER.metrics, () => part.metrics.registry.getMetricsAsJSON());
  link.handle(WORKER.regionStats, () => part.metrics.allRegionStats());
  link.handle(WORKER.resync, async () => {
    if (!(await part.watcher.resync())) throw new Error('its registry read failed');
  });
  return {
    metrics: () => link.call<string>(WHOLE.metrics),
    regionStats: () => link.call<ReadonlyMap<RegionId, RegionStats>>(WHOLE.regionStats),
    settle: () => link.call<boolean>(WHOLE.settle),
    announce: () => link.call<void>(WHOLE.announce),
  };
}

/** Questions the primary asks each worker. */
const WORKER = { metrics: 'worker.metrics', regionStats: 'worker.regionStats', resync: 'worker.resync' } as const;
/** Questions a worker asks the primary about the whole router. */
const WHOLE = { metrics: 'router.metrics', regionStats: 'router.regionStats', settle: 'router.settle', announce: 'router.announce' } as const;

export interface ClusterAnswersOptions {
  /** How long the primary waits for each worker's part (a worker that dies is left out). */
  readonly workerTimeoutMs?: number;
  /** A worker did not answer: its part is missing from one answer. */
  readonly onMissing?: (question: string, reason: string) => void;
}

/**
 * The primary's side: keeps the links of the workers that have announced themselves, and
 * answers their questions about the whole router. Call `attach` for each forked worker.
 */
export class ClusterAnswers {
  private readonly announced = new Set<MessageLink>();
  /** Forked and not gone, announced or not: a worker still starting may already be serving. */
  private readonly attached = new Set<MessageLink>();
  private readonly timeoutMs: number;
  /** Each worker's counters and histograms as its last metrics answer had them. */
  private readonly lastCounted = new Map<MessageLink, MetricJson[]>();
  /** The counters and histograms of the workers gone, summed. */
  private retired: MetricJson[] | undefined;

  constructor(private readonly options: ClusterAnswersOptions = {}) {
    this.timeoutMs = options.workerTimeoutMs ?? 2_000;
  }

  /** Serves `link`'s worker; returns a function to call when that worker has gone. */
  attach(link: MessageLink): () => void {
    this.attached.add(link);
    link.handle(WHOLE.announce, () => void this.announced.add(link));
    link.handle(WHOLE.metrics, async () => AggregatorRegistry.aggregate(await this.workerMetrics()).metrics());
    link.handle(WHOLE.regionStats, async () => sumRegionStats(await this.askEach<ReadonlyMap<RegionId, RegionStats>>(WORKER.regionStats)));
    link.handle(WHOLE.settle, async () => {
      // A worker that has not announced itself cannot be asked, yet it may be serving already
      // (it listens before it announces) with a snapshot read before this write: not everywhere.
      const starting = [...this.attached].some((link) => !this.announced.has(link));
      const asked = this.announced.size;
      return (await this.askEach<void>(WORKER.resync)).length === asked && !starting;
    });
    return () => {
      this.attached.delete(link);
      this.announced.delete(link);
      const last = this.lastCounted.get(link);
      this.lastCounted.delete(link);
      if (last !== undefined) this.retired = sumMetrics(this.retired === undefined ? [last] : [this.retired, last]);
    };
  }

  /** How many workers are announced (and so asked). */
  get workers(): number {
    return this.announced.size;
  }

  /** Whether `link`'s worker has announced itself: its start is over. */
  hasAnnounced(link: MessageLink): boolean {
    return this.announced.has(link);
  }

  /**
   * Every worker's metrics, for one answer whose counters and histograms never go back: a worker
   * that did not answer counts by its last answer's, and the workers gone count by theirs for good.
   * (Prometheus takes a counter that goes down for a reset and the whole new value for the
   * increase: a restarted worker's counts vanishing from the sum read as a burst of requests.)
   * What a worker counted after its last answer and before it died is lost, never counted twice.
   */
  private async workerMetrics(): Promise<MetricJson[][]> {
    const links = [...this.announced];
    const answers = await this.askAll<MetricJson[]>(WORKER.metrics, links);
    const parts: MetricJson[][] = this.retired === undefined ? [] : [this.retired];
    links.forEach((link, i) => {
      // A worker that died while it was being asked is in `retired` already, by its answer before.
      if (!this.attached.has(link)) return;
      const answer = answers[i];
      if (answer !== undefined) {
        parts.push(answer.value);
        this.lastCounted.set(link, counted(answer.value));
      } else {
        const last = this.lastCounted.get(link);
        if (last !== undefined) parts.push(last);
      }
    });
    return parts;
  }

  private async askEach<T>(question: string): Promise<T[]> {
    const answers = await this.askAll<T>(question, [...this.announced]);
    return answers.flatMap((answer) => (answer === undefined ? [] : [answer.value]));
  }

  /** Each link's answer, in order; undefined (and reported) where there was none. */
  private async askAll<T>(question: string, links: readonly MessageLink[]): Promise<({ value: T } | undefined)[]> {
    const answers = await Promise.allSettled(links.map((link) => link.call<T>(question, [], this.timeoutMs)));
    return answers.map((answer) => {
      if (answer.status === 'fulfilled') return { value: answer.value };
      this.options.onMissing?.(question, answer.reason instanceof Error ? answer.reason.message : String(answer.reason));
      return undefined;
    });
  }
}

/** One metric of a worker's `registry.getMetricsAsJSON()`, as much of it as is read here. */
interface MetricJson {
  readonly name: string;
  readonly type: string;
  readonly aggregator?: string;
  readonly values: readonly { readonly value: number; readonly labels: Readonly<Record<string, string | number>>; readonly metricName?: string }[];
}

/** The metrics that only ever grow and are summed over workers: counters and histograms. */
function counted(part: readonly MetricJson[]): MetricJson[] {
  return part.filter((m) => (m.type === 'counter' || m.type === 'histogram') && (m.aggregator ?? 'sum') === 'sum');
}

/** Several workers' counted metrics as one worker's, series by series (so the workers gone cost one, however many). */
function sumMetrics(parts: readonly (readonly MetricJson[])[]): MetricJson[] {
  const byName = new Map<string, { metric: MetricJson; values: Map<string, MetricJson['values'][number]> }>();
  for (const part of parts) {
    for (const metric of part) {
      let entry = byName.get(metric.name);
      if (entry === undefined) byName.set(metric.name, (entry = { metric, values: new Map() }));
      for (const v of metric.values) {
        const key = `${v.metricName ?? ''}\u0000${JSON.stringify(Object.entries(v.labels).sort(([a], [b]) => (a < b ? -1 : 1)))}`;
        const held = entry.values.get(key);
        entry.values.set(key, held === undefined ? v : { ...v, value: held.value + v.value });
      }
    }
  }
  return [...byName.values()].map(({ metric, values }) => ({ ...metric, values: [...values.values()] }));
}

/** Adds the workers' per-region numbers region by region. */
export function sumRegionStats(parts: readonly ReadonlyMap<RegionId, RegionStats>[]): Map<RegionId, RegionStats> {
  const total = new Map<RegionId, RegionStats>();
  for (const part of parts) {
    for (const [region, s] of part) {
      const t = total.get(region);
      total.set(
        region,
        t === undefined
          ? { ...s }
          : {
              requestsTotal: t.requestsTotal + s.requestsTotal,
              errorsTotal: t.errorsTotal + s.errorsTotal,
              failoversTotal: t.failoversTotal + s.failoversTotal,
              ejectionsTotal: t.ejectionsTotal + s.ejectionsTotal,
              // Each worker rounds to 0.1; so does the sum.
              requestsPerSecond: Math.round((t.requestsPerSecond + s.requestsPerSecond) * 10) / 10,
              routerActive: t.routerActive + s.routerActive,
              routerQueued: t.routerQueued + s.routerQueued,
            },
      );
    }
  }
  return total;
}
