/**
 * The primary of `edge-router router --workers N` keeps N workers: a worker that dies is
 * replaced, even when every worker dies at once, and a stop leaves no worker behind.
 */
import { copyFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/cli/package-root.js';
import { TestOrigin } from '../support/origin.js';
import { CLUSTER_START_TIMEOUT_MS, outputLinesWith, processAlive, readyPidsOf, runEdgeRouter, type RunningProcess } from '../support/process.js';
import { freePort } from '../support/redis-server.js';
import { regionsFileFor } from '../support/router.js';
import { until } from '../support/until.js';
import { HUNG_AFTER_ENV, START_DEADLINE_ENV } from '../../src/cluster/hang-threshold.js';
import { REGIONS_COPY } from '../../src/cluster/worker-slot.js';
import { CRASH_LOOP_DEATHS } from '../../src/cluster/restart-backoff.js';
import { clusterTimeline, explainedBy, type TimelineMark } from './cluster-timeline.js';

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/**
 * The hang tests judge with a 6 s threshold instead of 20 s (hang-threshold.ts): the same
 * judgement, and still three heartbeat periods, so a healthy worker on a busy machine is not
 * judged hung by one late answer.
 */
const TEST_HUNG_AFTER_MS = 6_000;

/** The "edge router ready" lines of `proc`'s workers so far: which worker, of which slot. */
function readyLinesOf(proc: RunningProcess): Array<{ pid: number; workerSlot: string }> {
  return outputLinesWith(proc, '"edge router ready"').map((l) => JSON.parse(l) as { pid: number; workerSlot: string });
}


/**
 * A two-worker router (log level info) in front of one origin, every process of it loading `hook`
 * first (NODE_OPTIONS --import: how these tests make a worker hang), judged hung after `hungAfterMs`.
 */
async function routerWithHook(hook: { name: string; source: string }, options: { hungAfterMs?: number; startDeadlineMs?: number; args?: readonly string[] } = {}): Promise<RunningProcess> {
  const nyc = await TestOrigin.start('nyc');
  cleanup.push(() => nyc.kill());
  const regions = await regionsFileFor({ nyc: nyc.url });
  const hookFile = join(await mkdtemp(join(tmpdir(), 'edge-router-test-')), hook.name);
  await writeFile(hookFile, hook.source);
  const [https, http, admin] = [await freePort(), await freePort(), await freePort()];
  const proc = runEdgeRouter(
    ['router', '--workers', '2', '--dev-cert', '--regions', regions, '--bind', '127.0.0.1', '--https-port', String(https), '--http-port', String(http), '--admin-port', String(admin), '--log-level', 'info', ...(options.args ?? [])],
    {
      EDGE_ADMIN_TOKEN: 'supervisor-test-token-0123456789',
      NODE_OPTIONS: `--import=${pathToFileURL(hookFile).href}`,
      [HUNG_AFTER_ENV]: String(options.hungAfterMs ?? TEST_HUNG_AFTER_MS),
      ...(options.startDeadlineMs === undefined ? {} : { [START_DEADLINE_ENV]: String(options.startDeadlineMs) }),
    },
  );
  cleanup.push(() => proc.stop('SIGKILL'));
  return proc;
}

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
    const readyPids = () => readyPidsOf(proc);
    await until('both workers ready', () => readyPids().length === 2, CLUSTER_START_TIMEOUT_MS);
    // Both die together (an OOM kill, a request that crashes every worker): the primary then holds
    // nothing but the restart timers, and must still be there to fire them.
    for (const pid of readyPids()) process.kill(pid, 'SIGKILL');
    await until('two replacement workers ready', () => readyPids().length === 4 || proc.child.exitCode !== null, 15_000);
    expect(proc.child.exitCode).toBeNull();
    expect(readyPids().length).toBe(4);
    const replacements = readyPids().slice(2);
    expect(await proc.stop('SIGTERM')).toBe(0);
    expect(replacements.filter(processAlive)).toEqual([]);
  }, 3 * CLUSTER_START_TIMEOUT_MS);

  it.each(['sync', 'async'])('replaces a worker again when starting its replacement fails (%s), rather than stopping or leaving its slot empty', async (failure) => {
    // Thrown from cluster.fork, the failure was logged and the slot never refilled; as an 'error'
    // on the worker (never an 'exit'), it was an uncaught exception that stopped the whole router.
    const nyc = await TestOrigin.start('nyc');
    cleanup.push(() => nyc.kill());
    const regions = await regionsFileFor({ nyc: nyc.url });
    const [https, http, admin] = [await freePort(), await freePort(), await freePort()];
    const preload = join(packageRoot(), 'test', 'fixtures', 'cluster', 'failing-fork.mjs');
    const proc = runEdgeRouter(
      ['router', '--workers', '2', '--dev-cert', '--regions', regions, '--bind', '127.0.0.1', '--https-port', String(https), '--http-port', String(http), '--admin-port', String(admin), '--log-level', 'info'],
      { EDGE_ADMIN_TOKEN: 'supervisor-test-token-0123456789', NODE_OPTIONS: `--import ${pathToFileURL(preload).href}`, FORK_FAILURE: failure },
    );
    cleanup.push(() => proc.stop('SIGKILL'));
    const readyPids = () => readyPidsOf(proc);
    await until('both workers ready', () => readyPids().length === 2, CLUSTER_START_TIMEOUT_MS);
    process.kill(readyPids()[0]!, 'SIGKILL');
    // Fork 3 fails; fork 4, after the backoff, serves.
    await until('a replacement ready after the failed start', () => readyPids().length === 3 || proc.child.exitCode !== null, 20_000);
    expect(proc.child.exitCode).toBeNull();
    expect(proc.output()).toContain(failure === 'sync' ? '"event":"worker_fork_failed"' : '"event":"worker_error"');
    expect(proc.output()).not.toContain('"event":"fault"');
    expect(await proc.stop('SIGTERM')).toBe(0);
  }, 3 * CLUSTER_START_TIMEOUT_MS);

  it('keeps serving when a replacement fails on a configuration file changed since the start, and starts it once the file is good again', async () => {
    const nyc = await TestOrigin.start('nyc');
    cleanup.push(() => nyc.kill());
    const regions = await regionsFileFor({ nyc: nyc.url });
    // A GeoIP database is read afresh by a replacement (the regions file is not: the next test).
    const geoip = join(await mkdtemp(join(tmpdir(), 'edge-router-test-')), 'geo.mmdb');
    await copyFile(join(packageRoot(), 'geo', 'sim.mmdb'), geoip);
    const [https, http, admin] = [await freePort(), await freePort(), await freePort()];
    const proc = runEdgeRouter(
      ['router', '--workers', '2', '--dev-cert', '--regions', regions, '--geoip', geoip, '--bind', '127.0.0.1', '--https-port', String(https), '--http-port', String(http), '--admin-port', String(admin), '--log-level', 'info'],
      { EDGE_ADMIN_TOKEN: 'supervisor-test-token-0123456789' },
    );
    cleanup.push(() => proc.stop('SIGKILL'));
    const readyPids = () => readyPidsOf(proc);
    await until('both workers ready', () => readyPids().length === 2, CLUSTER_START_TIMEOUT_MS);
    const [victim, survivor] = readyPids() as [number, number];
    // An operator is mid-copy of the GeoIP database (or pushed a bad one) when one worker dies (a
    // fault, an OOM kill): its replacement reads the file afresh and fails on it, exit 2. The other
    // worker still serves with what it started with, and must go on doing so.
    const good = await readFile(geoip);
    await writeFile(geoip, 'not a database');
    process.kill(victim, 'SIGKILL');
    const failures = () => proc.output().split('\n').filter((l) => l.includes('not a MaxMind DB file')).length;
    await until('the replacement failed twice on the file', () => failures() >= 2 || proc.child.exitCode !== null, 15_000);
    expect(proc.child.exitCode).toBeNull();
    expect(processAlive(survivor)).toBe(true);
    const health = await request(`http://127.0.0.1:${http}/healthz`, { headers: { connection: 'close' } });
    await health.body.text();
    expect(health.statusCode).toBe(200);
    // The file is good again: the slot is filled.
    await writeFile(geoip, good);
    await until('a replacement worker ready', () => readyPids().length === 3 || proc.child.exitCode !== null, 20_000);
    expect(readyPids().length).toBe(3);
    expect(await proc.stop('SIGTERM')).toBe(0);
  }, 3 * CLUSTER_START_TIMEOUT_MS);

  it('gives a replacement worker the regions file as it was at the start, so that every worker routes by the same regions', async () => {
    const nyc = await TestOrigin.start('nyc');
    cleanup.push(() => nyc.kill());
    const regions = await regionsFileFor({ nyc: nyc.url });
    const [https, http, admin] = [await freePort(), await freePort(), await freePort()];
    const token = 'supervisor-test-token-0123456789';
    const proc = runEdgeRouter(
      ['router', '--workers', '2', '--dev-cert', '--regions', regions, '--bind', '127.0.0.1', '--https-port', String(https), '--http-port', String(http), '--admin-port', String(admin), '--log-level', 'info'],
      { EDGE_ADMIN_TOKEN: token },
    );
    cleanup.push(() => proc.stop('SIGKILL'));
    const readyPids = () => readyPidsOf(proc);
    await until('both workers ready', () => readyPids().length === 2, CLUSTER_START_TIMEOUT_MS);
    const original = JSON.parse(await readFile(regions, 'utf8')) as { regions: Array<{ id: string; name: string }> };
    const nycName = original.regions.find((r) => r.id === 'nyc')!.name;
    // Edited after the start, without a restart: before, a replacement read the edit and the two
    // workers answered (and routed) by different regions, each for half the requests.
    await writeFile(regions, JSON.stringify({ ...original, regions: original.regions.map((r) => (r.id === 'nyc' ? { ...r, name: 'Renamed' } : r)) }));
    process.kill(readyPids()[0]!, 'SIGKILL');
    await until('a replacement worker ready', () => readyPids().length === 3, 20_000);
    const names = new Set<string>();
    for (let i = 0; i < 12; i++) {
      const res = await request(`http://127.0.0.1:${admin}/api/regions`, { headers: { connection: 'close', authorization: `Bearer ${token}` } });
      expect(res.statusCode).toBe(200);
      const body = (await res.body.json()) as { regions: Array<{ id: string; name: string }> };
      names.add(body.regions.find((r) => r.id === 'nyc')!.name);
    }
    expect([...names]).toEqual([nycName]);
    expect(await proc.stop('SIGTERM')).toBe(0);
  }, 3 * CLUSTER_START_TIMEOUT_MS);

  it('starts a replacement worker although its copy of the regions file was removed meanwhile (a temp-file cleaner)', async () => {
    // Seen in review: the copy lives under the temp directory, which systemd-tmpfiles ages; once it
    // was gone every replacement failed on it (naming the original, which was fine), for ever.
    const regions = await regionsFileFor({});
    const [https, http, admin] = [await freePort(), await freePort(), await freePort()];
    const proc = runEdgeRouter(['router', '--workers', '2', '--dev-cert', '--regions', regions, '--bind', '127.0.0.1', '--https-port', String(https), '--http-port', String(http), '--admin-port', String(admin), '--log-level', 'info']);
    cleanup.push(() => proc.stop('SIGKILL'));
    const readyPids = () => readyPidsOf(proc);
    await until('both workers ready', () => readyPids().length === 2, CLUSTER_START_TIMEOUT_MS);
    const environ = (await readFile(`/proc/${readyPids()[0]!}/environ`, 'latin1')).split('\0');
    const copy = environ.find((v) => v.startsWith(`${REGIONS_COPY}=`))!.slice(REGIONS_COPY.length + 1);
    expect(copy.startsWith(tmpdir())).toBe(true);
    await rm(dirname(copy), { recursive: true, force: true });
    process.kill(readyPids()[0]!, 'SIGKILL');
    await until('a replacement worker ready', () => readyPids().length === 3, 20_000);
    expect(proc.output()).not.toContain('file not found');
    expect((await stat(copy)).isFile()).toBe(true);
    expect(await proc.stop('SIGTERM')).toBe(0);
  }, 3 * CLUSTER_START_TIMEOUT_MS);

  it('still stops with exit 2 when the workers fail on their configuration at the start', async () => {
    const regions = join(await mkdtemp(join(tmpdir(), 'edge-router-test-')), 'regions.json');
    await writeFile(regions, '{"defaultRegion": ');
    const [https, http, admin] = [await freePort(), await freePort(), await freePort()];
    const proc = runEdgeRouter(['router', '--workers', '2', '--dev-cert', '--regions', regions, '--bind', '127.0.0.1', '--https-port', String(https), '--http-port', String(http), '--admin-port', String(admin)]);
    cleanup.push(() => proc.stop('SIGKILL'));
    expect(await new Promise((resolve) => proc.child.once('exit', resolve))).toBe(2);
  }, 30_000);

  it('stops with exit 1, saying so, when every worker dies in its start again and again and none has served', async () => {
    // As an OOM kill of each worker as it starts would: killed, not exit 2 (which stops the router at once).
    const proc = await routerWithHook({ name: 'die-at-start.mjs', source: "import cluster from 'node:cluster';\nif (cluster.isWorker) process.kill(process.pid, 'SIGKILL');\n" });
    // Backoff 0.2, 0.4, 0.8 and 1.6 s before each slot's fifth death: a few seconds, not for ever.
    expect(await new Promise((resolve) => proc.child.once('exit', resolve))).toBe(1);
    const [line] = outputLinesWith(proc, '"event":"cluster_crash_loop"');
    expect(JSON.parse(line!)).toMatchObject({ level: 50, signal: 'SIGKILL', code: null, deathsInRowEach: CRASH_LOOP_DEATHS, workers: 2 });
    expect(outputLinesWith(proc, '"event":"worker_forked"').length).toBeGreaterThanOrEqual(2 * CRASH_LOOP_DEATHS);
  }, 60_000);

  it('stops with exit 2 and one line naming the port when a port is already taken, without a stack trace', async () => {
    // A cluster worker's listen is done by the primary and fails as `bind EADDRINUSE`, not `listen`:
    // it was an unexpected error with a stack, exit 1, and the primary replaced the workers for ever.
    const regions = await regionsFileFor({});
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise((resolve) => taken.close(resolve)));
    const https = (taken.address() as AddressInfo).port;
    const [http, admin] = [await freePort(), await freePort()];
    const proc = runEdgeRouter(['router', '--workers', '2', '--dev-cert', '--regions', regions, '--bind', '127.0.0.1', '--https-port', String(https), '--http-port', String(http), '--admin-port', String(admin)]);
    cleanup.push(() => proc.stop('SIGKILL'));
    expect(await new Promise((resolve) => proc.child.once('exit', resolve))).toBe(2);
    expect(proc.output()).toContain(`127.0.0.1:${https} is already in use`);
    expect(proc.output()).not.toContain('unexpected error');
    expect(proc.output()).not.toMatch(/\n\s+at /);
  }, 30_000);

  it('replaces a worker whose event loop is stuck (it answers no heartbeat)', async () => {
    // SIGUSR2 sends the process into an endless loop: a bug no fault handler sees.
    const proc = await routerWithHook({ name: 'hang.mjs', source: "process.on('SIGUSR2', () => { for (;;) {} });\n" });
    const readyPids = () => readyPidsOf(proc);
    const marks: TimelineMark[] = [];
    await until('both workers ready', () => readyPids().length === 2, CLUSTER_START_TIMEOUT_MS);
    const [stuck] = readyPids() as [number];
    // A stuck process never sees its primary go (it would be left behind by a failed test).
    cleanup.push(async () => processAlive(stuck) && process.kill(stuck, 'SIGKILL'));
    // Let the primary hear from it once (the heartbeat counts from the first answer).
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    process.kill(stuck, 'SIGUSR2');
    marks.push({ at: Date.now(), what: `sent SIGUSR2 to ${stuck}: stuck from now` });
    // It would take every connection the cluster hands it, and make every admin write "pending",
    // for as long as it lives: the primary kills it and starts a new one.
    await explainedBy(until('the stuck worker replaced', () => readyPids().length === 3 || proc.child.exitCode !== null, TEST_HUNG_AFTER_MS + CLUSTER_START_TIMEOUT_MS), () => proc.output(), marks);
    expect(proc.output(), clusterTimeline(proc.output(), marks)).toMatch(new RegExp(`"event":"worker_hung","pid":${stuck},"silentMs":${TEST_HUNG_AFTER_MS}`));
    expect(processAlive(stuck)).toBe(false);
    expect(await proc.stop('SIGTERM')).toBe(0);
  }, 3 * CLUSTER_START_TIMEOUT_MS);

  it('replaces a worker that gets stuck right after its start, before it has answered any heartbeat', async () => {
    // In the first worker of slot 0 only (its replacement has the same slot): its start keeps it too
    // busy to answer a heartbeat (it never answers one, as a start blocked for seconds would not),
    // and it is stuck for good in the turn after its announcement was answered (a request that
    // loops, taken the moment it was ready). The heartbeat used to count only from a first answer,
    // which never came: it was never replaced.
    const marker = join(await mkdtemp(join(tmpdir(), 'edge-router-test-')), 'hung');
    const proc = await routerWithHook({
      name: 'hang-after-start.mjs',
      source: [
        "import cluster from 'node:cluster';",
        "import { existsSync, writeFileSync } from 'node:fs';",
        `const marker = ${JSON.stringify(marker)};`,
        "if (cluster.isWorker && process.env.EDGE_WORKER_SLOT === '0' && !existsSync(marker)) {",
        '  const heartbeats = new Set();',
        '  let announceId;',
        '  const send = process.send.bind(process);',
        '  process.send = (message, ...rest) => {',
        "    if (message?.edgeRouterLink === 'call' && message.method === 'router.announce') announceId = message.id;",
        "    if (message?.edgeRouterLink === 'reply' && heartbeats.has(message.id)) return true;",
        '    return send(message, ...rest);',
        '  };',
        "  process.on('message', (message) => {",
        "    if (message?.edgeRouterLink === 'call' && message.method === 'worker.heartbeat') heartbeats.add(message.id);",
        // A later turn: the worker has gone on from the answer to log that it is ready. That line
        // waits in its log's buffer (written every 200 ms) and is lost with the process, as a real
        // stuck worker's would be: the test cannot count on it (it did: when the hang came within
        // that 200 ms, it waited for a third ready line that never came, as CI's one failure here did).
        "    if (message?.edgeRouterLink === 'reply' && message.id === announceId) setTimeout(() => { writeFileSync(marker, String(process.pid)); for (;;) {} });",
        '  });',
        '}',
        '',
      ].join('\n'),
    });
    // When a wait runs out, its message tells which step took the time (the hang judgement, the
    // kill, the replacement's start): CI's one failure here said only that the whole had.
    const marks: TimelineMark[] = [];
    const explained = (wait: Promise<void>) => explainedBy(wait, () => proc.output(), marks);
    // Not "both workers ready": the stuck worker's own ready line is lost (above). Its marker says
    // it started, and which it is; its replacement is the next worker of its slot to say it is ready.
    await explained(until('a worker stuck', async () => (await readFile(marker, 'utf8').catch(() => '')) !== '', CLUSTER_START_TIMEOUT_MS));
    const stuck = Number(await readFile(marker, 'utf8'));
    // Written the moment its loop began: the file's time is when it got stuck.
    marks.push({ at: (await stat(marker)).mtimeMs, what: `${stuck} stuck (its marker written)` }, { at: Date.now(), what: 'saw the marker' });
    cleanup.push(async () => processAlive(stuck) && process.kill(stuck, 'SIGKILL'));
    const replacementReady = () => readyLinesOf(proc).some((ready) => ready.workerSlot === '0/2' && ready.pid !== stuck);
    await explained(until('the stuck worker replaced', () => replacementReady() || proc.child.exitCode !== null, TEST_HUNG_AFTER_MS + CLUSTER_START_TIMEOUT_MS));
    expect(replacementReady(), clusterTimeline(proc.output(), marks)).toBe(true);
    // It alone was judged hung (the other worker answered throughout).
    expect(outputLinesWith(proc, '"event":"worker_hung"'), clusterTimeline(proc.output(), marks)).toEqual([expect.stringMatching(new RegExp(`"event":"worker_hung","pid":${stuck},"silentMs":${TEST_HUNG_AFTER_MS}`))]);
    expect(processAlive(stuck)).toBe(false);
    expect(await proc.stop('SIGTERM')).toBe(0);
  }, 3 * CLUSTER_START_TIMEOUT_MS);

  it('replaces a worker stuck in its start, before it ever listened, once its start deadline has passed', async () => {
    // The first worker of slot 1 never gets past its start (an await that never settles): it never
    // listens, so its silence was never counted. It stayed one worker short for good, and every
    // admin write answered "pending" waiting for it to announce itself.
    const marker = join(await mkdtemp(join(tmpdir(), 'edge-router-test-')), 'stuck');
    // Shortened from 60 s, not below what a start on a busy machine takes (its sibling's, its replacement's).
    const startDeadlineMs = 20_000;
    const proc = await routerWithHook(
      {
        name: 'stuck-in-start.mjs',
        source: [
          "import cluster from 'node:cluster';",
          "import { existsSync, writeFileSync } from 'node:fs';",
          `const marker = ${JSON.stringify(marker)};`,
          "if (cluster.isWorker && process.env.EDGE_WORKER_SLOT === '1' && !existsSync(marker)) {",
          '  writeFileSync(marker, String(process.pid));',
          '  await new Promise(() => setInterval(() => undefined, 1_000));',
          '}',
          '',
        ].join('\n'),
      },
      { startDeadlineMs },
    );
    const marks: TimelineMark[] = [];
    const explained = (wait: Promise<void>) => explainedBy(wait, () => proc.output(), marks);
    await explained(until('a worker stuck in its start', async () => (await readFile(marker, 'utf8').catch(() => '')) !== '', CLUSTER_START_TIMEOUT_MS));
    const stuck = Number(await readFile(marker, 'utf8'));
    marks.push({ at: (await stat(marker)).mtimeMs, what: `${stuck} stuck in its start` });
    cleanup.push(async () => processAlive(stuck) && process.kill(stuck, 'SIGKILL'));
    const replacementReady = () => readyLinesOf(proc).some((ready) => ready.workerSlot === '1/2' && ready.pid !== stuck);
    await explained(until('the stuck worker replaced', () => replacementReady() || proc.child.exitCode !== null, startDeadlineMs + 2 * CLUSTER_START_TIMEOUT_MS));
    expect(replacementReady(), clusterTimeline(proc.output(), marks)).toBe(true);
    expect(outputLinesWith(proc, `"event":"worker_start_stuck","pid":${stuck},`)).toEqual([expect.stringContaining(`"startDeadlineMs":${startDeadlineMs}`)]);
    expect(outputLinesWith(proc, `"event":"worker_hung","pid":${stuck},`)).toEqual([]);
    expect(processAlive(stuck)).toBe(false);
    expect(await proc.stop('SIGTERM')).toBe(0);
  }, 4 * CLUSTER_START_TIMEOUT_MS);

  it('kills a worker found stuck while the router stops, instead of waiting out its drain timeout', async () => {
    // A drain of 40 s: the stuck worker, which cannot run its SIGTERM, was killed only at its end (+5 s).
    const proc = await routerWithHook({ name: 'hang.mjs', source: "process.on('SIGUSR2', () => { for (;;) {} });\n" }, { args: ['--drain-timeout', '40000'] });
    await until('both workers ready', () => readyPidsOf(proc).length === 2, CLUSTER_START_TIMEOUT_MS);
    const [stuck] = readyPidsOf(proc) as [number];
    cleanup.push(async () => processAlive(stuck) && process.kill(stuck, 'SIGKILL'));
    await new Promise((resolve) => setTimeout(resolve, 3_000)); // heard from once
    process.kill(stuck, 'SIGUSR2');
    const stopAt = performance.now();
    expect(await proc.stop('SIGTERM', 44_000)).toBe(0);
    // Judged within the threshold (and a period or two), not left to the 45 s drain overrun.
    expect(performance.now() - stopAt).toBeLessThan(TEST_HUNG_AFTER_MS + 12_000);
    expect(outputLinesWith(proc, '"event":"worker_hung"')).toEqual([expect.stringContaining(`"pid":${stuck}`)]);
    expect(outputLinesWith(proc, '"event":"worker_drain_overrun"')).toEqual([]);
    expect(processAlive(stuck)).toBe(false);
  }, 4 * CLUSTER_START_TIMEOUT_MS);

  it('starts the replacement of a worker that faulted as soon as it stops accepting, not after its drain', async () => {
    const nyc = await TestOrigin.start('nyc');
    cleanup.push(() => nyc.kill());
    const regions = await regionsFileFor({ nyc: nyc.url });
    // In the first worker of slot 0 only: SIGUSR2 makes it throw outside every handler (it drains,
    // then exits 70), and its exit is held until the test has looked (a file appears; 30 s at
    // most), as it would be with WebSockets open (up to --drain-timeout). Its slot used to be
    // refilled only at the exit: one worker fewer all that time, and none at all when a request
    // of death reached every worker.
    const dir = await mkdtemp(join(tmpdir(), 'edge-router-test-'));
    const marker = join(dir, 'faulted');
    const release = join(dir, 'release');
    const fault = join(dir, 'fault.mjs');
    await writeFile(
      fault,
      [
        "import cluster from 'node:cluster';",
        "import { existsSync, writeFileSync } from 'node:fs';",
        `const marker = ${JSON.stringify(marker)};`,
        "const victim = cluster.isWorker && process.env.EDGE_WORKER_SLOT === '0' && !existsSync(marker);",
        "process.on('SIGUSR2', () => {",
        '  if (!victim) return;',
        '  writeFileSync(marker, String(process.pid));',
        '  const exit = process.exit.bind(process);',
        `  const release = ${JSON.stringify(release)};`,
        '  const latest = Date.now() + 30_000;',
        '  process.exit = (code) => { const held = setInterval(() => { if (existsSync(release) || Date.now() > latest) { clearInterval(held); exit(code); } }, 50); };',
        "  setTimeout(() => { throw new Error('a fault outside every handler'); });",
        '});',
        '',
      ].join('\n'),
    );
    const [https, http, admin] = [await freePort(), await freePort(), await freePort()];
    const proc = runEdgeRouter(
      ['router', '--workers', '2', '--dev-cert', '--regions', regions, '--bind', '127.0.0.1', '--https-port', String(https), '--http-port', String(http), '--admin-port', String(admin), '--log-level', 'info'],
      { EDGE_ADMIN_TOKEN: 'supervisor-test-token-0123456789', NODE_OPTIONS: `--import=${pathToFileURL(fault).href}` },
    );
    cleanup.push(() => proc.stop('SIGKILL'));
    await until('both workers ready', () => readyPidsOf(proc).length === 2, CLUSTER_START_TIMEOUT_MS);
    for (const pid of readyPidsOf(proc)) process.kill(pid, 'SIGUSR2');
    await until('a worker faulted', async () => (await readFile(marker, 'utf8').catch(() => '')) !== '', 10_000);
    const faulted = Number(await readFile(marker, 'utf8'));
    cleanup.push(async () => processAlive(faulted) && process.kill(faulted, 'SIGKILL'));
    await until('a replacement ready, or the faulted worker gone', () => readyPidsOf(proc).length === 3 || !processAlive(faulted), 40_000);
    // Before: the replacement came only after the faulted worker's exit.
    expect(processAlive(faulted)).toBe(true);
    expect(readyPidsOf(proc).length).toBe(3);
    expect(proc.output()).toMatch(new RegExp(`"event":"worker_draining","pid":${faulted}`));
    // Its exit, its slot refilled already, starts no other worker.
    await writeFile(release, '');
    await until('the faulted worker exited', () => proc.output().includes(`"event":"worker_exited","pid":${faulted}`) || proc.child.exitCode !== null, 30_000);
    expect(proc.output()).not.toMatch(new RegExp(`"event":"worker_died","pid":${faulted}`));
    expect(readyPidsOf(proc).length).toBe(3);
    expect(await proc.stop('SIGTERM')).toBe(0);
  }, 3 * CLUSTER_START_TIMEOUT_MS);

  it('logs a worker it has to kill because it had not exited after its drain', async () => {
    const nyc = await TestOrigin.start('nyc');
    cleanup.push(() => nyc.kill());
    const regions = await regionsFileFor({ nyc: nyc.url });
    // A worker whose event loop is stuck after its drain began (a bug): neither its drain nor its
    // own exit backstop (src/main.ts) can end it. The primary's own SIGTERM handler is untouched:
    // it is not a worker.
    const linger = join(await mkdtemp(join(tmpdir(), 'edge-router-test-')), 'linger.mjs');
    await writeFile(linger, "import cluster from 'node:cluster';\nif (cluster.isWorker) process.on('SIGTERM', () => setTimeout(() => { const end = Date.now() + 30_000; while (Date.now() < end); }, 200));\n");
    const [https, http, admin] = [await freePort(), await freePort(), await freePort()];
    const proc = runEdgeRouter(
      ['router', '--workers', '2', '--dev-cert', '--regions', regions, '--bind', '127.0.0.1', '--https-port', String(https), '--http-port', String(http), '--admin-port', String(admin), '--drain-timeout', '500'],
      { NODE_OPTIONS: `--import=${pathToFileURL(linger).href}` },
    );
    cleanup.push(() => proc.stop('SIGKILL'));
    await until('both workers ready', () => readyPidsOf(proc).length === 2, CLUSTER_START_TIMEOUT_MS);
    const pids = readyPidsOf(proc);
    cleanup.push(async () => pids.forEach((pid) => processAlive(pid) && process.kill(pid, 'SIGKILL')));
    expect(await proc.stop('SIGTERM', 20_000)).toBe(0);
    for (const pid of pids) {
      expect(processAlive(pid)).toBe(false);
      expect(proc.output()).toMatch(new RegExp(`"event":"worker_drain_overrun","pid":${pid}`));
    }
  }, 3 * CLUSTER_START_TIMEOUT_MS);
});
