/**
 * `npm run bench:workers`: what `--workers N` (default 2) gives over one worker, for the router and,
 * beside it, for the bare Node proxy run the same way (bench/bare-proxy.ts under node:cluster), on
 * this machine's cores with nothing pinned: the workers, the origin (nginx, one worker) and wrk
 * (`-t2 -c100`, plain HTTP/1.1) share the CPUs, as issue #10's "several cores" target has it.
 *
 * On a machine whose cores the load generator and the origin share, N workers cannot give N times
 * one: the report says how much they could, from the CPU each request took. The ceiling is the
 * cores' time divided by what a request cost everywhere in the one-worker run (the proxy, and wrk,
 * the origin, the kernel and this benchmark's reading of the router's log, from /proc/stat, or
 * from the container's cgroup under a CPU quota, whose cores other tenants share), and at
 * most N times one worker's core: what N workers would give if nothing cost more per request with
 * them. A proxy below its ceiling pays more per request with N workers, in its own processes (the
 * proxy CPU column says) or elsewhere on the machine (the machine column).
 *
 * The router's stdout (its access log, a line a request) goes into a pipe this process drains, as a
 * container's log collector does: written to /dev/null, the log cost the workers nothing to write.
 *
 * Rounds alternate which pair goes first; each pair (one worker, then N, or the reverse) runs back
 * to back. It refuses a busy machine (load average above BENCH_MAX_LOAD before the run) and voids
 * the run when the origin alone moved more than 15 % between the start and the end.
 * The last line is `workers N/1: router R, bare B` (medians of the per-round ratios).
 *
 * Env: BENCH_WORKERS (default 2), BENCH_SECONDS (default 5), BENCH_ROUNDS (default 5),
 * BENCH_WARMUP_SECONDS (default 5), BENCH_MAX_LOAD (default 0.5), BENCH_LOAD_WAIT_SECONDS (default 120).
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'undici';
import { packageRoot } from '../src/cli/package-root.js';
import { quotaCpus, readCgroupCpuFiles, usableCores } from '../src/core/cpu-limit.js';
import { freePort } from '../src/sim/free-port.js';
import { envInt, envNumber } from './env-int.js';
import { nginxArgs, originConfig } from './nginx.js';
import { allowedCpus, busyTicks, cgroupCpuSeconds, cpuSeconds } from './proc-stats.js';
import { waitForQuietMachine } from './quiet-machine.js';
import { BenchError, capture, runBenchmark, ensureTool, expectOk, logTails, makeTempDir, writeBenchCertificate, regionsFileFor, startService, tail, waitForPort, wasInterrupted, type Managed } from './services.js';
import { parseWrk } from './wrk-output.js';
import { ceilingRps, type ScalingRun } from './scaling-ceiling.js';
import { median, RunFailures, voidedByDrift } from './verdict.js';

const HOST = 'echo-demo.telnyxcompute.com';
const ANY_ADDRESS = '0.0.0.0';
const WORKERS = envInt('BENCH_WORKERS', 2, 2, 64);
const SECONDS = envInt('BENCH_SECONDS', 5, 1, 600);
const ROUNDS = envInt('BENCH_ROUNDS', 5, 1, 20);
const WARMUP_SECONDS = envInt('BENCH_WARMUP_SECONDS', 5, 1, 120);
const MAX_LOAD = envNumber('BENCH_MAX_LOAD', 0.5, 0, 64);
const LOAD_WAIT_SECONDS = envInt('BENCH_LOAD_WAIT_SECONDS', 120, 0, 1_800);
const CALIBRATION_SECONDS = 3;
/** wrk's threads and connections: two threads, so that the load generator can use both cores too. */
const WRK_THREADS = 2;
const CONNECTIONS = 100;
/** /proc/stat counts in USER_HZ ticks, 100 a second on Linux. */
const TICKS_PER_SECOND = 100;

type Proxy = 'router' | 'bare';
interface Subject {
  readonly proxy: Proxy;
  readonly workers: number;
  readonly process: Managed;
  readonly port: number;
}
type Run = ScalingRun;
const failures = new RunFailures();
let wrkPath = 'wrk';

/** The CPUs this process (and so the proxies and wrk it starts) may run on. */
const OUR_CPUS = allowedCpus(/^Cpus_allowed_list:\s*(\S+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);

const readOrNull = (path: string) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
};

/** Set in main: the run is under a container's CPU quota (its cgroup's own usage is then the machine's). */
let underQuota = false;

/**
 * Machine CPU seconds so far that count as the run's: its cgroup's usage under a quota, else the
 * busy ticks of the CPUs the run may use (proc-stats.ts).
 */
function machineBusySeconds(): number {
  if (underQuota) {
    const used = cgroupCpuSeconds({ v2CpuStat: readOrNull('/sys/fs/cgroup/cpu.stat'), v1Usage: readOrNull('/sys/fs/cgroup/cpuacct/cpuacct.usage') ?? readOrNull('/sys/fs/cgroup/cpu,cpuacct/cpuacct.usage') });
    if (used !== null) return used;
  }
  return busyTicks(readFileSync('/proc/stat', 'utf8'), OUR_CPUS) / TICKS_PER_SECOND;
}

async function load(label: string, target: Managed, port: number, seconds: number): Promise<Run> {
  const args = [`-t${WRK_THREADS}`, `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', '-H', `Host: ${HOST}`, `http://127.0.0.1:${port}/`];
  const cpuBefore = cpuSeconds(target.child.pid!);
  const busyBefore = machineBusySeconds();
  const out = await capture(wrkPath, args, seconds * 1_000 + 30_000);
  if (wasInterrupted()) throw new BenchError('interrupted');
  if (out.code !== 0) throw new BenchError(`${label}: wrk failed (${out.exit}): ${tail(out.stderr || out.stdout)}`);
  if (target.exit !== null) throw new BenchError(`${label}: ${target.name} died during the run (${target.exit})\n${logTails(target)}`);
  const parsed = parseWrk(out.stdout);
  failures.check(label, parsed);
  return {
    rps: parsed.rps,
    proxyUs: ((cpuSeconds(target.child.pid!) - cpuBefore) * 1e6) / parsed.requests,
    machineUs: ((machineBusySeconds() - busyBefore) * 1e6) / parsed.requests,
  };
}

const name = (s: Subject) => `${s.proxy} ×${s.workers}`;
const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

async function main(): Promise<void> {
  const root = packageRoot();
  // Affinity and a container's CPU quota counted, as `--workers` counts them.
  const cores = await usableCores();
  const quota = quotaCpus(await readCgroupCpuFiles());
  underQuota = quota !== null;
  // The ceiling's capacity is the quota as it is (1.5 CPUs), not rounded up as a worker count is.
  const capacity = Math.min(cores, quota ?? Infinity);
  const wrkFound = await ensureTool('wrk', ['wrk']);
  if (wrkFound === undefined) throw new BenchError('wrk is not installed and apt-get could not install it: nothing can be measured');
  wrkPath = wrkFound;
  const nginxPath = await ensureTool('nginx', ['nginx-light', 'nginx']);
  if (nginxPath === undefined) throw new BenchError('nginx is not installed and apt-get could not install it (apt-get install -y nginx-light): it is the origin');
  await waitForQuietMachine(MAX_LOAD, LOAD_WAIT_SECONDS);

  const tempDir = makeTempDir('edge-bench-workers-');
  chmodSync(tempDir, 0o755); // nginx workers run as nobody and must reach their temp dirs
  const { certFile, keyFile } = await writeBenchCertificate(tempDir);

  const originPort = await freePort(ANY_ADDRESS);
  const prefix = join(tempDir, 'origin');
  mkdirSync(prefix);
  const conf = join(prefix, 'nginx.conf');
  writeFileSync(conf, originConfig({ prefix, port: originPort }));
  const origin = startService('origin', 0, nginxPath, nginxArgs({ prefix }, conf), { extraLogs: [join(prefix, 'error.log')] });
  await waitForPort(origin, originPort);
  const checkAgent = new Agent();
  await expectOk(origin, `http://127.0.0.1:${originPort}/`, checkAgent, HOST);
  const regionsFile = regionsFileFor(root, tempDir, `http://127.0.0.1:${originPort}`);

  const subjects: Subject[] = [];
  const add = async (proxy: Proxy, workers: number) => {
    const [http, https, admin] = [await freePort(ANY_ADDRESS), await freePort(ANY_ADDRESS), await freePort(ANY_ADDRESS)];
    const label = `${proxy}-w${workers}`;
    const managed =
      proxy === 'router'
        ? startService(label, 0, process.execPath, [
            join(root, 'dist', 'src', 'main.js'), 'router', '--workers', String(workers), '--plain-http', 'serve',
            '--http-port', String(http), '--https-port', String(https), '--admin-port', String(admin),
            '--tls-cert', certFile, '--tls-key', keyFile, '--regions', regionsFile, '--unknown-functions', 'forward', '--log-level', 'info',
            // All the load comes from one address: ceilings it does not reach (the defaults, 64
            // requests in progress and 100 new connections a second per address, would refuse
            // some of wrk's 100 connections), so the checks still run on every request.
            '--max-requests-per-ip', '100000', '--max-conn-rate-per-ip', '1000000',
          ], { drainStdout: true })
        : startService(label, 0, '/usr/bin/env', [
            `BENCH_BARE_WORKERS=${workers}`, process.execPath, join(root, 'dist', 'bench', 'bare-proxy.js'),
            `http://127.0.0.1:${originPort}`, String(http), String(https), certFile, keyFile,
          ]);
    await waitForPort(managed, http);
    await expectOk(managed, `http://127.0.0.1:${http}/`, checkAgent, HOST);
    subjects.push({ proxy, workers, process: managed, port: http });
  };
  for (const proxy of ['router', 'bare'] as const) for (const workers of [1, WORKERS]) await add(proxy, workers);
  await checkAgent.close();

  const minutes = (subjects.length * (WARMUP_SECONDS + ROUNDS * SECONDS) + 2 * CALIBRATION_SECONDS) / 60;
  console.log(`date: ${new Date().toISOString()}; node ${process.version}`);
  console.log(`cpu: ${cores} × ${cpus()[0]?.model.trim() ?? 'unknown'}; nothing pinned: workers, origin (nginx, 1 worker) and wrk share them`);
  console.log(`runs: wrk -t${WRK_THREADS} -c${CONNECTIONS}, plain HTTP/1.1, ${SECONDS} s each, ${ROUNDS} round(s), after ${WARMUP_SECONDS} s of warm-up each; about ${minutes.toFixed(1)} min`);

  const calibrate = async () => (await load('calibration', origin, originPort, CALIBRATION_SECONDS)).rps;
  const calibrationBefore = await calibrate();
  for (const s of subjects) {
    const warm = await load(`warm-up ${name(s)}`, s.process, s.port, WARMUP_SECONDS);
    console.log(`warm-up ${name(s).padEnd(10)} ${fmt(warm.rps)} req/s`);
  }

  const runs = new Map<string, Run[]>(subjects.map((s) => [name(s), []]));
  const pairs = (['router', 'bare'] as const).map((proxy) => subjects.filter((s) => s.proxy === proxy));
  for (let round = 1; round <= ROUNDS; round++) {
    const loadStart = loadavg()[0] ?? 0;
    // Each pair back to back; which pair, and which of its two, goes first alternates by round.
    const order = round % 2 === 1 ? pairs.flat() : pairs.map((pair) => [...pair].reverse()).reverse().flat();
    const lines: string[] = [];
    for (const s of order) {
      const run = await load(`round ${round} ${name(s)}`, s.process, s.port, SECONDS);
      runs.get(name(s))!.push(run);
      lines.push(`  ${name(s).padEnd(10)} ${fmt(run.rps).padStart(7)} req/s   proxy ${fmt(run.proxyUs, 1).padStart(6)} µs/req   machine ${fmt(run.machineUs, 1).padStart(6)} µs/req`);
    }
    console.log(`\nround ${round}/${ROUNDS} (load average ${loadStart.toFixed(2)} → ${(loadavg()[0] ?? 0).toFixed(2)})`);
    console.log(lines.join('\n'));
  }
  const calibrationAfter = await calibrate();
  const drift = calibrationAfter / calibrationBefore - 1;
  console.log(`\ncalibration: origin alone ${fmt(calibrationBefore)} req/s before, ${fmt(calibrationAfter)} after (${drift >= 0 ? '+' : ''}${(drift * 100).toFixed(1)} %)`);
  const failed = failures.report();
  // Before the summary: neither a run with failed answers nor one the calibration voids reports ratios.
  if (voidedByDrift(drift) || failed) return;

  console.log(`\nmedians of ${ROUNDS} round(s); ×1 and ×1 at the ceiling are medians of the per-round ratios to the one-worker run of the same round:`);
  console.log(`| subject | req/s | proxy CPU µs/req | machine CPU µs/req | ×1 | ceiling req/s | ×1 at the ceiling |`);
  console.log(`|---|---:|---:|---:|---:|---:|---:|`);
  const scaling = new Map<Proxy, number>();
  for (const [one, many] of pairs as Array<[Subject, Subject]>) {
    const oneRuns = runs.get(name(one))!;
    const manyRuns = runs.get(name(many))!;
    const ratio = median(manyRuns.map((run, i) => run.rps / oneRuns[i]!.rps));
    const ceilings = oneRuns.map((run) => ceilingRps(capacity, WORKERS, run));
    const ceilingRatio = median(ceilings.map((c, i) => c / oneRuns[i]!.rps));
    scaling.set(one.proxy, ratio);
    const row = (s: Subject, rs: readonly Run[], cells: string[]) =>
      console.log(`| ${name(s)} | ${fmt(median(rs.map((r) => r.rps)))} | ${fmt(median(rs.map((r) => r.proxyUs)), 1)} | ${fmt(median(rs.map((r) => r.machineUs)), 1)} | ${cells.join(' | ')} |`);
    row(one, oneRuns, ['1.00', '', '']);
    row(many, manyRuns, [ratio.toFixed(2), fmt(median(ceilings)), ceilingRatio.toFixed(2)]);
  }
  console.log(`\nThe ceiling: ${capacity} cores' time ÷ the machine's CPU per request in the one-worker run (at most ${WORKERS} × one worker's core): what ${WORKERS} workers would give if no request cost more with them.`);
  console.log(`workers ${WORKERS}/1: router ${scaling.get('router')!.toFixed(2)}, bare ${scaling.get('bare')!.toFixed(2)}`);
}

await runBenchmark(main);
