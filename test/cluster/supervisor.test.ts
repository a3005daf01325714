/**
 * The primary of `edge-router router --workers N` keeps N workers: a worker that dies is
 * replaced, even when every worker dies at once, and a stop leaves no worker behind.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TestOrigin } from '../support/origin.js';
import { runEdgeRouter } from '../support/process.js';
import { freePort } from '../support/redis-server.js';
import { regionsFileFor } from '../support/router.js';
import { until } from '../support/until.js';

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('the cluster primary', () => {
  it('replaces every worker when all of them die at once, and leaves none behind when it stops', async () => {
    const nyc = await TestOrigin.start('nyc');
    cleanup.push(() => nyc.kill());
    const regions = await regionsFileFor({ nyc: nyc.url });
    const [https, http, admin] = [await freePort(), await freePort(), await freePort()];
    const proc = runEdgeRouter(
      ['router', '--workers', '2', '--dev-cert', '--regions', regions, '--bind', '127.0.0.1', '--https-port', String(https), '--http-port', String(http), '--admin-port', String(admin), '--log-level', 'info'],
      { EDGE_ADMIN_TOKEN: 'supervisor-test-token-0123456789' },
    );
    cleanup.push(() => proc.stop('SIGKILL'));
    const readyPids = () => proc.output().split('\n').filter((l) => l.includes('"edge router ready"')).map((l) => (JSON.parse(l) as { pid: number }).pid);
    await until('both workers ready', () => readyPids().length === 2, 15_000);
    // Both die together (an OOM kill, a request that crashes every worker): the primary then holds
    // nothing but the restart timers, and must still be there to fire them.
    for (const pid of readyPids()) process.kill(pid, 'SIGKILL');
    await until('two replacement workers ready', () => readyPids().length === 4 || proc.child.exitCode !== null, 15_000);
    expect(proc.child.exitCode).toBeNull();
    expect(readyPids().length).toBe(4);
    const replacements = readyPids().slice(2);
    expect(await proc.stop('SIGTERM')).toBe(0);
    expect(replacements.filter(alive)).toEqual([]);
  }, 60_000);
});
