/**
 * `edge-router sim` as a real process: stopped by a signal mid-scenario, it stops the topology it
 * started (redis-server, five orchestrators, a router) there and then.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { processAlive, runEdgeRouter, type RunningProcess } from '../support/process.js';
import { REDIS_MISSING } from '../support/system-program.js';
import { until } from '../support/until.js';

const running: RunningProcess[] = [];
afterEach(async () => {
  for (const proc of running.splice(0)) await proc.stop('SIGKILL');
});

describe.skipIf(REDIS_MISSING)('edge-router sim, stopped by a signal', () => {
  it('stops the processes of the scenario under way at once and exits 130, where it ran on (the first signal only aborted what nothing read)', async () => {
    const proc = runEdgeRouter(['sim', '--scenario', 'steady', '--duration', '600']);
    running.push(proc);
    await proc.waitFor(/scenario steady: 600 s at/, 90_000);
    const pids = [...proc.output().matchAll(/started \S+ \(pid (\d+)\)/g)].map((m) => Number(m[1]));
    expect(pids.length).toBeGreaterThanOrEqual(6); // five orchestrators and the router (redis-server is not logged)
    expect(pids.every(processAlive)).toBe(true);
    const code = await proc.stop('SIGTERM', 30_000);
    expect(code, proc.output()).toBe(130);
    expect(proc.output()).toContain('sim: stopped by a signal during steady: its processes are stopped; no verdict');
    await until('every process of the scenario gone', () => !pids.some(processAlive), 10_000);
  }, 150_000);
});
