import { describe, expect, it } from 'vitest';
import { runScenario, SCENARIOS } from '../../src/sim/scenarios.js';
import { REDIS_MISSING } from '../support/system-program.js';

/**
 * Every scenario in a short bounded form, against the real multi-process topology (redis-server,
 * five orchestrator processes, a router process). A failed expectation fails the test with the report.
 */
describe.skipIf(REDIS_MISSING)('simulation scenarios (short)', () => {
  it.each(Object.keys(SCENARIOS))('%s holds its expectations', async (name) => {
    const lines: string[] = [];
    const result = await runScenario(name, { durationS: 9, rps: 30, root: process.cwd(), log: (l) => lines.push(l) });
    console.log(result.report);
    expect(result.failures, result.report).toEqual([]);
    expect(result.report).toMatch(new RegExp(`^scenario ${name}: \\d+ requests, 0 errors`));
  }, 60_000);
});
