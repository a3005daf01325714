/** The process surface a command may touch, injected so commands run in-process under test. */
import type { Readable, Writable } from 'node:stream';

export interface CliIo {
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly stdin: Readable;
  readonly env: NodeJS.ProcessEnv;
  /**
   * Aborted on SIGTERM / SIGINT: long-running commands shut down cleanly when it fires. Also on a
   * fault of the process's own, with FAULT_STOP as its reason (src/main.ts).
   */
  readonly signal?: AbortSignal;
}

/** The reason `CliIo.signal` is aborted with when the process faulted (an uncaught exception), not when it was asked to stop. */
export const FAULT_STOP = 'fault';

/** Why the command was told to stop: a fault of its own, or a signal someone sent. */
export function stopCause(io: CliIo): 'fault' | 'signal' {
  return io.signal?.reason === FAULT_STOP ? 'fault' : 'signal';
}

/** Resolves when the command should stop (the signal fired). */
export function stopRequested(io: CliIo): Promise<void> {
  const signal = io.signal;
  if (signal === undefined) return new Promise(() => undefined);
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

export function writeLine(stream: Writable, text: string): void {
  stream.write(`${text}\n`);
}
