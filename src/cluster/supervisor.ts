/**
 * The cluster primary of `edge-router router --workers N`: forks the workers, replaces any that
 * die (with backoff), forwards shutdown, and makes the workers one router. Over each worker's IPC
 * link it answers questions about the whole router (whole-router.ts) and, when there is no Redis,
 * holds the one memory registry every worker uses (registry/primary-registry.ts) and runs the
 * one prober that feeds it, so N workers do not keep N different views of the regions. It relays
 * each worker's penalties to the others (shared-penalties.ts), and a sibling's last-known registry
 * state to a worker that cannot read Redis at its start (registry-seed.ts).
 */
import cluster, { type Worker } from 'node:cluster';
import type { RegionConfig } from '../core/types.js';
import type { Logger } from '../observability/logger.js';
import type { HealthRegistry } from '../registry/health-registry.js';
import { serveRegistry } from '../registry/primary-registry.js';
import { Prober, probeHeartbeatTtlMs, type ProberOptions } from '../registry/prober.js';
import { workerSlotEnv } from './worker-slot.js';
import { MessageLink, workerEnd } from './message-link.js';
import { ClusterAnswers } from './whole-router.js';
import { PenaltyRelay } from './shared-penalties.js';
import { thrownText } from '../core/errors.js';
import { LastKnownRelay } from './registry-seed.js';
import { CRASH_LOOP_DEATHS, crashLooping, deathsInRow, restartDelayMs, servedMs } from './restart-backoff.js';
import { SlotSuccession } from './slot-succession.js';
import { hungAfterMs, startDeadlineMs } from './hang-threshold.js';
import { watchHeartbeat } from './heartbeat-watch.js';

/** A worker's side of the heartbeat (heartbeat-watch.ts), for the worker's start. */
export { answerHeartbeats } from './heartbeat-watch.js';

export interface SupervisorOptions {
  readonly workers: number;
  readonly logger: Logger;
  /** Resolves when the router should stop (SIGTERM, SIGINT). */
  readonly stopRequested: Promise<void>;
  /** The memory registry to hold for every worker; null when the workers share Redis instead. */
  readonly registry: HealthRegistry | null;
  /** Active health probes into `registry` (only with a held registry). */
  readonly probe: (Omit<ProberOptions, 'onHeartbeat' | 'regions'> & { readonly intervalMs: number }) | null;
  readonly regions: readonly RegionConfig[];
  /** How long a worker may drain after SIGTERM before it is killed (the router's drain timeout plus a margin). */
  readonly stopTimeoutMs: number;
  /** More environment for every worker, replacements too. */
  readonly workerEnv?: Record<string, string>;
  /** Run before each worker is forked (a replacement too): puts back what the workers read, should it be gone. */
  readonly beforeFork?: () => Promise<void>;
}

/** Resolves with the exit code: 0 after a requested stop, 2 when a worker failed on its configuration, 1 in a crash loop (crashLooping). */
export async function superviseWorkers(options: SupervisorOptions): Promise<number> {
  const { logger, registry } = options;
  // Read before any worker starts: a bad test-only value stops the router here, not a worker later.
  const hungAfter = hungAfterMs(process.env);
  const startDeadline = startDeadlineMs(process.env);
  let stopping = false;
  // Deaths in a row per slot (restart-backoff.ts).
  const deathsBySlot = new Map<number, number>();
  /**
   * When each worker began to serve (it listened), and when it stopped accepting (its drain
   * began): a refill's backoff counts how long the worker it replaces served, to its drain
   * (servedMs; a successor refilled only at its predecessor's exit had otherwise been counted that
   * whole drain, up to 65 s, as lived).
   */
  const listenedAt = new WeakMap<Worker, number>();
  const drainedAt = new WeakMap<Worker, number>();
  const livedMs = (worker: Worker) => servedMs(listenedAt.get(worker), drainedAt.get(worker) ?? Date.now());
  // Registry snapshots carry Maps and Sets: the IPC channel must use structured clone.
  cluster.setupPrimary({ serialization: 'advanced' });
  const answers = new ClusterAnswers({
    onMissing: (question, reason) => logger.warn({ event: 'cluster_part_missing', question, reason }, 'a worker did not answer: its part is missing from this answer'),
  });
  const penalties = new PenaltyRelay();
  const lastKnown = new LastKnownRelay();
  // A worker exits 2 for a usage or configuration error (a bad certificate, GeoIP file, port in
  // use): it has said so on stderr, and a new worker would fail the same way. Stop, exit 2 — but
  // only while no other worker serves. A replacement reads its files afresh: a regions.json or
  // certificate being edited when one worker dies made it exit 2, and the primary then stopped
  // every healthy worker (one worker's crash became the whole router's outage). While others
  // serve, its slot is retried with backoff, and filled once the files are good again.
  const serving = new Set<Worker>();
  /** Whether any worker has begun to serve since the primary started (crashLooping). */
  let everServed = false;
  // The router's own end, with its exit code: 2 for a worker's configuration, 1 for a crash loop.
  let gaveUp: (code: 1 | 2) => void = () => undefined;
  const givenUp = new Promise<1 | 2>((resolve) => (gaveUp = resolve));

  const restartTimers = new Set<NodeJS.Timeout>();
  // A slot is refilled when its worker stops accepting, or dies before it could say so (slot-succession.ts).
  const succession = new SlotSuccession<Worker>();
  /** `death`: what is known of the death that frees the slot, for the log should it end the router. */
  const refill = (slot: number, livedMs: number, death: Record<string, unknown> = {}) => {
    const inRow = deathsInRow(deathsBySlot.get(slot) ?? 0, livedMs);
    deathsBySlot.set(slot, inRow);
    if (crashLooping(deathsBySlot, options.workers, everServed)) {
      logger.error(
        { event: 'cluster_crash_loop', ...death, deathsInRowEach: CRASH_LOOP_DEATHS, workers: options.workers },
        'every router worker failed in its start, again and again, and none has served: stopping the router (exit 1; the fields: the last failure)',
      );
      return gaveUp(1);
    }
    const timer = setTimeout(() => {
      restartTimers.delete(timer);
      fork(slot).catch((err: unknown) => {
        // cluster.fork throws on some errors (ENOMEM under strict overcommit): tried again after
        // the backoff, as after a death (logged only, the slot had stayed empty until a restart).
        logger.error({ event: 'worker_fork_failed', error: thrownText(err) }, 'could not start a router worker; trying again');
        if (!stopping) refill(slot, 0, { error: thrownText(err) });
      });
    }, restartDelayMs(inRow));
    // Not unref'd: when every worker has died at once, this timer is all that keeps the primary
    // alive until it forks again (it is cleared on stop).
    restartTimers.add(timer);
  };
  // Each worker has a slot 0..N-1 (its share of idle containers under latency routing); a
  // replacement takes the slot of the worker it replaces.
  const fork = async (slot: number) => {
    // A restart timer that fires during shutdown must not fork a worker nobody will stop.
    if (stopping) return;
    await options.beforeFork?.().catch((err: unknown) => logger.warn({ event: 'worker_fork_prepare_failed', error: thrownText(err) }, 'could not prepare the files a new worker reads; forking it anyway'));
    if (stopping) return;
    const worker = cluster.fork({ ...options.workerEnv, ...workerSlotEnv(slot, options.workers) });
    // With the worker's own "edge router ready", the line that tells how long its start took.
    logger.info({ event: 'worker_forked', pid: worker.process.pid, slot }, 'started a router worker');
    succession.forked(slot, worker);
    const link = new MessageLink(workerEnd(worker));
    const detach = answers.attach(link);
    const stopRelaying = penalties.attach(link);
    const stopSeeding = lastKnown.attach(link);
    // Listened for before anything is awaited: a worker that dies while the registry is being
    // served to it must still be detached (or every admin write would wait for it for ever).
    let stopServing: (() => unknown) | undefined;
    let exited = false;
    worker.once('listening', () => {
      listenedAt.set(worker, Date.now());
      serving.add(worker);
      everServed = true;
    });
    const stopWatching = watchHeartbeat(link, {
      hungAfterMs: hungAfter,
      startDeadlineMs: startDeadline,
      serving: () => serving.has(worker),
      started: () => answers.hasAnnounced(link),
      // Killed during the router's stop too: a stuck worker cannot run the SIGTERM that drains it,
      // and was left holding its connections until the drain timeout, logged as an overrun.
      onHung: (silence) => {
        if (silence.countedFrom === 'fork') {
          logger.error(
            { event: 'worker_start_stuck', pid: worker.process.pid, startDeadlineMs: startDeadline, countedMs: silence.silentMs },
            'router worker did not begin to serve by its start deadline (stuck in its start): killing it',
          );
        } else {
          // silentMs names the threshold, as it always has; how long it was found silent follows it.
          logger.error(
            { event: 'worker_hung', pid: worker.process.pid, silentMs: hungAfter, countedSilentMs: silence.silentMs, heardMsAgo: silence.heardMsAgo, countedFrom: silence.countedFrom },
            'router worker stopped answering (its event loop is stuck): killing it',
          );
        }
        worker.process.kill('SIGKILL');
      },
    });
    // A process that could not be started (EAGAIN at a pids limit, EMFILE, ENOENT) is an 'error'
    // on the worker and never an 'exit': unheard, it was an uncaught exception that stopped the
    // whole router. It ends as a death does (its slot refilled after the backoff).
    worker.on('error', (err: Error) => {
      logger.error({ event: 'worker_error', pid: worker.process.pid, error: thrownText(err) }, 'a router worker reported an error');
      if (worker.process.pid !== undefined || exited) return;
      // node:cluster forgets a worker when its process exits, which this one never does.
      delete cluster.workers?.[worker.id];
      ended(null, null);
    });
    const ended = (code: number | null, signal: string | null) => {
      if (exited) return;
      exited = true;
      serving.delete(worker);
      stopWatching();
      detach();
      stopRelaying();
      stopSeeding();
      link.close();
      void stopServing?.();
      if (stopping) return;
      if (code === 2 && serving.size === 0) return gaveUp(2);
      const replaced = succession.exited(slot, worker);
      if (replaced !== worker) {
        logger.info(
          { event: 'worker_exited', pid: worker.process.pid, code, signal, ...(replaced === undefined ? {} : { replacing: replaced.process.pid }) },
          replaced === undefined
            ? 'a draining router worker exited (its slot was refilled when its drain began)'
            : 'a draining router worker exited: its successor, which stopped accepting meanwhile, is replaced now',
        );
        // The successor's life, not this one's: a successor that faulted within seconds of its
        // fork is a death in a row, however long its predecessor had lived.
        if (replaced !== undefined) refill(slot, livedMs(replaced));
        return;
      }
      logger.error({ event: 'worker_died', pid: worker.process.pid, code, signal }, 'router worker died; starting a new one');
      refill(slot, livedMs(worker), { pid: worker.process.pid, code, signal });
    };
    worker.on('exit', ended);
    link.handle(DRAIN_BEGAN, async (cause: DrainCause) => {
      // A signal may have reached every process of the group at once (Ctrl-C in a terminal,
      // systemd's control-group kill): the primary's own is handled a moment later, and this
      // worker's drain is then the router's stop, not its own. A fault is the worker's alone.
      if (cause === 'signal') await new Promise((resolve) => setTimeout(resolve, GROUP_SIGNAL_SETTLE_MS));
      if (stopping || exited) return false;
      if (!drainedAt.has(worker)) drainedAt.set(worker, Date.now());
      const now = succession.drainBegan(slot, worker);
      // A warning: the worker logged why (a fault says so at level 60).
      logger.warn(
        { event: 'worker_draining', pid: worker.process.pid, cause, replacedNow: now },
        now
          ? 'router worker stopped accepting (a fault, or a signal of its own): starting its replacement while it drains'
          : 'router worker stopped accepting while its predecessor still drains: its replacement starts when one of them exits',
      );
      if (now) refill(slot, livedMs(worker));
      return true;
    });
    stopServing = registry === null ? undefined : await serveRegistry(registry, link);
    if (exited) void stopServing?.();
  };
  for (let slot = 0; slot < options.workers; slot++) await fork(slot);
  logger.info({ event: 'cluster', workers: options.workers, registry: registry === null ? 'redis' : 'memory (held by the primary)' }, `started ${options.workers} router workers`);

  let prober: Prober | undefined;
  if (registry !== null && options.probe !== null) {
    const ttlMs = probeHeartbeatTtlMs(options.probe.intervalMs, options.probe.timeoutMs);
    prober = new Prober({ ...options.probe, regions: options.regions, onHeartbeat: (hb) => registry.writeHeartbeat(hb, ttlMs) });
    prober.start();
  }

  const ended = await Promise.race([options.stopRequested.then(() => 0 as const), givenUp]);
  stopping = true;
  for (const timer of restartTimers) clearTimeout(timer);
  await Promise.all(Object.values(cluster.workers ?? {}).map((w) => stopWorker(w, options.stopTimeoutMs, logger)));
  await prober?.stop();
  await registry?.close();
  return ended;
}

const DRAIN_BEGAN = 'worker.drainBegan';

/** Why a worker drains: a fault of its own, or a signal (the primary's SIGTERM, or one sent to it alone). */
export type DrainCause = 'fault' | 'signal';

/**
 * How long the primary waits, told of a worker's drain on a signal, before it judges whether the
 * worker drains alone: a signal sent to the whole process group reaches the primary too, and its
 * handler runs within this (its event loop is idle but for the prober and the IPC answers).
 */
const GROUP_SIGNAL_SETTLE_MS = 200;

/** How long a worker waits for the primary's judgement of its drain (the settle above, and a margin). */
const DRAIN_JUDGEMENT_TIMEOUT_MS = 2_000;

/**
 * A worker's side: tells the primary it has stopped accepting (its drain has begun), and resolves
 * true when it drains alone (a fault, or a signal of its own) while the router goes on: its slot
 * is then refilled now rather than at its exit, up to the drain timeout later, and the worker
 * should leave the admin port to the others (they are ready: it is not). False when the router stops (the primary
 * sent the signal, or was sent it too), or when the primary did not answer: the worker keeps the
 * admin port, whose /readyz then says 503 as the router's whole drain should.
 */
export async function announceDraining(link: MessageLink, cause: DrainCause): Promise<boolean> {
  try {
    return (await link.call<boolean>(DRAIN_BEGAN, [cause], DRAIN_JUDGEMENT_TIMEOUT_MS)) === true;
  } catch {
    return false;
  }
}

/**
 * SIGTERM (the worker drains), then SIGKILL if it has not exited within `timeoutMs`. The kill is
 * logged: whatever the worker still held was cut with it, and its own log says nothing of that.
 */
function stopWorker(worker: Worker | undefined, timeoutMs: number, logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    if (worker === undefined || worker.isDead()) return resolve();
    const kill = setTimeout(() => {
      logger.error({ event: 'worker_drain_overrun', pid: worker.process.pid, waitedMs: timeoutMs }, 'router worker had not exited after its drain: killing it (what it still held is cut)');
      worker.process.kill('SIGKILL');
    }, timeoutMs);
    worker.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    worker.process.kill('SIGTERM');
  });
}
