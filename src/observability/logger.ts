/**
 * The process logger (pino, JSON lines on stdout). Secrets never reach it: credentials-bearing
 * fields are redacted by path, and the access log records chosen fields only, never headers.
 */
import { writeSync } from 'node:fs';
import { pino, type Logger, type DestinationStream } from 'pino';
import { LineBatch } from './line-batch.js';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The most log output held while stdout does not keep up; past it, lines are dropped rather than memory grown. */
const MAX_PENDING_BYTES = 16 * 1024 * 1024;
const STDOUT_FD = 1;

/**
 * stdout, buffered: lines are gathered into batches of about 64 KiB (handed on at least every
 * 200 ms and on exit), so a busy router makes one write() per many requests instead of one each.
 */
export function createLogSink(): DestinationStream & { flushSync(): void } {
  const stdout = pino.destination({ dest: STDOUT_FD, sync: false, minLength: 0, maxLength: MAX_PENDING_BYTES });
  // Bytes handed to sonic-boom and bytes it has written or dropped, from its public events: what
  // settleLogs waits for. Counted per batch (64 KiB), not per line.
  let handed = 0;
  let settled = 0;
  stdout.on('write', (n: number) => (settled += n));
  stdout.on('drop', (data: string | Buffer) => (settled += Buffer.byteLength(data)));
  const batch = new LineBatch(
    {
      write: (text: string) => {
        handed += Buffer.byteLength(text);
        return stdout.write(text);
      },
    },
    { batchChars: 65_536, flushEveryMs: 200 },
  );
  const sink = {
    write: (line: string) => batch.write(line),
    // At exit no later turn runs an asynchronous write: handed to sonic-boom as usual, the last
    // batch started one and was lost whenever the process ended first (a line logged just before a
    // clean exit went missing). What sonic-boom holds goes out with its own synchronous flush, then
    // the partial batch with a write of our own.
    flushSync: () => {
      stdout.flushSync();
      const rest = batch.take();
      if (rest !== null) writeSync(STDOUT_FD, rest);
    },
  };
  SETTLERS.add(async (timeoutMs) => {
    batch.flush();
    if (handed <= settled) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        stdout.off('write', check);
        resolve();
      };
      const check = () => {
        if (handed <= settled) done();
      };
      const timer = setTimeout(done, timeoutMs);
      stdout.on('write', check);
    });
  });
  process.once('exit', () => {
    try {
      sink.flushSync();
    } catch {
      // stdout already gone: nothing to save
    }
  });
  return sink;
}

const SETTLERS = new Set<(timeoutMs: number) => Promise<void>>();

/**
 * Waits (at most timeoutMs) until every line logged so far has been written to stdout. Before a
 * process.exit: the exit-time flush cannot save a batch whose asynchronous write is under way (a
 * reader slower than the log, stdout's pipe full), and that batch, up to 64 KiB of lines in the
 * middle of the log, was lost from a process that exited with an error.
 */
export async function settleLogs(timeoutMs: number): Promise<void> {
  await Promise.all([...SETTLERS].map((settle) => settle(timeoutMs)));
}

/** The stream a logger writes to (the access log writes its own lines there too). */
export function logSinkOf(logger: Logger): { write(line: string): unknown } {
  return (logger as unknown as Record<symbol, { write(line: string): unknown }>)[pino.symbols.streamSym]!;
}

export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      redact: {
        paths: [
          'authorization',
          'cookie',
          'password',
          'token',
          'adminToken',
          'headers.authorization',
          'headers.cookie',
          'headers["set-cookie"]',
          'headers["proxy-authorization"]',
          'redisUrl',
        ],
        censor: '[redacted]',
      },
    },
    destination ?? createLogSink(),
  );
}
