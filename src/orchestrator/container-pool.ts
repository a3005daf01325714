/**
 * A region's containers, as the platform runs them: one request per container at a time; a
 * request takes an idle warm container of its function or starts one (cold start); at capacity
 * requests wait in a bounded, deadline-aware queue; idle containers are recycled after a
 * keep-alive period (scale to zero). Time is injected so the rules are testable without waiting.
 */

import type { ReportedFunction } from '../registry/health-registry.js';
import { monotonicNow } from '../core/monotonic-clock.js';
import { settledOrAborted } from '../core/settled-or-aborted.js';

export interface Container {
  readonly id: string;
  readonly fnKey: string;
  state: 'starting' | 'busy' | 'idle';
  lastUsedAt: number;
  requests: number;
}

export interface Lease {
  readonly container: Container;
  readonly cold: boolean;
  /** Time spent waiting in the queue and starting, in ms. */
  readonly waitedMs: number;
  /**
   * Of that, the time in the queue alone (0 when a container or a slot was free at once): the
   * rest, a cold start, already held the slot it was given, so it counts as service, not queueing.
   */
  readonly queuedMs: number;
}

export class CapacityError extends Error {
  override readonly name = 'CapacityError';
  constructor(
    message: string,
    /** Seconds the client should wait before retrying. */
    readonly retryAfterS: number,
  ) {
    super(message);
  }
}

export interface ContainerPoolOptions {
  /** Containers the region can run at once (its hard concurrency limit). */
  readonly maxContainers: number;
  /** Requests allowed to wait for a container. */
  readonly queueLimit: number;
  /** Cold start of a new container, in ms (drawn per start). */
  readonly coldStartMs: () => number;
  /** Idle time after which a container is recycled. */
  readonly keepAliveMs: number;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

/**
 * The request was over (its tier limit, or its client gone: `cause`, the signal's reason) while
 * its container was still starting. The start goes on, as the platform's does, and the container
 * is idle and warm for the next request once it has started.
 */
export class ColdStartAbandoned extends Error {
  override readonly name = 'ColdStartAbandoned';
  constructor(
    override readonly cause: unknown,
    /** Its time in the queue before the start (Lease.queuedMs): its service ran from there. */
    readonly queuedMs: number,
  ) {
    super('the request ended while its container was starting');
  }
}

interface Waiter {
  readonly fnKey: string;
  readonly deadlineAt: number;
  readonly enqueuedAt: number;
  readonly signal: AbortSignal | undefined;
  resolve(lease: Lease): void;
  reject(err: Error): void;
}

let nextId = 1;

/** Cold starts remembered per function for its median. */
const RECENT_COLD_STARTS = 5;

function median(values: readonly number[] | undefined): number | null {
  if (values === undefined || values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.floor(sorted.length / 2)]!);
}

export class ContainerPool {
  private readonly containers = new Set<Container>();
  private readonly queue: Waiter[] = [];
  private readonly coldStartTimes = new Map<string, number[]>();
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  coldStarts = 0;
  warmStarts = 0;
  prewarms = 0;
  rejected = 0;

  constructor(private readonly options: ContainerPoolOptions) {
    // Monotonic: a step of the wall clock recycled every idle container at once (forward) or kept them past keep-alive (back).
    this.now = options.now ?? monotonicNow;
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /**
   * Waits for a container of `fnKey`; rejects with CapacityError when the region is full and the
   * queue too. `signal` is the client's: once it aborts, a waiting request leaves the queue (a
   * client that went away must not hold a slot until its deadline), and none is taken for it; one
   * whose container is starting is answered then too (ColdStartAbandoned), not when it has started.
   */
  async acquire(fnKey: string, deadlineAt: number, signal?: AbortSignal): Promise<Lease> {
    signal?.throwIfAborted();
    const started = this.now();
    const idle = this.findIdle(fnKey);
    if (idle !== undefined) return this.lease(idle, false, started, 0);
    if (this.containers.size < this.options.maxContainers || this.evictIdle()) return this.coldStart(fnKey, started, 0, signal);
    if (this.queue.length >= this.options.queueLimit) {
      this.rejected++;
      throw new CapacityError('the region is at capacity', 1);
    }
    return new Promise<Lease>((resolve, reject) => {
      const leave = () => {
        const at = this.queue.indexOf(waiter);
        if (at === -1) return;
        this.queue.splice(at, 1);
        reject(signal!.reason as Error);
      };
      const settled = () => signal?.removeEventListener('abort', leave);
      const waiter: Waiter = {
        fnKey,
        deadlineAt,
        enqueuedAt: started,
        signal,
        resolve(lease) {
          settled();
          resolve(lease);
        },
        reject(err) {
          settled();
          reject(err);
        },
      };
      this.queue.push(waiter);
      signal?.addEventListener('abort', leave, { once: true });
    });
  }

  /**
   * Starts one container of `fnKey` ahead of demand (a router asked, having sent a request
   * elsewhere because this region was cold for it). Only into a free slot (nothing is evicted),
   * and not when one is starting already. An idle one does not refuse it: the router asked
   * because, counting its own requests still on their way here, none was left, and an idle
   * container seen at this instant is most likely about to be taken by one of them (refusing
   * then left a region with one container for two metros' traffic, sending every collision
   * across an ocean). What an ask can cost is bounded: one start at a time per function, free
   * slots only, each router's rate limit, and the keep-alive that recycles what stays unused.
   * True when a start began.
   */
  prewarm(fnKey: string): boolean {
    for (const c of this.containers) if (c.fnKey === fnKey && c.state === 'starting') return false;
    if (this.containers.size >= this.options.maxContainers) return false;
    const container: Container = { id: `c${(nextId++).toString(36)}`, fnKey, state: 'starting', lastUsedAt: this.now(), requests: 0 };
    this.containers.add(container);
    const startMs = this.options.coldStartMs();
    this.recordColdStart(fnKey, startMs);
    this.prewarms++;
    void this.sleep(startMs).then(() => {
      if (!this.containers.has(container)) return;
      this.release(container); // idle and warm: the next request (or a waiter) takes it
    });
    return true;
  }

  /** Gives a container back; the next waiter (if any) gets it or the slot it frees. */
  release(container: Container): void {
    if (!this.containers.has(container)) return; // killed meanwhile: nothing to give back
    container.state = 'idle';
    container.lastUsedAt = this.now();
    this.serveQueue();
  }

  /**
   * Stops a container for good, as the platform does one whose function runs on after its request
   * was cancelled: it is warm for no one, and its slot goes to the next waiter (or a cold start).
   */
  kill(container: Container): void {
    if (!this.containers.delete(container)) return;
    this.serveQueue();
  }

  /** Recycles containers idle for longer than keep-alive and fails waiters past their deadline. */
  sweep(): void {
    const now = this.now();
    for (const c of this.containers) {
      if (c.state === 'idle' && now - c.lastUsedAt >= this.options.keepAliveMs) this.containers.delete(c);
    }
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const w = this.queue[i]!;
      if (w.deadlineAt <= now) {
        this.queue.splice(i, 1);
        this.rejected++;
        w.reject(new CapacityError('no container became free before the deadline', 1));
      }
    }
  }

  /** Fails every waiter (shutdown). */
  rejectAll(reason: string): void {
    for (const w of this.queue.splice(0)) w.reject(new CapacityError(reason, 5));
  }

  /**
   * Per function with containers here, most recently used first, at most `limit` of them: idle
   * and busy containers and the median of its recent cold starts (for cold-start-aware routing).
   */
  functionLoads(limit: number): { functions: ReportedFunction[]; total: number } {
    const byFn = new Map<string, { idle: number; busy: number; lastUsedAt: number }>();
    for (const c of this.containers) {
      const f = byFn.get(c.fnKey) ?? { idle: 0, busy: 0, lastUsedAt: 0 };
      if (c.state === 'idle') f.idle++;
      else f.busy++;
      f.lastUsedAt = Math.max(f.lastUsedAt, c.lastUsedAt);
      byFn.set(c.fnKey, f);
    }
    // Forget the cold-start history of functions with no container left: the map stays bounded.
    for (const fnKey of this.coldStartTimes.keys()) if (!byFn.has(fnKey)) this.coldStartTimes.delete(fnKey);
    const functions = [...byFn]
      .sort(([, a], [, b]) => b.lastUsedAt - a.lastUsedAt)
      .slice(0, limit)
      .map(([fn, f]) => ({ fn, idle: f.idle, busy: f.busy, coldStartMs: median(this.coldStartTimes.get(fn)) }));
    return { functions, total: byFn.size };
  }

  stats(): { inFlight: number; containers: number; warmContainers: number; queued: number; warmFunctions: string[] } {
    let busy = 0;
    let warm = 0;
    const fns = new Set<string>();
    for (const c of this.containers) {
      if (c.state !== 'idle') busy++;
      if (c.state !== 'starting') {
        warm++;
        fns.add(c.fnKey);
      }
    }
    return { inFlight: busy, containers: this.containers.size, warmContainers: warm, queued: this.queue.length, warmFunctions: [...fns] };
  }

  private findIdle(fnKey: string): Container | undefined {
    for (const c of this.containers) if (c.state === 'idle' && c.fnKey === fnKey) return c;
    return undefined;
  }

  /** Frees a slot by recycling the least recently used idle container of any function. */
  private evictIdle(): boolean {
    let oldest: Container | undefined;
    for (const c of this.containers) if (c.state === 'idle' && (oldest === undefined || c.lastUsedAt < oldest.lastUsedAt)) oldest = c;
    if (oldest === undefined) return false;
    this.containers.delete(oldest);
    return true;
  }

  private lease(container: Container, cold: boolean, started: number, queuedMs: number): Lease {
    container.state = 'busy';
    container.requests++;
    if (cold) this.coldStarts++;
    else this.warmStarts++;
    return { container, cold, waitedMs: this.now() - started, queuedMs };
  }

  private async coldStart(fnKey: string, started: number, queuedMs: number, signal: AbortSignal | undefined): Promise<Lease> {
    const container: Container = { id: `c${(nextId++).toString(36)}`, fnKey, state: 'starting', lastUsedAt: this.now(), requests: 0 };
    this.containers.add(container);
    const startMs = this.options.coldStartMs();
    this.recordColdStart(fnKey, startMs);
    const ready = this.sleep(startMs);
    // A start longer than what is left of the request's limit (or a client gone meanwhile): its
    // 504 was due at the limit, not when the container came up; the slot stays taken until then.
    if (signal === undefined) await ready;
    else if (!(await settledOrAborted(ready, signal).then(() => true, () => false))) {
      this.coldStarts++; // it happened, for no request
      void ready.then(() => this.release(container));
      throw new ColdStartAbandoned(signal.reason, queuedMs);
    }
    return this.lease(container, true, started, queuedMs);
  }

  /** Keeps the last few cold-start times per function (bounded: dropped with the function's last container). */
  private recordColdStart(fnKey: string, ms: number): void {
    const recent = this.coldStartTimes.get(fnKey) ?? [];
    recent.push(ms);
    if (recent.length > RECENT_COLD_STARTS) recent.shift();
    this.coldStartTimes.set(fnKey, recent);
  }

  private serveQueue(): void {
    while (this.queue.length > 0) {
      const waiter = this.queue[0]!;
      const idle = this.findIdle(waiter.fnKey);
      if (idle !== undefined) {
        this.queue.shift();
        waiter.resolve(this.lease(idle, false, waiter.enqueuedAt, this.now() - waiter.enqueuedAt));
        continue;
      }
      if (this.containers.size < this.options.maxContainers || this.evictIdle()) {
        this.queue.shift();
        this.coldStart(waiter.fnKey, waiter.enqueuedAt, this.now() - waiter.enqueuedAt, waiter.signal).then(waiter.resolve, waiter.reject);
        continue;
      }
      return;
    }
  }
}
