/** Temporary directories for a test file, each removed after the test that made it. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';

/**
 * Registers the calling file's clean-up (an afterEach: call it at the file's top level, before any
 * afterEach that must run first, as vitest runs them last-registered first) and returns a maker of
 * directories named `<prefix>…`.
 */
export function temporaryDirectories(prefix: string): () => Promise<string> {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });
  return async () => {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    dirs.push(dir);
    return dir;
  };
}
