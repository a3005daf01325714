/**
 * Scripted simulation scenarios: what load to offer, what to break and when, and what must hold
 * afterwards. Each returns the report lines and the failed expectations (empty = passed).
 */
import { generateLoad, type LoadPhase, type Sample } from './load-generator.js';
import { formatReport, summarize } from './report.js';
import { SimTopology, type TopologyOptions } from './topology.js';
import { runLongTail } from './long-tail.js';
import { scheduleActions } from './scenario-actions.js';
import { evenly, NEAREST_REGION, SCENARIO_METRO_IDS, SCENARIO_METROS } from './scenario-metros.js';
import { runSteadyCompare } from './steady-compare.js';
import type { ScriptedScenario } from './scenario-names.js';

export interface ScenarioRun {
  readonly durationS: number;
  /** Total requests per second across the client metros, before any spike. */
  readonly rps: number;
  readonly root: string;
  readonly log: (line: string) => void;
  /** The router's routing mode (default: the router's own, latency); long-tail and steady-compare run both whatever this says. */
  readonly routing?: 'nearest' | 'latency';
  /** long-tail: add a run with every function hedging (latency routing). */
  readonly hedge?: boolean;
}

export interface ScenarioResult {
  readonly report: string;
  readonly failures: readonly string[];
}

interface Script {
  readonly topology?: Omit<TopologyOptions, 'root' | 'log'>;
  readonly host: string;
  readonly path: string;
  readonly phases: (run: ScenarioRun) => LoadPhase[];
  /** Actions at whole seconds of the run. */
  readonly at?: (run: ScenarioRun, topology: SimTopology, marks: Map<string, number>) => Record<number, () => Promise<void>>;
  readonly check: (samples: readonly Sample[], run: ScenarioRun, marks: ReadonlyMap<string, number>) => { failures: string[]; facts: Record<string, string | number> };
  /**
   * What the end of the run waits for, up to EXTEND_MAX_S past its duration: an expectation about
   * the system catching up (traffic back at a restarted region) holds however busy the machine is,
   * and `check` still fails it when it never happens. Given the samples that came in since its
   * last look, not all of them again.
   */
  readonly waitFor?: (samples: readonly Sample[], marks: ReadonlyMap<string, number>) => boolean;
}

/** The longest a run is extended for its `waitFor`. */
const EXTEND_MAX_S = 15;

/** A London request answered by fra once the mark `after` is set (fra restarted or undrained). */
function londonBackAtFra(samples: readonly Sample[], marks: ReadonlyMap<string, number>, after: string): Sample | undefined {
  const from = marks.get(after);
  if (from === undefined) return undefined;
  const fromMs = from - marks.get('start')!;
  return samples.find((s) => s.metro === 'london' && s.error === null && s.at >= fromMs && s.region === 'fra');
}

function nearestShare(samples: readonly Sample[], metro: keyof typeof NEAREST_REGION, fromMs = 0, toMs = Infinity): number {
  const mine = samples.filter((s) => s.metro === metro && s.error === null && s.at >= fromMs && s.at < toMs);
  return mine.length === 0 ? 1 : mine.filter((s) => s.region === NEAREST_REGION[metro]).length / mine.length;
}

function noErrors(samples: readonly Sample[]): string[] {
  const failed = samples.filter((s) => s.error !== null);
  return failed.length === 0 ? [] : [`${failed.length} requests failed (${[...new Set(failed.map((s) => s.error))].join(', ')}); expected none`];
}

const third = (run: ScenarioRun) => Math.max(1, Math.round(run.durationS / 3));

/** The scripted scenarios: one per name of scenario-names.ts, no more, no fewer. */
export const SCENARIOS: Readonly<Record<string, Script>> = {
  steady: {
    host: 'echo-demo.telnyxcompute.com',
    path: '/',
    phases: (run) => [{ fromS: 0, rps: evenly(run.rps) }],
    check: (samples, run) => {
      const failures = noErrors(samples);
      // A fresh topology has no warm container: its first requests start some. None counted means
      // the client no longer sees x-edge-container (as from 2026-12-03 until this check).
      if (!samples.some((s) => s.cold)) failures.push('no cold start seen at the client; expected some on a fresh topology (is x-edge-container reaching the client?)');
      // The steady state, after the first third: until every region has containers, latency
      // routing answers a metro from wherever one is warm (Atlanta from Sydney rather than a
      // 300 ms cold start at home), and that is the warm-up, not the steady state.
      const fromMs = third(run) * 1_000;
      for (const metro of SCENARIO_METRO_IDS) {
        const share = nearestShare(samples, metro, fromMs);
        if (share < 0.95) failures.push(`${metro}: only ${Math.round(share * 100)}% went to ${NEAREST_REGION[metro]} after the first ${fromMs / 1000} s; expected ≥ 95%`);
      }
      return { failures, facts: {} };
    },
  },

  'region-outage': {
    host: 'echo-demo.telnyxcompute.com',
    path: '/',
    phases: (run) => [{ fromS: 0, rps: evenly(run.rps) }],
    at: (run, topology, marks) => ({
      [third(run)]: async () => {
        marks.set('killed', performance.now());
        await topology.killOrchestrator('fra');
      },
      [2 * third(run)]: async () => {
        await topology.startOrchestrator('fra');
        marks.set('restarted', performance.now());
      },
    }),
    waitFor: (samples, marks) => londonBackAtFra(samples, marks, 'restarted') !== undefined,
    check: (samples, _run, marks) => {
      const failures = noErrors(samples);
      const killedAt = marks.get('killed')! - marks.get('start')!;
      const restartedAt = marks.get('restarted')! - marks.get('start')!;
      const london = samples.filter((s) => s.metro === 'london' && s.error === null);
      const firstAway = london.find((s) => s.at >= killedAt && s.region !== 'fra');
      const markedDown = london.find((s) => s.at >= killedAt && s.route === 'failover:fra-down');
      const back = londonBackAtFra(samples, marks, 'restarted');
      if (firstAway === undefined) failures.push('London was never served elsewhere while fra was dead');
      if (back === undefined) failures.push('traffic did not return to fra after its restart');
      return {
        failures,
        facts: {
          'fra killed at': `${(killedAt / 1000).toFixed(1)} s`,
          'failover (first London request answered elsewhere)': firstAway ? `${Math.round(firstAway.at - killedAt)} ms after the kill` : 'never',
          'registry marked fra down': markedDown ? `${Math.round(markedDown.at - killedAt)} ms after the kill` : 'not within the run',
          'traffic back at fra': back ? `${Math.round(back.at - restartedAt)} ms after the restart` : 'never',
        },
      };
    },
  },

  'redis-outage': {
    host: 'echo-demo.telnyxcompute.com',
    path: '/',
    phases: (run) => [{ fromS: 0, rps: evenly(run.rps) }],
    at: (run, topology, marks) => ({
      [third(run)]: async () => {
        marks.set('redis-down', performance.now());
        await topology.stopRedis();
      },
      [2 * third(run)]: async () => {
        await topology.startRedis();
        marks.set('redis-up', performance.now());
      },
    }),
    check: (samples, _run, marks) => {
      const failures = noErrors(samples);
      const down = marks.get('redis-down')! - marks.get('start')!;
      const up = marks.get('redis-up')! - marks.get('start')!;
      for (const metro of SCENARIO_METRO_IDS) {
        const share = nearestShare(samples, metro, down, up);
        if (share < 0.95) failures.push(`${metro}: only ${Math.round(share * 100)}% went to ${NEAREST_REGION[metro]} while Redis was down; expected routing to go on`);
      }
      return { failures, facts: { 'Redis down for': `${((up - down) / 1000).toFixed(1)} s`, 'requests during the outage': samples.filter((s) => s.at >= down && s.at < up).length } };
    },
  },

  spike: {
    // A small Frankfurt and a function that holds its container: ten times London's traffic fills it.
    topology: { capacity: { fra: { soft: 4, hard: 8 } } },
    host: 'slow-demo.telnyxcompute.com',
    path: '/?ms=150',
    phases: (run) => [
      { fromS: 0, rps: evenly(run.rps) },
      { fromS: third(run), rps: { ...evenly(run.rps), london: (run.rps / SCENARIO_METROS.length) * 10 } },
      { fromS: 2 * third(run), rps: evenly(run.rps) },
    ],
    check: (samples, run) => {
      const failures = noErrors(samples);
      const spikeFrom = third(run) * 1_000;
      const spikeTo = 2 * third(run) * 1_000;
      const london = samples.filter((s) => s.metro === 'london' && s.error === null && s.at >= spikeFrom && s.at < spikeTo);
      const spilled = london.filter((s) => s.region !== 'fra').length;
      const spillRoutes = samples.filter((s) => (s.route ?? '').startsWith('spill:fra')).length;
      if (spilled === 0) failures.push('no London request spilled to another region during the spike');
      return {
        failures,
        facts: {
          'London during the spike': `${london.length} requests, ${spilled} served outside fra (${Math.round((spilled / Math.max(1, london.length)) * 100)}%)`,
          'requests routed with spill:fra-*': spillRoutes,
        },
      };
    },
  },

  drain: {
    host: 'echo-demo.telnyxcompute.com',
    path: '/',
    phases: (run) => [{ fromS: 0, rps: evenly(run.rps) }],
    at: (run, topology, marks) => ({
      [third(run)]: async () => {
        marks.set('drained', performance.now());
        await topology.drain('fra', true);
        marks.set('drainWritten', performance.now());
      },
      [2 * third(run)]: async () => {
        // Marked before the write: a request sent while the undrain is in flight counts as after it.
        marks.set('undrained', performance.now());
        await topology.drain('fra', false);
      },
    }),
    waitFor: (samples, marks) => londonBackAtFra(samples, marks, 'undrained') !== undefined,
    check: (samples, _run, marks) => {
      const failures = noErrors(samples);
      const drainedAt = marks.get('drained')! - marks.get('start')!;
      const undrainedAt = marks.get('undrained')! - marks.get('start')!;
      const london = samples.filter((s) => s.metro === 'london' && s.error === null);
      // Only requests answered before the undrain began: one sent just before it can reach the router
      // after the undrain is applied (a new TLS connection on a loaded core), and fra rightly takes
      // it. Counted by when it was sent, it read as London traffic at fra the whole drain long (a
      // CI run showed 4 s, the length of the drain).
      const lastAtFra = [...london].reverse().find((s) => s.at >= drainedAt && s.at + s.latencyMs < undrainedAt && s.region === 'fra');
      const movedWithinMs = lastAtFra === undefined ? 0 : lastAtFra.at - drainedAt;
      // How long Redis took to take the write, and the late request's route, say where a slow move
      // came from (a loaded machine once showed 4 s: the write, the router's read, or a failover).
      const writeMs = (marks.get('drainWritten') ?? marks.get('drained')!) - marks.get('drained')!;
      if (movedWithinMs > 1_000) failures.push(`London traffic still reached fra ${Math.round(movedWithinMs)} ms after the drain (its write took ${Math.round(writeMs)} ms; that request's route: ${lastAtFra?.route ?? 'none'}); expected within 1 s`);
      const back = londonBackAtFra(samples, marks, 'undrained');
      if (back === undefined) failures.push('traffic did not return to fra after undrain');
      return {
        failures,
        facts: { 'traffic moved off fra within': `${Math.round(movedWithinMs)} ms of the drain (written in ${Math.round(writeMs)} ms)`, 'back at fra after undrain': back ? `${Math.round(back.at - undrainedAt)} ms` : 'never' },
      };
    },
  },
} satisfies Record<ScriptedScenario, Script>;

export async function runScenario(name: string, run: ScenarioRun): Promise<ScenarioResult> {
  if (name === 'long-tail') return runLongTail(run);
  if (name === 'steady-compare') return runSteadyCompare(run);
  const script = SCENARIOS[name];
  if (script === undefined) throw new Error(`unknown scenario ${name}`);
  run.log(`scenario ${name}: starting redis, five orchestrators and a router…`);
  const topology = await SimTopology.start({ root: run.root, log: run.log, ...script.topology, ...(run.routing === undefined ? {} : { routerFlags: ['--routing', run.routing] }) });
  const marks = new Map<string, number>();
  try {
    const actions = scheduleActions(script.at?.(run, topology, marks) ?? {});
    run.log(`scenario ${name}: ${run.durationS} s at ${run.rps} req/s from ${SCENARIO_METROS.length} metros`);
    marks.set('start', performance.now());
    const samples = await generateLoad({
      port: topology.httpsPort,
      host: script.host,
      path: script.path,
      metros: SCENARIO_METROS,
      phases: script.phases(run),
      durationS: run.durationS,
      ...(script.waitFor === undefined ? {} : { extend: { maxS: EXTEND_MAX_S, done: (so: readonly Sample[]) => actions.anyFailed() || script.waitFor!(so, marks) } }),
      onSecond: actions.onSecond,
    });
    const actionFailures = await actions.settled();
    // The script's checks reason from what its actions did: after one failed they would blame the router.
    const { failures, facts } = actionFailures.length > 0 ? { failures: actionFailures, facts: {} } : script.check(samples, run, marks);
    const lastAt = samples.length === 0 ? 0 : samples[samples.length - 1]!.at;
    const extended: Record<string, string> = lastAt > run.durationS * 1_000 ? { 'run extended (waiting for the system to catch up)': `to ${(lastAt / 1_000).toFixed(1)} s` } : {};
    return { report: formatReport(name, summarize(samples), { ...facts, ...extended }), failures };
  } finally {
    await topology.stop();
  }
}
