/**
 * The process logger (pino, JSON lines on stdout). Secrets never reach it: credentials-bearing
 * fields are redacted by path, and the access log records chosen fields only, never headers.
 */
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * stdout, buffered: lines are written in batches of up to 8 KiB (flushed at least every 200 ms
 * and on exit), so a busy router makes one write() per many requests instead of one each.
 */
export function createLogSink(): DestinationStream & { flushSync(): void } {
  const sink = pino.destination({ dest: 1, sync: false, minLength: 8_192, periodicFlush: 200 });
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
