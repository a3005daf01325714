/**
 * The process logger (pino, JSON lines on stdout). Secrets never reach it: credentials-bearing
 * fields are redacted by path, and the access log records chosen fields only, never headers.
 */
import { pino, type Logger, type DestinationStream } from 'pino';
import { LineBatch } from './line-batch.js';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The most log output held while stdout does not keep up; past it, lines are dropped rather than memory grown. */
const MAX_PENDING_BYTES = 16 * 1024 * 1024;

/**
 * stdout, buffered: lines are gathered into batches of about 64 KiB (handed on at least every
 * 200 ms and on exit), so a busy router makes one write() per many requests instead of one each.
 */
export function createLogSink(): DestinationStream & { flushSync(): void } {
  const stdout = pino.destination({ dest: 1, sync: false, minLength: 0, maxLength: MAX_PENDING_BYTES });
  const batch = new LineBatch(stdout, { batchChars: 65_536, flushEveryMs: 200 });
  const sink = {
    write: (line: string) => batch.write(line),
    flushSync: () => {
      batch.flush();
      stdout.flushSync();
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
