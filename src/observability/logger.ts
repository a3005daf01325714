/**
 * The process logger (pino, JSON lines on stdout). Secrets never reach it: credentials-bearing
 * fields are redacted by path, and the access log records chosen fields only, never headers.
 */
import { writeSync } from 'node:fs';
import { pino, type Logger, type DestinationStream } from 'pino';
import { LineBatch } from './line-batch.js';
import { registerLogSink, type LogLevel } from './process-log.js';

export { LOG_LEVELS, logLineOutside, settleLogs, type LogLevel } from './process-log.js';

export type { Logger };


/** The most log output held while stdout does not keep up; past it, lines are dropped rather than memory grown. */
const MAX_PENDING_BYTES = 16 * 1024 * 1024;
const STDOUT_FD = 1;
/** POSIX's PIPE_BUF on Linux: a write to a pipe of at most this many bytes is never split or mixed with another's. */
export const PIPE_BUF = 4096;

/**
 * `bytes` (whole lines, UTF-8) cut at line ends into pieces of at most `limit` bytes each (a
 * longer line goes alone). Cluster workers share one stdout: a pipe, under Docker, Kubernetes or a
 * service manager. A write of a 64 KiB batch to a pipe that is nearly full is taken in parts, and
 * another worker's write lands between them, in the middle of a line: seen with 4 workers and a
 * reader slower than the log, dozens of lines in 80,000 spliced into one another (invalid JSON, a
 * line forged out of two). Writes of at most PIPE_BUF bytes are atomic (POSIX), so they never mix.
 * The pieces are views of `bytes`, found by searching for newline bytes (a 0x0a byte is never part
 * of a multi-byte UTF-8 character): nothing is measured or copied per line.
 */
export function pipeSizedChunks(bytes: Buffer, limit = PIPE_BUF): Buffer[] {
  if (bytes.length <= limit) return [bytes];
  const chunks: Buffer[] = [];
  let start = 0;
  while (bytes.length - start > limit) {
    // The last line end that keeps the piece within the limit…
    let end = bytes.lastIndexOf(0x0a, start + limit - 1) + 1;
    // …or, when the first line alone is longer, that line.
    if (end <= start) {
      const newline = bytes.indexOf(0x0a, start);
      end = newline === -1 ? bytes.length : newline + 1;
    }
    chunks.push(bytes.subarray(start, end));
    start = end;
  }
  if (start < bytes.length) chunks.push(bytes.subarray(start));
  return chunks;
}

/**
 * stdout, buffered: lines are gathered into batches of about 64 KiB (handed on at least every
 * 200 ms and on exit), so a busy router makes one write() per many requests instead of one each.
 */
export function createLogSink(): DestinationStream & { flushSync(): void; flush(done?: (err?: Error) => void): void } {
  // Batches are handed on in pipeSizedChunks, and maxWrite PIPE_BUF: sonic-boom joins pieces
  // handed to it while a write is under way, up to maxWrite bytes; joined past PIPE_BUF, they could
  // be cut again. A pipe takes each such write whole or not at all (EAGAIN): cluster workers sharing
  // stdout never mix mid-line, and a process alone on it never leaves a line half written. A 64 KiB
  // batch written in one call was taken in part by a pipe nearly full; a partial write is finished
  // later by sonic-boom, but an exit meanwhile wrote the batches after it behind the part taken, a
  // line cut in two and glued to another. The cost, 16 writes a batch rather than one, was measured
  // at 0.8 µs a line (300,000 access-sized lines into a pipe, 2026-12-07).
  //
  // contentMode 'buffer': a batch is UTF-8 already (line-batch.ts), and sonic-boom takes its
  // length and writes it as it is. Handed a string, the batch was scanned for its UTF-8 length by
  // this sink and again by sonic-boom, encoded by fs.write, and encoded once more after the write
  // (sonic-boom turns the written string into a Buffer to slice off what was written): four
  // passes over every byte of the access log, about 4,500 instructions a request (counted, 2026-12-05).
  //
  // retryEAGAIN: sonic-boom retries a write that met a full pipe for as long as this says. Running,
  // always (its asynchronous retries wait 100 ms each, and a refusal would be a write error: logging
  // off for good). At exit, until the exit's deadline: its synchronous flush (run on 'exit' by pino
  // and by flushSync below) retried for ever, so a forced exit (a second signal, the exit backstop)
  // never ended while stdout's reader was stuck. A synchronous flush while running (pino's
  // logger.fatal() runs one) gets EXIT_WRITE_MS of its own, and the retries their patience back.
  watchExit();
  let exitGiveUpAt = Number.POSITIVE_INFINITY;
  /** When a synchronous write gives up: at exit, one deadline for all the exit's writes, set by the first. */
  const syncDeadline = () => {
    if (!exiting) return Date.now() + EXIT_WRITE_MS;
    if (exitGiveUpAt === Number.POSITIVE_INFINITY) exitGiveUpAt = Date.now() + EXIT_WRITE_MS;
    return exitGiveUpAt;
  };
  const stdout = pino.destination({
    dest: STDOUT_FD, sync: false, minLength: 0, maxLength: MAX_PENDING_BYTES, maxWrite: PIPE_BUF, contentMode: 'buffer',
    retryEAGAIN: () => Date.now() < exitGiveUpAt,
  });
  const flushHeldSync = stdout.flushSync.bind(stdout);
  // On the instance, so that pino's own exit flush gives up at the same deadline.
  stdout.flushSync = () => {
    exitGiveUpAt = syncDeadline();
    try {
      flushHeldSync();
    } catch (err) {
      // Past the deadline with stdout still full: what sonic-boom held is given up, as the rest below.
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
    } finally {
      if (!exiting) exitGiveUpAt = Number.POSITIVE_INFINITY;
    }
  };
  // Bytes handed to sonic-boom and bytes it has written or dropped, from its public events: what
  // settleLogs waits for. Counted per batch (64 KiB), not per line.
  let handed = 0;
  let settled = 0;
  // Dropped while stdout stayed blocked: counted (edge_router_log_lines_dropped_total), and said in
  // the log itself once lines get through again, so that an operator can tell it has holes.
  let droppedSinceNotice = 0;
  stdout.on('drop', (data: Buffer) => {
    settled += data.length;
    const lines = countLines(data);
    droppedLines += lines;
    droppedSinceNotice += lines;
  });
  // A write error: pino passes on any but EPIPE (ENOSPC on a full disk, EIO), which unheard was an
  // uncaught exception that stopped the router (a fault: drain, exit 70), and at exit sonic-boom's
  // synchronous flush retried the failing write for ever, 100 ms at a time. After any, EPIPE too,
  // logs are dropped, counted, rather than the router harmed: every later line, and no flush at exit.
  let broken = false;
  stdout.on('error', () => {
    broken = true;
    stdout.flushSync = () => undefined;
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
      write: (bytes: Buffer) => {
        if (broken) {
          droppedLines += countLines(bytes);
          return true;
        }
        handed += bytes.length;
        let more = true;
        // sonic-boom's types say string; in contentMode 'buffer' it takes Buffers (and only those).
        for (const piece of pipeSizedChunks(bytes)) more = stdout.write(piece as unknown as string);
        return more;
      },
    },
    { batchBytes: 65_536, flushEveryMs: 200 },
  );
  const sink = {
    write: (line: string) => batch.write(line),
    // pino's logger.flush(): the partial batch is handed on now, not at the next 200 ms tick (that
    // timer holds nothing alive), so that a command's last lines go out by the usual asynchronous
    // writes before the process ends, rather than all at exit.
    flush: (done?: (err?: Error) => void) => {
      batch.flush();
      done?.();
    },
    // At exit no later turn runs an asynchronous write: handed to sonic-boom as usual, the last
    // batch started one and was lost whenever the process ended first (a line logged just before a
    // clean exit went missing). What sonic-boom holds goes out with its own synchronous flush, then
    // the partial batch with a write of our own.
    flushSync: () => {
      stdout.flushSync();
      const rest = batch.take();
      if (rest === null) return;
      if (broken) {
        droppedLines += countLines(rest);
        return;
      }
      // In pieces of at most PIPE_BUF, cut at line ends, as every write: a pipe takes such a write
      // whole or answers EAGAIN, so a give-up leaves no line cut in two.
      const giveUpAt = syncDeadline();
      for (const piece of pipeSizedChunks(rest)) if (!writeWholeSync(STDOUT_FD, piece, giveUpAt)) return;
    },
  };
  registerLogSink(sink, async (timeoutMs) => {
    batch.flush();
    if (broken || handed <= settled) return;
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



/** Set once the process emits 'exit'. */
let exiting = false;
let exitWatched = false;

/**
 * Notes the exit, listened to before any sink's pino destination exists: pino's own exit flush
 * (registered with the destination) then finds it set, and takes the exit's deadline.
 */
function watchExit(): void {
  if (exitWatched) return;
  exitWatched = true;
  process.once('exit', () => {
    exiting = true;
  });
}

/** How long the exit's writes (sonic-boom's flush, then the last batch) wait in all for a stdout pipe whose reader is behind. */
const EXIT_WRITE_MS = 5_000;
const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Writes all of `bytes` to `fd` before `giveUpAt` (a Date.now() time); false when the time ran
 * out first. At exit no later turn runs, so this is a loop of synchronous writes: a stdout pipe is
 * non-blocking once `process.stdout` has been read (libuv opens it so), and a full one answers
 * EAGAIN, or takes a part of the bytes. A single writeSync lost the last batch (the lines of the
 * last 200 ms: the drain's end, the `shutdown` line) whenever the log shipper was behind, or cut it
 * mid-line (seen in review). Waits 5 ms between tries, without a busy loop. (A piece a pipe took in
 * part, a line longer than PIPE_BUF, is finished before the time is looked at again.)
 */
export function writeWholeSync(fd: number, bytes: Buffer, giveUpAt: number): boolean {
  let at = 0;
  while (at < bytes.length) {
    try {
      at += writeSync(fd, bytes, at, bytes.length - at);
      continue;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
    }
    if (Date.now() >= giveUpAt) return false;
    Atomics.wait(pause, 0, 0, 5);
  }
  return true;
}

/** Log lines dropped because stdout did not keep up (MAX_PENDING_BYTES held), by every sink of this process. */
let droppedLines = 0;

export function logLinesDropped(): number {
  return droppedLines;
}

function countLines(data: Buffer): number {
  let lines = 0;
  for (let at = data.indexOf(0x0a); at !== -1; at = data.indexOf(0x0a, at + 1)) lines++;
  return lines;
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
