/**
 * The process's log as seen from outside a logger: the levels, the sinks the logger registers, a
 * line written by code that holds no logger (the process's fault and exit handlers), and the wait
 * until every line is out. Apart from logger.ts so that main.ts and the CLI's help load no pino
 * (about 0.06 CPU-s a process start).
 */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const SETTLERS = new Set<(timeoutMs: number) => Promise<void>>();

/** Every log sink of this process (usually one), for lines written from outside a logger (logLineOutside). */
const SINKS = new Set<{ write(line: string): unknown }>();

/** Called by each log sink as it is made (logger.ts createLogSink): its line writer and how to wait for what it holds. */
export function registerLogSink(sink: { write(line: string): unknown }, settle: (timeoutMs: number) => Promise<void>): void {
  SINKS.add(sink);
  SETTLERS.add(settle);
}

/**
 * One JSON line from code that holds no logger (the process's fault handler): into the log sink's
 * batch like any line, so that it is never written into the middle of a batch stdout has half
 * taken; straight to stdout when the process has no sink.
 */
export function logLineOutside(line: string): void {
  const [sink] = SINKS;
  if (sink === undefined) process.stdout.write(line);
  else sink.write(line);
}

/**
 * Waits (at most timeoutMs) until every line logged so far has been written to stdout. Before a
 * process.exit: the exit-time flush cannot save a batch whose asynchronous write is under way (a
 * reader slower than the log, stdout's pipe full), and that batch, up to 64 KiB of lines in the
 * middle of the log, was lost from a process that exited with an error.
 */
export async function settleLogs(timeoutMs: number): Promise<void> {
  await Promise.all([...SETTLERS].map((settle) => settle(timeoutMs)));
}
