/**
 * The process logger (pino, JSON lines on stdout). Secrets never reach it: credentials-bearing
 * fields are redacted by path, and the access log records chosen fields only, never headers.
 */
import cluster from 'node:cluster';
import { writeSync } from 'node:fs';
import { pino, type Logger, type DestinationStream } from 'pino';
import { LineBatch } from './line-batch.js';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The most log output held while stdout does not keep up; past it, lines are dropped rather than memory grown. */
const MAX_PENDING_BYTES = 16 * 1024 * 1024;
const STDOUT_FD = 1;
/** POSIX's PIPE_BUF on Linux: a write to a pipe of at most this many bytes is never split or mixed with another's. */
export const PIPE_BUF = 4096;

/**
 * `text` (whole lines) cut at line ends into pieces of at most `limit` bytes each (a longer line
 * goes alone). Cluster workers share one stdout: a pipe, under Docker, Kubernetes or a service
 * manager. A write of a 64 KiB batch to a pipe that is nearly full is taken in parts, and another
 * worker's write lands between them, in the middle of a line: seen with 4 workers and a reader
 * slower than the log, dozens of lines in 80,000 spliced into one another (invalid JSON, a line
 * forged out of two). Writes of at most PIPE_BUF bytes are atomic (POSIX), so they never mix.
 */
export function pipeSizedChunks(text: string, limit = PIPE_BUF): string[] {
  if (text.length * 3 <= limit) return [text]; // at most 3 bytes a UTF-16 unit
  const chunks: string[] = [];
  let start = 0;
  let bytes = 0;
  let at = 0;
  while (at < text.length) {
    const newline = text.indexOf('\n', at);
    const end = newline === -1 ? text.length : newline + 1;
    const lineBytes = Buffer.byteLength(text.slice(at, end));
    if (bytes > 0 && bytes + lineBytes > limit) {
      chunks.push(text.slice(start, at));
      start = at;
      bytes = 0;
    }
    bytes += lineBytes;
    at = end;
  }
  if (start < text.length) chunks.push(text.slice(start));
  return chunks;
}

/**
 * `text` as it is written to stdout: whole, or in pipeSizedChunks when other processes write to
 * this stdout too (the process is a cluster worker, or a primary with workers).
 */
function stdoutPieces(text: string): string[] {
  const shared = cluster.isWorker || Object.keys(cluster.workers ?? {}).length > 0;
  return shared ? pipeSizedChunks(text) : [text];
}

/**
 * stdout, buffered: lines are gathered into batches of about 64 KiB (handed on at least every
 * 200 ms and on exit), so a busy router makes one write() per many requests instead of one each.
 */
export function createLogSink(): DestinationStream & { flushSync(): void } {
  // maxWrite PIPE_BUF: sonic-boom joins pieces handed to it while a write is under way, up to
  // maxWrite bytes; joined past PIPE_BUF, the pieces cut for a shared stdout would mix again. A
  // whole batch handed alone (stdout not shared) is still written in one call, however long.
  const stdout = pino.destination({ dest: STDOUT_FD, sync: false, minLength: 0, maxLength: MAX_PENDING_BYTES, maxWrite: PIPE_BUF });
  // Bytes handed to sonic-boom and bytes it has written or dropped, from its public events: what
  // settleLogs waits for. Counted per batch (64 KiB), not per line.
  let handed = 0;
  let settled = 0;
  // Dropped while stdout stayed blocked: counted (edge_router_log_lines_dropped_total), and said in
  // the log itself once lines get through again, so that an operator can tell it has holes.
  let droppedSinceNotice = 0;
  stdout.on('drop', (data: string | Buffer) => {
    settled += Buffer.byteLength(data);
    const lines = countLines(data);
    droppedLines += lines;
    droppedSinceNotice += lines;
  });
  stdout.on('write', (n: number) => {
    settled += n;
    if (droppedSinceNotice === 0) return;
    const lines = droppedSinceNotice;
    droppedSinceNotice = 0;
    // Not from inside sonic-boom's own event: on the next turn, into the batch like any line.
    setImmediate(() => batch.write(`{"level":40,"time":${Date.now()},"pid":${process.pid},"event":"log_dropped","lines":${lines},"msg":"log lines dropped while stdout did not keep up"}\n`));
  });
  const batch = new LineBatch(
    {
      write: (text: string) => {
        handed += Buffer.byteLength(text);
        let more = true;
        for (const piece of stdoutPieces(text)) more = stdout.write(piece);
        return more;
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
      if (rest !== null) for (const piece of stdoutPieces(rest)) writeSync(STDOUT_FD, piece);
    },
  };
  SINKS.add(sink);
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

/** Every log sink of this process (usually one), for lines written from outside a logger (logLineOutside). */
const SINKS = new Set<{ write(line: string): unknown }>();

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

/** Log lines dropped because stdout did not keep up (MAX_PENDING_BYTES held), by every sink of this process. */
let droppedLines = 0;

export function logLinesDropped(): number {
  return droppedLines;
}

function countLines(data: string | Buffer): number {
  const text = typeof data === 'string' ? data : data.toString('utf8');
  let lines = 0;
  for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) lines++;
  return lines;
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
