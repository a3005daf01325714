import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NotARegularFile, readProblemOf, readRegularFile, readRegularText, readRegularTextSync } from '../../src/core/regular-file.js';
import { temporaryDirectories } from '../support/temp-dirs.js';

const tempDir = temporaryDirectories('regular-file-');

/** The error a read ends with; fails the test when the read succeeds instead. */
async function failureOf(read: Promise<unknown>): Promise<unknown> {
  return read.then(
    () => expect.fail('the read succeeded'),
    (err: unknown) => err,
  );
}

describe('readRegularFile', () => {
  it('reads a regular file, up to and at its bound', async () => {
    const file = join(await tempDir(), 'token');
    await writeFile(file, 'abcdef');
    expect(await readRegularText(file, 6)).toBe('abcdef');
    expect((await readRegularFile(file, 100)).length).toBe(6);
  });

  it('refuses a file larger than its bound without reading it', async () => {
    const file = join(await tempDir(), 'big');
    await writeFile(file, Buffer.alloc(1025));
    const err = await failureOf(readRegularFile(file, 1024));
    expect(err).toBeInstanceOf(NotARegularFile);
    expect((err as NotARegularFile).kind).toBe('too_large');
    expect(readProblemOf(err)).toBe('found 1025 bytes, more than the 1024 expected at most');
  });

  it('holds a file whose size reads 0 (a kernel file, one still being written) to the bound as it reads it', async () => {
    const whole = await readRegularText('/proc/self/status', 1024 * 1024);
    expect(whole).toMatch(/^Name:/);
    const err = await failureOf(readRegularFile('/proc/self/status', 100));
    expect((err as NotARegularFile).kind).toBe('too_large');
    expect(readProblemOf(err)).toBe('found 101 bytes or more (it grew while it was read, or its size read 0), more than the 100 expected at most');
  });

  it('reads a file of exactly its bound, and a large one whole', async () => {
    const file = join(await tempDir(), 'large');
    const bytes = Buffer.alloc(300_000, 7);
    await writeFile(file, bytes);
    expect((await readRegularFile(file, 300_000)).equals(bytes)).toBe(true);
  });

  it('refuses a FIFO at once, where an open() waited for a writer that never came', async () => {
    const fifo = join(await tempDir(), 'pipe');
    execFileSync('mkfifo', [fifo]);
    const err = await failureOf(readRegularFile(fifo, 1024));
    expect((err as NotARegularFile).kind).toBe('special');
    expect(readProblemOf(err)).toBe('found a FIFO, socket or device, not a regular file');
  });

  it('refuses a device (/dev/zero, which never ends) and a directory', async () => {
    expect(((await failureOf(readRegularFile('/dev/zero', 1024))) as NotARegularFile).kind).toBe('special');
    const dir = join(await tempDir(), 'dir');
    await mkdir(dir);
    const err = await failureOf(readRegularFile(dir, 1024));
    expect((err as NotARegularFile).kind).toBe('directory');
    expect(readProblemOf(err)).toBe('found a directory');
  });

  it('reads synchronously with the same refusals, for what is read once at start', async () => {
    const file = join(await tempDir(), 'token');
    await writeFile(file, 'abcdef');
    expect(readRegularTextSync(file, 6)).toBe('abcdef');
    expect(() => readRegularTextSync(file, 5)).toThrow(NotARegularFile);
    const fifo = join(await tempDir(), 'pipe');
    execFileSync('mkfifo', [fifo]);
    expect(() => readRegularTextSync(fifo, 1024)).toThrow(/found a FIFO, socket or device, not a regular file/);
    // A file whose size reads 0 is held to the bound as it is read, as by readRegularFile.
    expect(readRegularTextSync('/proc/self/status', 1024 * 1024)).toMatch(/^Name:/);
    expect(() => readRegularTextSync('/proc/self/status', 100)).toThrow('found 101 bytes or more (it grew while it was read, or its size read 0), more than the 100 expected at most');
  });

  it("passes the system's own error on, named by its code", async () => {
    const err = await failureOf(readRegularFile(join(await tempDir(), 'missing'), 1024));
    expect(readProblemOf(err)).toBe('ENOENT');
  });
});
