/**
 * Log lines gathered into batches of UTF-8 bytes before they reach the output stream: one Buffer
 * per batch instead of one string per line.
 *
 * Why not leave the batching to sonic-boom (pino's destination)? Its `write` measures the byte
 * length of the batch it is appending to on every call, which flattens that growing string each
 * time: with an 8 KiB batch and one access-log line per request, that was several kilobytes of
 * garbage and a copy per request, the largest single allocation on the request path.
 *
 * Why bytes, written as each line arrives? A line is encoded once, into the batch's own buffer, and
 * the batch goes out as it is. Gathered as strings, each line was flattened on arrival (so that its
 * pieces were still in the cache), the batch joined into one string at flush time, and that string
 * encoded to UTF-8 (measured, then encoded again, by sonic-boom): three copies of every byte of the
 * log, about 2,000–3,500 instructions a request more (counted, docs/performance-notes.md, 2026-12-05).
 */

export interface LineOutput {
  write(chunk: Buffer): unknown;
}

export interface LineBatchOptions {
  /** A batch is handed on as soon as it holds this many bytes. */
  readonly batchBytes: number;
  /** …and at least this often while it holds anything (0 = only by size and `flush`). */
  readonly flushEveryMs: number;
}

/** UTF-8 takes at most 3 bytes for a UTF-16 unit (a surrogate pair's 4 bytes are 2 units). */
const MAX_BYTES_PER_UNIT = 3;
/**
 * Room past `batchBytes` for the line that fills a batch, so that a batch is not handed on early
 * for the want of room: a line of up to this many characters always fits (an access line stays
 * under 4 KiB, access-log.ts).
 */
const ROOM_CHARS = 4_096;

export class LineBatch {
  private buffer: Buffer;
  private used = 0;
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly output: LineOutput,
    private readonly options: LineBatchOptions,
  ) {
    this.buffer = this.newBuffer();
    if (options.flushEveryMs > 0) {
      this.timer = setInterval(() => this.flush(), options.flushEveryMs);
      this.timer.unref();
    }
  }

  write(line: string): boolean {
    if (line.length * MAX_BYTES_PER_UNIT > this.buffer.length - this.used) {
      this.flush();
      if (line.length * MAX_BYTES_PER_UNIT > this.buffer.length) {
        // Longer than any batch holds (a stack trace of a line): alone, in order.
        this.output.write(Buffer.from(line, 'utf8'));
        return true;
      }
    }
    // A line built from dozens of pieces (the access log's) is a tree of string fragments: it is
    // read while they are still in the cache (left to a join at flush time, walking a batch of
    // such trees gone cold was the dearest step of logging a request).
    this.used += this.buffer.write(line, this.used, 'utf8');
    if (this.used >= this.options.batchBytes) this.flush();
    return true;
  }

  /** Hands whatever is gathered to the output now. */
  flush(): void {
    const batch = this.take();
    if (batch !== null) this.output.write(batch);
  }

  /** Whatever is gathered, taken out of the batch (for a synchronous write at exit), or null. */
  take(): Buffer | null {
    const used = this.used;
    if (used === 0) return null;
    this.used = 0;
    // A batch handed on by the timer, mostly small, is copied out and the buffer kept: the output
    // holds what it is given until written (up to 16 MiB of it while stdout is blocked), and a
    // small view would hold the whole buffer. A full one is handed on as it is, and the next
    // batch gets a buffer of its own.
    if (used < this.options.batchBytes / 2) return Buffer.from(this.buffer.subarray(0, used));
    const batch = this.buffer.subarray(0, used);
    this.buffer = this.newBuffer();
    return batch;
  }

  /** Stops the periodic flush (after a last one). */
  close(): void {
    this.flush();
    if (this.timer !== undefined) clearInterval(this.timer);
  }

  private newBuffer(): Buffer {
    // Not from Node's shared pool (it only serves small buffers anyway): a batch lives until written.
    return Buffer.allocUnsafeSlow(this.options.batchBytes + ROOM_CHARS * MAX_BYTES_PER_UNIT);
  }
}
