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
  const batch = new LineBatch(stdout, { batchChars: 65_536, flushEveryMs: 200 });
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
  process.once('exit', () => {
    try {
      sink.flushSync();
    } catch {
      // stdout already gone: nothing to save
    }
  });
  return sink;
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
