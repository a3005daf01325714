/**
 * `edge-router sim --scenario <name>` (`npm run sim -- --scenario <name>`): runs a scripted
 * scenario against a multi-process topology (redis-server, five orchestrators, a router), prints
 * the report and exits 1 when an expectation fails.
 */
import { UsageError } from '../core/errors.js';
import { runScenario } from '../sim/scenarios.js';
import { SCENARIO_NAMES } from '../sim/scenario-names.js';
import { stopLiveTopologies } from '../sim/topology.js';
import { boolFlag, sourceOf, stringFlag, valueOf, type ParsedFlags } from './flags.js';
import { stopCause, stopRequested, writeLine, type CliIo } from './io.js';
import { packageRoot } from './package-root.js';
import { parseChoice, parseInteger } from './parse-values.js';

export async function runSim(flags: ParsedFlags, io: CliIo): Promise<number> {
  const scenario = stringFlag(flags, 'scenario');
  if (scenario === undefined || (scenario !== 'all' && !SCENARIO_NAMES.includes(scenario))) {
    throw new UsageError(`${sourceOf(flags, 'scenario')}: expected one of ${SCENARIO_NAMES.join(', ')}, all`);
  }
  // long-tail needs two minutes to reach its steady state: in its first minute about one request
  // in ten names a function for the first time anywhere, and no routing can avoid that cold start.
  // steady-compare pools 12 alternating rounds of 5 s per mode: enough samples that a 5 % p50
  // difference is the routing's, not the noise's. Each scenario's own, with `all` too.
  const durationOf = (name: string) =>
    parseInteger(stringFlag(flags, 'duration') ?? (name === 'long-tail' ? '120' : name === 'steady-compare' ? '60' : '15'), sourceOf(flags, 'duration'), 3, 3_600);
  const rps = parseInteger(stringFlag(flags, 'rps') ?? '60', sourceOf(flags, 'rps'), 1, 5_000);
  const routing = parseChoice(valueOf(flags, 'routing'), sourceOf(flags, 'routing'), ['nearest', 'latency'] as const);
  const names = scenario === 'all' ? SCENARIO_NAMES : [scenario];
  // Each read before anything starts: a bad --duration is refused at once, not after a scenario.
  const durations = new Map(names.map((name) => [name, durationOf(name)]));
  const stopped = stopRequested(io).then(() => undefined);
  let failed = 0;
  for (const name of names) {
    const running = runScenario(name, { durationS: durations.get(name)!, rps, routing, hedge: boolFlag(flags, 'hedge'), root: packageRoot(), log: (line) => writeLine(io.stderr, line) });
    // SIGTERM / SIGINT: the run's processes are stopped now, not at the scenario's end (the
    // scenario, left without them, is not waited for: the process exits).
    const result = await Promise.race([running, stopped]);
    if (result === undefined) {
      running.catch(() => undefined);
      await stopLiveTopologies();
      writeLine(io.stderr, `sim: stopped by ${stopCause(io) === 'fault' ? 'a fault of its own' : 'a signal'} during ${name}: its processes are stopped; no verdict`);
      return 130;
    }
    writeLine(io.stdout, result.report);
    if (result.failures.length === 0) writeLine(io.stdout, `  PASS: ${name}\n`);
    else {
      failed++;
      writeLine(io.stdout, `  FAIL: ${name}\n${result.failures.map((f) => `    - ${f}`).join('\n')}\n`);
    }
  }
  return failed === 0 ? 0 : 1;
}
