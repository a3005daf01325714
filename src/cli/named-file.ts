/**
 * Files the operator names on the command line (--out, --readme, a backup): failing to read or
 * write one is their input to fix, so it is one line naming the file, not a stack trace.
 */
import { rename, rm, writeFile } from 'node:fs/promises';
import { ConfigError } from '../core/errors.js';

/**
 * Writes `data` to `file` whole or not at all: to a file beside it, then renamed over it. Written in
 * place, a full disk or a kill midway left the previous file (a good backup, a database a router
 * watches) emptied and the new one cut short.
 */
export async function replaceFile(file: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(temporary, data, { mode });
    await rename(temporary, file);
  } catch (err) {
    await rm(temporary, { force: true });
    throw err;
  }
}

/** Runs `io` on `file`; a failure becomes `<file>: cannot read (ENOENT)` or `<file>: cannot write (EACCES)`. */
export async function onNamedFile<T>(file: string, access: 'read' | 'write', io: () => Promise<T>): Promise<T> {
  try {
    return await io();
  } catch (err) {
    throw new ConfigError(`${file}: cannot ${access} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}
