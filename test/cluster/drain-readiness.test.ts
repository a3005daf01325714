/**
 * `/readyz` on the admin port of `edge-router router --workers N` answers for the whole router: a
 * worker that drains alone (a fault, a signal of its own) leaves the admin port at once, so that a
 * readiness probe reaches a worker that serves; when the whole router stops, every worker answers
 * 503 for as long as it drains (a load balancer or kubelet must stop sending it traffic).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { agentFor, get } from '../support/clients.js';
import { TestOrigin } from '../support/origin.js';
import { outputLinesWith, processAlive, readyPidsOf, runEdgeRouter, type RunOptions, type RunningProcess } from '../support/process.js';
import { freePort } from '../support/redis-server.js';
import { regionsFileFor } from '../support/router.js';
import { until } from '../support/until.js';

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** The exit code, once the process has exited (it may have already). */
const exitOf = (proc: RunningProcess): Promise<number | null> =>
  proc.child.exitCode !== null ? Promise.resolve(proc.child.exitCode) : new Promise((resolve) => proc.child.once('exit', resolve));


/** `/readyz` on the admin port, each on a new connection (the cluster hands each to the next worker). */
async function readiness(adminPort: number, times: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < times; i++) {
    const res = await request(`http://127.0.0.1:${adminPort}/readyz`, { headers: { connection: 'close' } });
    await res.body.text();
    statuses.push(res.statusCode);
  }
  return statuses;
}

/**
 * `router --workers 2` in front of an origin that holds every request until released: a worker
 * holding one drains until then (up to --drain-timeout). SIGUSR2 makes a worker throw outside every
 * handler (a fault: it drains alone, then exits 70).
 */
async function startHoldingCluster(options: RunOptions = {}) {
  const nyc = await TestOrigin.start('nyc');
  cleanup.push(() => nyc.kill());
  const held: Array<() => void> = [];
  nyc.handler = (_req, res) => void held.push(() => res.end('released'));
  const regions = await regionsFileFor({ nyc: nyc.url });
  const fault = join(await mkdtemp(join(tmpdir(), 'edge-router-test-')), 'fault.mjs');
  await writeFile(fault, "process.on('SIGUSR2', () => setTimeout(() => { throw new Error('a fault outside every handler'); }));\n");
  const [https, http, adminPort] = [await freePort(), await freePort(), await freePort()];
  const proc = runEdgeRouter(
    ['router', '--workers', '2', '--dev-cert', '--regions', regions, '--bind', '127.0.0.1', '--https-port', String(https), '--http-port', String(http),
      '--admin-port', String(adminPort), '--unknown-functions', 'forward', '--log-level', 'info'],
    { EDGE_ADMIN_TOKEN: 'drain-readiness-token-0123456789', NODE_OPTIONS: `--import=${pathToFileURL(fault).href}` },
    options,
  );
  cleanup.push(async () => {
    if (options.ownProcessGroup === true && proc.child.exitCode === null) {
      try {
        process.kill(-proc.child.pid!, 'SIGKILL');
      } catch {
        // the group is gone already
      }
    }
    return proc.stop('SIGKILL');
  });
  await until('both workers ready', () => readyPidsOf(proc).length === 2, 30_000);
  /** Opens `count` requests, each on its own connection (so each worker gets its turn), held at the origin. */
  const hold = async (count: number) => {
    const answers: Array<Promise<unknown>> = [];
    for (let i = 0; i < count; i++) {
      const agent = agentFor(https);
      cleanup.push(() => agent.destroy());
      answers.push(get(agent, https, `/held/${i}`).catch((err: unknown) => err));
    }
    await until('the requests held at the origin', () => nyc.openRequests === count, 10_000);
    return async () => {
      for (const release of held.splice(0)) release();
      await Promise.all(answers);
    };
  };
  return { proc, adminPort, hold };
}

describe('readiness on the admin port of a cluster', () => {
  /**
   * Both workers hold requests (the cluster hands the connections out in turn); one, sent `signal`,
   * drains alone until they end. Every readiness probe during its drain is answered 200 (by its
   * sibling and its replacement), and the requests it held still finish.
   */
  async function probesReadyWhileOneDrains(signal: NodeJS.Signals, what: string): Promise<void> {
    const { proc, adminPort, hold } = await startHoldingCluster();
    const release = await hold(4);
    const [draining] = readyPidsOf(proc) as [number];
    process.kill(draining, signal);
    await until(`the ${what} worker draining, and its replacement ready`, () => outputLinesWith(proc, `"event":"worker_draining","pid":${draining}`).length === 1 && readyPidsOf(proc).length === 3, 20_000);
    const statuses = await readiness(adminPort, 30);
    expect(processAlive(draining)).toBe(true); // still draining: the probes ran during its drain
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    await release();
    await until(`the ${what} worker exited`, () => !processAlive(draining), 15_000);
    expect(await proc.stop('SIGTERM')).toBe(0);
  }

  // Before, the draining worker kept its admin listener until its drain was over, and answered
  // every probe the cluster handed it 503: the router flapped to a kubelet or load balancer,
  // although its other workers (and the replacement) were ready.
  it('takes a worker that drains alone off the admin port at once: readiness probes see the router ready', async () => {
    await probesReadyWhileOneDrains('SIGUSR2', 'faulted');
  }, 60_000);

  it('takes a worker sent a signal of its own off the admin port too, once the primary has seen it is not the router stopping', async () => {
    await probesReadyWhileOneDrains('SIGTERM', 'signalled');
  }, 60_000);

  it('answers 503 from every worker while the whole router drains after SIGTERM', async () => {
    const { proc, adminPort, hold } = await startHoldingCluster();
    const release = await hold(4);
    proc.child.kill('SIGTERM');
    await until('both workers draining', () => outputLinesWith(proc, '"event":"shutdown"').length === 2, 10_000);
    // Time for a worker wrongly told it drains alone to leave the admin port (it then refuses, or another answers 200).
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const statuses = await readiness(adminPort, 10);
    expect(proc.child.exitCode).toBeNull(); // still draining: the probes ran during the drain
    expect(statuses).toEqual(Array(10).fill(503));
    expect(outputLinesWith(proc, '"event":"worker_draining"')).toEqual([]);
    await release();
    expect(await exitOf(proc)).toBe(0);
  }, 60_000);

  it('answers 503 from every worker while the whole router drains after a Ctrl-C that reached every process at once', async () => {
    const { proc, adminPort, hold } = await startHoldingCluster({ ownProcessGroup: true });
    const release = await hold(4);
    // Ctrl-C in a terminal signals the whole foreground process group: the workers see it as soon
    // as the primary, not after it. They must not take it for a drain of their own.
    process.kill(-proc.child.pid!, 'SIGINT');
    await until('both workers draining', () => outputLinesWith(proc, '"event":"shutdown"').length === 2, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const statuses = await readiness(adminPort, 10);
    expect(proc.child.exitCode).toBeNull();
    expect(statuses).toEqual(Array(10).fill(503));
    // Nor did the primary take it for one (it would have started a replacement, cancelled by the stop).
    expect(outputLinesWith(proc, '"event":"worker_draining"')).toEqual([]);
    await release();
    expect(await exitOf(proc)).toBe(0);
  }, 60_000);
});
