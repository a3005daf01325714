/**
 * Log lines gathered into batches before they reach the output stream: one string per batch
 * instead of one per line.
 *
 * Why not leave the batching to sonic-boom (pino's destination)? Its `write` measures the byte
 * length of the batch it is appending to on every call, which flattens that growing string each
 * time: with an 8 KiB batch and one access-log line per request, that was several kilobytes of
 * garbage and a copy per request, the largest single allocation on the request path. Here a line
 * is pushed onto an array, and the batch is joined once, when it is handed on.
 */

export interface LineOutput {
  write(chunk: string): unknown;
}

export interface LineBatchOptions {
  /** A batch is handed on as soon as it holds this many characters. */
  readonly batchChars: number;
  /** …and at least this often while it holds anything (0 = only by size and `flush`). */
  readonly flushEveryMs: number;
}

export class LineBatch implements LineOutput {
  private readonly lines: string[] = [];
  private chars = 0;
  /** The last character of the last line (see write). */
  lastChar = 0;
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly output: LineOutput,
    private readonly options: LineBatchOptions,
  ) {
    if (options.flushEveryMs > 0) {
      this.timer = setInterval(() => this.flush(), options.flushEveryMs);
      this.timer.unref();
    }
  }

  write(line: string): boolean {
    // A line built from dozens of pieces (the access log's) is a tree of string fragments until
    // something flattens it. Reading one character flattens it now, while its fragments are still
    // in the cache; left to the join at flush time, walking a batch of such trees gone cold was the
    // single dearest step of logging a request. (The result is used so that it is not optimised away.)
    this.lastChar = line.charCodeAt(line.length - 1);
    this.lines.push(line);
    this.chars += line.length;
    if (this.chars >= this.options.batchChars) this.flush();
    return true;
  }

  /** Hands whatever is gathered to the output now. */
  flush(): void {
    const batch = this.take();
    if (batch !== null) this.output.write(batch);
  }

  /** Whatever is gathered, taken out of the batch (for a synchronous write at exit), or null. */
  take(): string | null {
    if (this.lines.length === 0) return null;
    const batch = this.lines.length === 1 ? this.lines[0]! : this.lines.join('');
    this.lines.length = 0;
    this.chars = 0;
    return batch;
  }

  /** Stops the periodic flush (after a last one). */
  close(): void {
    this.flush();
    if (this.timer !== undefined) clearInterval(this.timer);
  }
}
