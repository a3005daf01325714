/**
 * Child processes and tools for the benchmarks: each service in its own process group (so a stop
 * reaches nginx workers and wrk too), stopped on every exit path, its stderr kept for the error
 * message when it fails; tools looked up, or installed with apt-get when missing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request, type Agent } from 'undici';
import { generateSelfSignedCertificate } from '../src/ingress/certificates/dev-certificate.js';

const READY_TIMEOUT_MS = 20_000;
/** After a captured command exits, how long its output pipes may stay open before they are given up on. */
const CLOSE_GRACE_MS = 2_000;
export const STOP_GRACE_MS = 5_000;

export interface Managed {
  readonly name: string;
  readonly child: ChildProcess;
  /** Set once the process is gone (or failed to spawn). */
  exit: string | null;
  readonly exited: Promise<void>;
  /** Files worth showing when it fails: its stderr, nginx's error log. */
  readonly logFiles: readonly string[];
}

const live = new Set<Managed>();
/**
 * Every service started and not yet done with (capture's commands leave it once their output is
 * read): its leader's exit does not end its group (nginx's workers outlive a master that died),
 * so the stops reach the group whatever the leader did.
 */
const started = new Set<Managed>();
let tempDir: string | undefined;

/**
 * The project's regions.json with every region's orchestrators replaced by one origin, written as
 * `dir/regions.json`: the router under test sends every region's traffic to the benchmark's origin.
 */
export function regionsFileFor(root: string, dir: string, originUrl: string): string {
  const template = JSON.parse(readFileSync(join(root, 'regions.json'), 'utf8')) as { regions: Record<string, unknown>[] };
  const file = join(dir, 'regions.json');
  writeFileSync(file, `${JSON.stringify({ ...template, regions: template.regions.map((r) => ({ ...r, orchestrators: [originUrl] })) }, null, 2)}\n`);
  return file;
}

/**
 * A self-signed certificate for the router's names in `dir`, as the files `--tls-cert`/`--tls-key`
 * and nginx read: the certificate world-readable (nginx workers run as nobody), the key for the
 * owner only (read by the nginx master, root, never by its workers).
 */
export async function writeBenchCertificate(dir: string): Promise<{ certFile: string; keyFile: string }> {
  const pem = await generateSelfSignedCertificate({ names: ['*.telnyxcompute.com', 'localhost'] });
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  writeFileSync(certFile, pem.cert, { mode: 0o644 });
  writeFileSync(keyFile, pem.key, { mode: 0o600 });
  return { certFile, keyFile };
}

/** The run's temp dir (removed on exit), made once. */
export function makeTempDir(prefix: string): string {
  tempDir ??= mkdtempSync(join(tmpdir(), prefix));
  return tempDir;
}

export function killGroup(m: Managed, signal: NodeJS.Signals): void {
  if (m.child.pid === undefined) return;
  try {
    process.kill(-m.child.pid, signal);
  } catch {
    // ESRCH: the whole group is already gone.
  }
}

export function track(name: string, child: ChildProcess, logFiles: readonly string[] = []): Managed {
  let settle: () => void = () => undefined;
  const m: Managed = { name, child, exit: null, exited: new Promise<void>((resolve) => (settle = resolve)), logFiles };
  const done = (exit: string) => {
    if (m.exit !== null) return;
    m.exit = exit;
    live.delete(m);
    settle();
  };
  child.once('exit', (code, signal) => done(signal === null ? `exit code ${code}` : `signal ${signal}`));
  child.once('error', (err) => done(`spawn failed: ${err.message}`));
  live.add(m);
  started.add(m);
  return m;
}

/**
 * A process stopped and its group killed: no stop later signals a group id that may have been
 * reused by then.
 */
export function doneWith(m: Managed): void {
  started.delete(m);
}

/** SIGTERM to every group still led, SIGKILL to every group started and not done with after the grace period. */
export async function stopAll(): Promise<void> {
  const running = [...live];
  for (const m of running) killGroup(m, 'SIGTERM');
  await Promise.race([Promise.all(running.map((m) => m.exited)), sleep(STOP_GRACE_MS)]);
  // Also after a clean exit of the leader: nginx workers or a node child may outlive it.
  for (const m of started) killGroup(m, 'SIGKILL');
}

let cleaning: Promise<void> | undefined;
export function cleanup(): Promise<void> {
  cleaning ??= stopAll().finally(() => {
    if (tempDir !== undefined) rmSync(tempDir, { recursive: true, force: true });
  });
  return cleaning;
}

// Last resort on any exit path (process.exit, a crash): synchronous kills and removal only.
process.on('exit', () => {
  for (const m of started) killGroup(m, 'SIGKILL');
  if (tempDir !== undefined) rmSync(tempDir, { recursive: true, force: true });
});
let interrupted = false;

/** A signal asked the run to stop: measurements in progress are void. */
export function wasInterrupted(): boolean {
  return interrupted;
}
// SIGHUP too (a closed terminal or ssh session): by default it ends Node without the exit hook, and
// the services, each in its own process group, never hear the hangup.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (interrupted) process.exit(130); // a second signal: the exit hook kills what is left
    interrupted = true;
    console.error(`\n${signal}: stopping every child process`);
    void cleanup().finally(() => process.exit(130));
  });
}

/** Runs a command to completion, capturing its output; the group is killed after `timeoutMs`. */
export async function capture(
  command: string,
  args: readonly string[],
  timeoutMs: number,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number | null; stdout: string; stderr: string; exit: string }> {
  const child = spawn(command, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env });
  // 'exit' can come before the last of the output has been read ('close' comes after): a summary
  // line printed just before exiting was sometimes missing (openssl s_time's, voiding a run).
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const m = track(command, child);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => killGroup(m, 'SIGKILL'), timeoutMs);
  await m.exited;
  // A grandchild still holding the pipes must not hang the run, nor outlive it untracked.
  const grace = new AbortController();
  const closedInTime = await Promise.race([closed.then(() => true), sleep(CLOSE_GRACE_MS, false, { signal: grace.signal }).catch(() => false)]);
  grace.abort();
  if (!closedInTime) killGroup(m, 'SIGKILL');
  clearTimeout(timer);
  doneWith(m);
  return { code: child.exitCode, stdout, stderr, exit: m.exit ?? '' };
}

export const pinning = { enabled: false };

/** `taskset -c <cpu> command args` when pinning is on. */
export function pinned(cpu: number, command: string, args: readonly string[]): [string, string[]] {
  return pinning.enabled ? ['taskset', ['-c', String(cpu), command, ...args]] : [command, [...args]];
}

export interface ServiceOptions {
  /** Files worth showing when it fails, besides its stderr. */
  readonly extraLogs?: readonly string[];
  /**
   * stdout into a pipe this process reads and discards, as a log collector reads a container's,
   * rather than /dev/null: writing to a pipe costs the writer what writing to /dev/null does not.
   */
  readonly drainStdout?: boolean;
}

/** A long-running service: stdout to /dev/null (or drained), stderr to a file in the temp dir. */
export function startService(name: string, cpu: number, command: string, args: readonly string[], options: ServiceOptions = {}): Managed {
  const stderrFile = join(tempDir!, `${name}.stderr`);
  const fd = openSync(stderrFile, 'w');
  const [cmd, argv] = pinned(cpu, command, args);
  try {
    const child = spawn(cmd, argv, { detached: true, stdio: ['ignore', options.drainStdout === true ? 'pipe' : 'ignore', fd] });
    child.stdout?.resume();
    return track(name, child, [stderrFile, ...(options.extraLogs ?? [])]);
  } finally {
    closeSync(fd);
  }
}

export function tail(text: string, lines = 15): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

export function logTails(m: Managed): string {
  return m.logFiles
    .filter((file) => existsSync(file))
    .map((file) => ({ file, text: tail(readFileSync(file, 'utf8')) }))
    .filter(({ text }) => text !== '')
    .map(({ file, text }) => `--- ${file}\n${text}`)
    .join('\n');
}

export class BenchError extends Error {}

/**
 * Runs a benchmark's `main`: a BenchError is said in one line (anything else with its stack), the
 * process fails, and every child process is stopped whatever happened.
 */
export async function runBenchmark(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (err) {
    if (!wasInterrupted()) {
      console.error(err instanceof BenchError ? `bench: ${err.message}` : err);
      process.exitCode = 1;
    }
  } finally {
    await cleanup();
  }
}

// ---------------------------------------------------------------------------------------------
// Tools.

export async function which(tool: string): Promise<string | undefined> {
  const found = await capture('sh', ['-c', `command -v ${tool}`], 10_000);
  if (found.code === 0 && found.stdout.trim() !== '') return found.stdout.trim();
  // apt installs nginx in /usr/sbin, which a non-login PATH may lack.
  return ['/usr/sbin', '/usr/bin'].map((dir) => join(dir, tool)).find((path) => existsSync(path));
}

/** The tool's path, installing the first package of `packages` that apt-get can install. */
export async function ensureTool(tool: string, packages: readonly string[]): Promise<string | undefined> {
  const present = await which(tool);
  if (present !== undefined) return present;
  for (const pkg of packages) {
    console.log(`${tool} not found: apt-get install -y ${pkg} …`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const result = await capture('apt-get', ['install', '-y', pkg], 10 * 60_000, env);
    const path = await which(tool);
    if (result.code === 0 && path !== undefined) return path;
    console.log(`apt-get install -y ${pkg} failed (${result.exit}):\n${tail(result.stderr || result.stdout, 5)}`);
  }
  return undefined;
}

/** Resolves once `port` accepts a connection; fails fast when the service exits first. */
export async function waitForPort(m: Managed, port: number, timeoutMs = READY_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (m.exit !== null) throw new BenchError(`${m.name} exited during start-up (${m.exit})\n${logTails(m)}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await sleep(50);
  }
  throw new BenchError(`${m.name} did not listen on 127.0.0.1:${port} within ${timeoutMs / 1000} s\n${logTails(m)}`);
}

/** One GET through `url` must answer 200 `ok\n`; retried until the deadline (the router may still be probing). */
export async function expectOk(m: Managed, url: string, agent: Agent, host: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (m.exit !== null) throw new BenchError(`${m.name} exited (${m.exit})\n${logTails(m)}`);
    try {
      const res = await request(url, { headers: { host }, dispatcher: agent, headersTimeout: 2_000, bodyTimeout: 2_000 });
      const body = await res.body.text();
      if (res.statusCode === 200 && body === 'ok\n') return;
      last = `HTTP ${res.statusCode} ${JSON.stringify(body.slice(0, 300))}`;
    } catch (err) {
      last = (err as { code?: string }).code ?? String(err);
    }
    await sleep(250);
  }
  throw new BenchError(`${m.name}: GET ${url} (Host: ${host}) did not answer 200 "ok\\n" within ${READY_TIMEOUT_MS / 1000} s; last: ${last}\n${logTails(m)}`);
}

export async function affinity(m: Managed): Promise<string> {
  if (m.child.pid === undefined) return '?';
  const out = await capture('taskset', ['-cp', String(m.child.pid)], 5_000);
  return out.stdout.split(':').pop()?.trim() ?? '?';
}

