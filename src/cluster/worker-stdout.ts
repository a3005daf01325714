/**
 * Each worker's stdout is a pipe of its own, read by the primary, which writes what arrives, in
 * whole lines, into its own log. The primary is then the one writer of the router's stdout.
 *
 * Why not let the workers share the primary's stdout, as they did? Writes to a shared pipe (what
 * stdout is under Docker, Kubernetes or a service manager) only stay whole up to PIPE_BUF (4 KiB),
 * so each worker cut its 64 KiB batches into sixteen writes, each a round trip through libuv's
 * thread pool. With two workers on two cores that was about a tenth of the router's throughput
 * (docs/performance-notes.md, 2026-12-06). Read by the primary, a worker's batches go out whole, and
 * the primary hands them on as they come: a read and a write per batch.
 */
import type { Readable } from 'node:stream';

/**
 * A run of bytes without a line end is handed on as a line of its own once it is this long: what a
 * worker holds unfinished is bounded (a worker writes whole lines; only a broken one would not).
 */
const LONGEST_UNFINISHED_BYTES = 1024 * 1024;
const NEWLINE = 0x0a;

/**
 * The whole lines in a stream of chunks that may end anywhere (a pipe read can split a line); what
 * follows the last line end waits for the next chunk.
 */
export class WholeLines {
  private rest: Buffer | null = null;

  /** The whole lines completed by `chunk` (one Buffer, newline-terminated), or null when it completed none. */
  take(chunk: Buffer): Buffer | null {
    const lastNewline = chunk.lastIndexOf(NEWLINE);
    if (lastNewline === -1) {
      this.rest = this.rest === null ? Buffer.from(chunk) : Buffer.concat([this.rest, chunk]);
      return this.rest.length >= LONGEST_UNFINISHED_BYTES ? this.end() : null;
    }
    const whole = lastNewline === chunk.length - 1 ? chunk : chunk.subarray(0, lastNewline + 1);
    const lines = this.rest === null ? whole : Buffer.concat([this.rest, whole]);
    // Copied: the stream may reuse a chunk's memory once it is handed on.
    this.rest = lastNewline === chunk.length - 1 ? null : Buffer.from(chunk.subarray(lastNewline + 1));
    return lines;
  }

  /** What is left at the end of the stream, ended with a line end of its own (a worker that died mid-line), or null. */
  end(): Buffer | null {
    const rest = this.rest;
    this.rest = null;
    return rest === null ? null : Buffer.concat([rest, Buffer.from('\n')]);
  }
}

/**
 * Reads `stdout` (a worker's) to its end, handing each run of whole lines to `write`. Resolves once
 * the stream has ended or failed: the primary waits for that before it exits, so that what a
 * stopping worker wrote last is not lost.
 */
export function relayLines(stdout: Readable, write: (lines: Buffer) => void): Promise<void> {
  const lines = new WholeLines();
  return new Promise((resolve) => {
    stdout.on('data', (chunk: Buffer) => {
      const whole = lines.take(chunk);
      if (whole !== null) write(whole);
    });
    const finish = () => {
      const rest = lines.end();
      if (rest !== null) write(rest);
      resolve();
    };
    stdout.once('end', finish);
    // A read error (the worker's end gone): what arrived is written; nothing more will come.
    stdout.once('error', finish);
  });
}
