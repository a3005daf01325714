/**
 * A Docker engine and base images for the compose test. On a machine with Debian's docker.io but
 * no running engine, dockerd is started (as root); base images that cannot be pulled (no access
 * to Docker Hub) are replaced by local stand-ins built by deploy/standins/build.sh. Missing
 * programs skip the test loudly on a laptop and fail it in CI, like every system program.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { hasProgram } from './system-program.js';

const run = promisify(execFile);

export const DOCKER_INSTALL = 'apt-get install -y docker.io docker-compose debootstrap';

/** Runs a command; resolves with its output, rejects with stderr in the message. */
export async function sh(program: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<string> {
  try {
    const { stdout } = await run(program, args, { cwd: options.cwd, env: options.env ?? process.env, timeout: options.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${program} ${args.join(' ')} failed: ${e.message}\n${(e.stderr ?? '').slice(-4_000)}${(e.stdout ?? '').slice(-2_000)}`, { cause: err });
  }
}

async function engineAnswers(): Promise<boolean> {
  try {
    await sh('docker', ['info', '--format', '{{.ServerVersion}}'], { timeoutMs: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * Makes sure a Docker engine answers: an error message when it cannot be had (null = ready).
 * Starts dockerd in the background when it is installed and none runs (it outlives the test, as
 * the system's own would).
 */
export async function ensureDockerEngine(logDir: string): Promise<string | null> {
  for (const program of ['docker', 'docker-compose']) {
    if (!hasProgram(program)) return `${program} is not installed. Install it with: ${DOCKER_INSTALL}`;
  }
  if (await engineAnswers()) return null;
  if (!hasProgram('dockerd')) return `no Docker engine runs and dockerd is not installed. Install it with: ${DOCKER_INSTALL}`;
  if (process.getuid?.() !== 0) return 'no Docker engine runs, and starting dockerd needs root';
  mkdirSync(logDir, { recursive: true });
  const log = openSync(join(logDir, 'dockerd.log'), 'a');
  spawn('dockerd', [], { detached: true, stdio: ['ignore', log, log] }).unref();
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (await engineAnswers()) return null;
    await new Promise((r) => setTimeout(r, 500));
  }
  return `dockerd did not answer within 60 s (log: ${join(logDir, 'dockerd.log')})`;
}

async function imagePresent(image: string): Promise<boolean> {
  try {
    await sh('docker', ['image', 'inspect', image], { timeoutMs: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/** Present, or pulled (one attempt, bounded): false when it cannot be had from the registry. */
async function imageAvailable(image: string): Promise<boolean> {
  if (await imagePresent(image)) return true;
  try {
    await sh('docker', ['pull', '-q', image], { timeoutMs: 60_000 });
    return true;
  } catch {
    return false;
  }
}

export interface BaseImages {
  readonly node: string;
  readonly redis: string;
  /** How they were obtained, for the test's log. */
  readonly origin: 'official' | 'stand-in';
}

/** The official base images when this machine has or can pull them, else the stand-ins (built if needed). */
export async function baseImages(root: string): Promise<BaseImages> {
  const official = { node: 'node:20-bookworm-slim', redis: 'redis:7' };
  if ((await imageAvailable(official.node)) && (await imageAvailable(official.redis))) return { ...official, origin: 'official' };
  const standin = { node: 'edge-standin/node:20-bookworm-slim', redis: 'edge-standin/redis:7' };
  if (!(await imagePresent(standin.node)) || !(await imagePresent(standin.redis))) {
    if (!hasProgram('debootstrap')) throw new Error(`the base images cannot be pulled and debootstrap (for local stand-ins) is missing. Install it with: ${DOCKER_INSTALL}`);
    await sh('bash', [join(root, 'deploy/standins/build.sh')], { timeoutMs: 10 * 60_000 });
  }
  return { ...standin, origin: 'stand-in' };
}
