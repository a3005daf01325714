/**
 * `npm run bench:registry`: what the function directory costs a router's event loop, with 20,000
 * functions in a real Redis (REDIS_URL, default redis://127.0.0.1:6379; under a random key prefix,
 * deleted afterwards):
 *  - a whole read (start, the 5-minute read, a message it could not follow), paged as a router's
 *    watcher reads, and in one reply as the CLI reads: its time and the longest event-loop pause;
 *  - a reconcile that holds the directory (the 10 s read): its time;
 *  - a burst of deploys reaching a running watcher entry by entry: time until the last is in its
 *    snapshot, and the longest pause meanwhile.
 * Each with the process's CPU time. The last line is exactly `registry reconcile/whole read: R`
 * (time of a reconcile ÷ a whole read).
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { packageRoot } from '../src/cli/package-root.js';
import { loadRegionsFile } from '../src/config/load-regions.js';
import { RedisRegistry } from '../src/registry/redis-registry.js';
import { RegistryWatcher } from '../src/registry/registry-watcher.js';
import { envInt } from './env-int.js';

const FUNCTIONS = envInt('BENCH_REGISTRY_FUNCTIONS', 20_000, 1, 1_000_000);
const DEPLOYS = envInt('BENCH_REGISTRY_DEPLOYS', 200, 1, 10_000);
const ROUNDS = 5;
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const keyPrefix = `bench:${randomUUID()}:`;
const configured = (await loadRegionsFile(join(packageRoot(), 'regions.json'))).regions;
const regions = configured.map((r) => r.id);

/** Runs `work`, resolving with its duration, the process's CPU time meanwhile and the longest event-loop pause (ms). */
async function timed(work: () => Promise<unknown>): Promise<{ ms: number; cpuMs: number; pauseMs: number }> {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const started = performance.now();
  const cpu = process.cpuUsage();
  await work();
  const used = process.cpuUsage(cpu);
  const ms = performance.now() - started;
  // The histogram takes a pause when its timer next fires: one that ended just now is recorded
  // only after this turn of the event loop, so wait for a tick of it before reading.
  await new Promise((resolve) => setTimeout(resolve, 5));
  delay.disable();
  return { ms, cpuMs: (used.user + used.system) / 1_000, pauseMs: delay.max / 1e6 };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const fmt = (ms: number) => ms.toFixed(ms < 10 ? 2 : 1);

const raw = new Redis(url);
const registry = new RedisRegistry({ url, keyPrefix, regions });
const removeKeys = async () => {
  const keys = await raw.keys(`${keyPrefix}*`);
  if (keys.length > 0) await raw.del(...keys);
};
// Stopped by a signal, the finally below never runs: 20,000 fields would stay in a Redis that may
// be shared, under a random prefix nothing finds again.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: removing the benchmark's keys (${keyPrefix}*)`);
    void removeKeys().finally(() => process.exit(130));
  });
}
try {
  await registry.ready();
  const fields: string[] = [];
  for (let i = 0; i < FUNCTIONS; i++) {
    const org = `org${i % 2_000}`;
    fields.push(`${org}/fn-${i}`, JSON.stringify({ org, fn: `fn-${i}`, regions: i % 3 === 0 ? [regions[0], regions[1]] : null, tier: 'standard', enabled: true }));
  }
  for (let i = 0; i < fields.length; i += 2_000) await raw.hset(`${keyPrefix}functions`, ...fields.slice(i, i + 2_000));
  await registry.putFunction({ org: 'org0', fn: 'revision', regions: null, tier: 'standard', enabled: true }); // gives the part a revision

  type Timed = Awaited<ReturnType<typeof timed>>;
  const whole: Timed[] = [];
  const atomic: Timed[] = [];
  let state = await registry.readState(undefined, 'paged'); // warm-up (compilation)
  await registry.readState();
  for (let round = 0; round < ROUNDS; round++) {
    whole.push(await timed(async () => (state = await registry.readState(undefined, 'paged'))));
    atomic.push(await timed(() => registry.readState()));
  }
  const held = { generation: state.generation, revisions: state.revisions };
  const reconcile: Timed[] = [];
  for (let round = 0; round < ROUNDS; round++) reconcile.push(await timed(() => registry.readState(held)));

  const watcher = new RegistryWatcher({ registry, regions: configured, pollMs: 60_000, reconcileMs: 60_000 });
  await watcher.start();
  const burst = await timed(async () => {
    await Promise.all(Array.from({ length: DEPLOYS }, (_, i) => registry.putFunction({ org: `org${i}`, fn: `deployed-${i}`, regions: null, tier: 'standard', enabled: true })));
    const last = `deployed-${DEPLOYS - 1}`;
    while (watcher.snapshot.functions.get(`org${DEPLOYS - 1}`)?.has(last) !== true) await new Promise((resolve) => setTimeout(resolve, 1));
  });
  await watcher.stop();

  const wholeMs = median(whole.map((w) => w.ms));
  const reconcileMs = median(reconcile.map((r) => r.ms));
  const cpu = (reads: Timed[]) => `CPU ${fmt(median(reads.map((r) => r.cpuMs)))} ms`;
  console.log(`functions: ${FUNCTIONS}, ${ROUNDS} rounds each, medians`);
  const pauses = (reads: Array<{ pauseMs: number }>) => `longest event-loop pause ${fmt(median(reads.map((w) => w.pauseMs)))} ms (max ${fmt(Math.max(...reads.map((w) => w.pauseMs)))})`;
  console.log(`whole read:     ${fmt(wholeMs)} ms, ${cpu(whole)}, ${pauses(whole)} (paged, as a router's watcher reads)`);
  console.log(`atomic read:    ${fmt(median(atomic.map((w) => w.ms)))} ms, ${cpu(atomic)}, ${pauses(atomic)} (one reply: the CLI, backups)`);
  console.log(`reconcile:      ${fmt(reconcileMs)} ms, ${cpu(reconcile)} (the directory held, unchanged)`);
  console.log(`${DEPLOYS} deploys:    in the watcher's snapshot after ${fmt(burst.ms)} ms, CPU ${fmt(burst.cpuMs)} ms, longest event-loop pause ${fmt(burst.pauseMs)} ms`);
  console.log(`registry reconcile/whole read: ${(reconcileMs / wholeMs).toFixed(4)}`);
} finally {
  await removeKeys();
  raw.disconnect();
  await registry.close();
}
