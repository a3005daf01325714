/**
 * Reading a file the router is given, at start and at every reload, only when it is a regular file
 * of sensible size. Replaced by a FIFO, a path's open() blocked a thread of libuv's pool until some
 * writer came, and every later reload of that kind queued behind it, silently, for good (a
 * certificate then served past its expiry); replaced by /dev/zero or a file of gigabytes, it was
 * read into memory, in every worker at once, until a string or buffer limit failed (found by
 * review). The file is opened without blocking (O_NONBLOCK: an open of a FIFO returns at once;
 * reads of a regular file ignore the flag), its kind and size are read from the open handle (no
 * window for a swap between a check and the read), and only then is it read.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';

/** Why a file was not read: what the path names, in words for a message ("a directory"). */
export class NotARegularFile extends Error {
  constructor(
    readonly file: string,
    /** "a directory", "a FIFO, socket or device", or "N bytes, more than M". */
    readonly found: string,
    readonly kind: 'directory' | 'special' | 'too_large',
  ) {
    super(`${file}: found ${found}`);
    this.name = 'NotARegularFile';
  }
}

const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);
/** Read beyond the size the file had when opened (one that grows, or a size-0 kernel file), 64 KiB at a time. */
const GROWTH_CHUNK = 64 * 1024;

/** The file's bytes; throws NotARegularFile, or the system's error (ENOENT, EACCES) as it came. */
export async function readRegularFile(file: string, maxBytes: number): Promise<Buffer> {
  const handle = await open(file, OPEN_FLAGS);
  try {
    const info = await handle.stat();
    refuseUnlessRegular(file, info, maxBytes);
    const into = new BoundedChunks(file, info.size, maxBytes);
    for (;;) {
      const buffer = into.next();
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (!into.took(buffer, bytesRead)) return into.bytes();
    }
  } finally {
    await handle.close();
  }
}

/** readRegularFile as UTF-8 text. */
export async function readRegularText(file: string, maxBytes: number): Promise<string> {
  return (await readRegularFile(file, maxBytes)).toString('utf8');
}

/** readRegularText for what is read once at start, from synchronous code. */
export function readRegularTextSync(file: string, maxBytes: number): string {
  const fd = openSync(file, OPEN_FLAGS);
  try {
    const info = fstatSync(fd);
    refuseUnlessRegular(file, info, maxBytes);
    const into = new BoundedChunks(file, info.size, maxBytes);
    for (;;) {
      const buffer = into.next();
      if (!into.took(buffer, readSync(fd, buffer, 0, buffer.length, null))) return into.bytes().toString('utf8');
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * A file read by hand, never more than maxBytes + 1: reading to the end (readFile) takes a file
 * whose size reads 0 (a kernel file, one being written) however long it is, and only then could
 * it be refused. The first read asks for the size the file had when opened, and one byte more.
 */
class BoundedChunks {
  private readonly chunks: Buffer[] = [];
  private total = 0;

  constructor(
    private readonly file: string,
    private readonly size: number,
    private readonly maxBytes: number,
  ) {}

  /** A buffer for the next read. */
  next(): Buffer {
    return Buffer.allocUnsafe(Math.min(this.total === 0 ? this.size + 1 : GROWTH_CHUNK, this.maxBytes + 1 - this.total));
  }

  /** Keeps what a read put in `buffer`; false at the end of the file. Throws once past the bound. */
  took(buffer: Buffer, bytesRead: number): boolean {
    if (bytesRead === 0) return false;
    this.chunks.push(bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead));
    this.total += bytesRead;
    if (this.total > this.maxBytes) throw tooLarge(this.file, `${this.total} bytes or more (it grew while it was read, or its size read 0)`, this.maxBytes);
    return true;
  }

  bytes(): Buffer {
    return this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.total);
  }
}

function refuseUnlessRegular(file: string, info: Stats, maxBytes: number): void {
  if (info.isDirectory()) throw new NotARegularFile(file, 'a directory', 'directory');
  if (!info.isFile()) throw new NotARegularFile(file, 'a FIFO, socket or device, not a regular file', 'special');
  if (info.size > maxBytes) throw tooLarge(file, `${info.size} bytes`, maxBytes);
}

function tooLarge(file: string, size: string, maxBytes: number): NotARegularFile {
  return new NotARegularFile(file, `${size}, more than the ${maxBytes} expected at most`, 'too_large');
}

/** A PEM file (a certificate chain, a key, a CA bundle): a large CA bundle is some 250 KB. */
export const MAX_PEM_FILE_BYTES = 16 * 1024 * 1024;
/** A token file: a token is at most a few hundred bytes. */
export const MAX_TOKEN_FILE_BYTES = 1024 * 1024;
/** A GeoIP database: the largest MaxMind sells is some hundreds of MB; each worker holds it whole. */
export const MAX_GEOIP_FILE_BYTES = 1024 * 1024 * 1024;

/** What went wrong reading a file, for a message: the system's code (ENOENT), or what the path names. */
export function readProblemOf(err: unknown): string {
  if (err instanceof NotARegularFile) return `found ${err.found}`;
  return (err as NodeJS.ErrnoException).code ?? String(err);
}
