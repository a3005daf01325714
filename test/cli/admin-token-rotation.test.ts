/**
 * A real router and its --admin-token-file replaced on disk, as a secret store or a Kubernetes
 * Secret replaces it: the new token is taken without a restart, the old one is refused once the
 * overlap ends (and its dashboard streams end with it), a bad replacement keeps the token in use.
 */
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { readyPidsOf, runEdgeRouter } from '../support/process.js';
import { freePort } from '../support/redis-server.js';
import { regionsFileFor, startTestRouter } from '../support/router.js';
import { until } from '../support/until.js';
import { metricSum } from '../support/metrics-text.js';

const FIRST = 'first-rotated-admin-token-0123';
const SECOND = 'second-rotated-admin-token-4567';
/** A replacement no Bearer header can carry; the router must not quote it anywhere. */
const SPACED = 'a replaced token with spaces 0123';

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'admin-token-rotation-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** One admin request on a connection of its own (with --workers, either worker may take it). */
async function adminStatus(port: number, token: string, path = '/api/status'): Promise<number> {
  const res = await request(`http://127.0.0.1:${port}${path}`, { headers: { authorization: `Bearer ${token}`, connection: 'close' } });
  await res.body.text();
  return res.statusCode;
}

async function metrics(port: number): Promise<string> {
  const res = await request(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${SECOND}`, connection: 'close' } });
  return res.body.text();
}

const refusedAdminToken = (text: string): number => metricSum(text, 'edge_router_reloads_refused_total{file="admin-token"}');

/** A live stream opened with `token`; `ended` turns true when the router ends it. */
async function openStream(port: number, token: string) {
  const res = await request(`http://127.0.0.1:${port}/api/stream`, { headers: { authorization: `Bearer ${token}`, connection: 'close' } });
  expect(res.statusCode).toBe(200);
  const state = { ended: false };
  void res.body.text().then(
    () => (state.ended = true),
    () => (state.ended = true),
  );
  cleanup.push(async () => res.body.destroy());
  return state;
}

/** The Kubernetes AtomicWriter's update: a new directory, `..data` re-pointed to it by rename, the old one removed. */
async function swapData(dir: string, version: string, token: string, previous: string | undefined): Promise<void> {
  await mkdir(join(dir, version));
  await writeFile(join(dir, version, 'admin-token'), token);
  await symlink(version, join(dir, '..data_tmp'));
  await rename(join(dir, '..data_tmp'), join(dir, '..data'));
  if (previous !== undefined) await rm(join(dir, previous), { recursive: true });
}

describe('--admin-token-file replaced while the router runs', () => {
  it('takes the new token at once, the old one until the overlap ends, and then ends the streams the old one opened', async () => {
    const file = join(await tempDir(), 'admin-token');
    await writeFile(file, `${FIRST}\n`);
    const router = await startTestRouter({}, ['--admin-token-file', file, '--admin-token-overlap', '4000'], {}, []);
    cleanup.push(() => router.close());
    const port = router.adminPort;
    expect([await adminStatus(port, FIRST), await adminStatus(port, SECOND)]).toEqual([200, 401]);
    const oldStream = await openStream(port, FIRST);

    await writeFile(file, `${SECOND}\n`); // in place, as `echo > file` does
    await until('the new token taken', async () => (await adminStatus(port, SECOND)) === 200, 10_000);
    // The overlap: clients and dashboards still on the old token keep working while they move over.
    expect(await adminStatus(port, FIRST)).toBe(200);
    const newStream = await openStream(port, SECOND);
    await until('the old token refused once the overlap ends', async () => (await adminStatus(port, FIRST)) === 401, 15_000);
    await until('the stream opened with the old token ended', () => oldStream.ended, 5_000);
    expect(newStream.ended).toBe(false);

    const replaced = router.logs.filter((l) => l.event === 'admin_token_replaced');
    expect(replaced).toEqual([expect.objectContaining({ file, previousValidUntil: expect.any(String) })]);
    // Every refusal is counted and logged alike (an in-place write read half-done would be one).
    expect(refusedAdminToken(await metrics(port))).toBe(router.logs.filter((l) => l.event === 'admin_token_refused').length);
    const logged = JSON.stringify(router.logs);
    for (const token of [FIRST, SECOND]) expect(logged).not.toContain(token);
  }, 40_000);

  it('follows a Kubernetes Secret ..data swap, and keeps the token in use when a replacement is bad: logged without it, counted', async () => {
    const dir = await tempDir();
    await swapData(dir, '..v1', FIRST, undefined);
    await symlink('..data/admin-token', join(dir, 'admin-token'));
    const file = join(dir, 'admin-token');
    const router = await startTestRouter({}, ['--admin-token-file', file, '--admin-token-overlap', '0'], {}, []);
    cleanup.push(() => router.close());
    const port = router.adminPort;

    await swapData(dir, '..v2', SPACED, '..v1');
    await until('the bad replacement refused', () => router.logs.some((l) => l.event === 'admin_token_refused'), 10_000);
    expect(await adminStatus(port, FIRST)).toBe(200);
    expect(router.logs.find((l) => l.event === 'admin_token_refused')).toMatchObject({ file, reason: expect.stringMatching(/whitespace at character 2/) });

    await swapData(dir, '..v3', SECOND, '..v2');
    await until('the new token taken', async () => (await adminStatus(port, SECOND)) === 200, 10_000);
    // No overlap asked for: the old token is refused as soon as the new one is taken.
    expect(await adminStatus(port, FIRST)).toBe(401);
    // Counted as often as logged: once, or more if the swap's events came apart enough to read it twice.
    const refusals = router.logs.filter((l) => l.event === 'admin_token_refused').length;
    expect(refusals).toBeGreaterThanOrEqual(1);
    expect(refusedAdminToken(await metrics(port))).toBe(refusals);
    const logged = JSON.stringify(router.logs);
    for (const token of [FIRST, SECOND, SPACED]) expect(logged).not.toContain(token);
  }, 40_000);

  it('with --workers 2, every worker takes the new token and ends the old streams', async () => {
    const file = join(await tempDir(), 'admin-token');
    await writeFile(file, FIRST);
    const regions = await regionsFileFor({});
    const [https, http, admin] = [await freePort(), await freePort(), await freePort()];
    const proc = runEdgeRouter([
      'router', '--workers', '2', '--dev-cert', '--regions', regions, '--bind', '127.0.0.1', '--https-port', String(https), '--http-port', String(http),
      '--admin-port', String(admin), '--admin-token-file', file, '--admin-token-overlap', '3000', '--log-level', 'info',
    ]);
    cleanup.push(() => proc.stop('SIGKILL'));
    await until('both workers ready', () => readyPidsOf(proc).length === 2, 30_000);
    // Each on its own connection: node:cluster hands them to the workers in turn.
    const streams = [await openStream(admin, FIRST), await openStream(admin, FIRST)];

    await writeFile(`${file}.tmp`, SECOND);
    await rename(`${file}.tmp`, file);
    const everyWorker = async (token: string, status: number) => {
      for (let i = 0; i < 6; i++) if ((await adminStatus(admin, token)) !== status) return false;
      return true;
    };
    await until('every worker takes the new token', () => everyWorker(SECOND, 200), 10_000);
    await until('every worker refuses the old one once the overlap ends', () => everyWorker(FIRST, 401), 15_000);
    await until('both old streams ended', () => streams.every((s) => s.ended), 5_000);
    const lines = proc.output().split('\n');
    expect(lines.filter((l) => l.includes('"event":"admin_token_replaced"'))).toHaveLength(2);
    for (const token of [FIRST, SECOND]) expect(proc.output()).not.toContain(token);
    expect(await proc.stop('SIGTERM')).toBe(0);
  }, 60_000);
});
