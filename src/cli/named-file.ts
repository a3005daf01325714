/**
 * Files the operator names on the command line (--out, --readme, a backup): failing to read or
 * write one is their input to fix, so it is one line naming the file, not a stack trace.
 */
import { ConfigError } from '../core/errors.js';

/** Runs `io` on `file`; a failure becomes `<file>: cannot read (ENOENT)` or `<file>: cannot write (EACCES)`. */
export async function onNamedFile<T>(file: string, access: 'read' | 'write', io: () => Promise<T>): Promise<T> {
  try {
    return await io();
  } catch (err) {
    throw new ConfigError(`${file}: cannot ${access} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}
