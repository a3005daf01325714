/** Runs the compiled `edge-router` as a real process (built by test/global-setup.ts). */
import { spawn, type ChildProcess } from 'node:child_process';

export interface RunningProcess {
  readonly child: ChildProcess;
  /** Everything written so far. */
  output(): string;
  /** Resolves with the first output line matching `pattern`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

/**
 * How long a test may wait for a `--workers N` router to start: the primary, then each worker,
 * saying it is ready. About 4 s on an idle machine; 20 s was measured on a shared 2-core machine
 * at load 12–14 (every process loads and compiles the whole router while it gets a sixth of a
 * core). A bound, not a prediction: a wait for readiness ends as soon as the workers are ready.
 */
export const CLUSTER_START_TIMEOUT_MS = 60_000;

export interface RunOptions {
  /**
   * Leads a process group of its own (its cluster workers join it), as a program started from a
   * terminal does: `process.kill(-child.pid, signal)` then reaches every process at once, as Ctrl-C does.
   */
  readonly ownProcessGroup?: boolean;
}

export function runEdgeRouter(args: string[], env: NodeJS.ProcessEnv = {}, options: RunOptions = {}): RunningProcess {
  const child = spawn(process.execPath, ['dist/src/main.js', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: options.ownProcessGroup ?? false });
  let text = '';
  const waiters: Array<() => void> = [];
  const onData = (d: Buffer) => {
    text += d.toString();
    waiters.splice(0).forEach((w) => w());
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // An exit after the last output wakes the waiters too (on 'close', once every byte it wrote has
  // been read): a router that failed to start (a port taken) was waited for until the timeout.
  child.once('close', () => waiters.splice(0).forEach((w) => w()));
  return {
    child,
    output: () => text,
    waitFor(pattern, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}; output:\n${text}`)), timeoutMs);
        const check = () => {
          const line = text.split('\n').find((l) => pattern.test(l));
          if (line !== undefined) {
            clearTimeout(timer);
            resolve(line);
          } else if (child.exitCode !== null) {
            clearTimeout(timer);
            reject(new Error(`process exited (${child.exitCode}) before ${pattern}; output:\n${text}`));
          } else waiters.push(check);
        };
        check();
      });
    },
    async stop(signal = 'SIGTERM', timeoutMs = 15_000) {
      if (child.exitCode !== null) return child.exitCode;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** The lines of `proc`'s output so far that contain `text`. */
export function outputLinesWith(proc: RunningProcess, text: string): string[] {
  return proc.output().split('\n').filter((l) => l.includes(text));
}

/** Pids of the router workers that said they are ready, in order (a replacement adds its own). */
export function readyPidsOf(proc: RunningProcess): number[] {
  return outputLinesWith(proc, '"edge router ready"').map((l) => (JSON.parse(l) as { pid: number }).pid);
}

/** Whether a process with this pid is still there (signal 0 tests without sending anything). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
