import { execFileSync } from 'node:child_process';
import { mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AdminTokenFile } from '../../src/dashboard/admin-token-file.js';
import { temporaryDirectories } from '../support/temp-dirs.js';
import { until } from '../support/until.js';

const FIRST = 'first-admin-token-0123456789';
const SECOND = 'second-admin-token-0123456789';
const THIRD = 'third-admin-token-0123456789';

// Registered before the watches' clean-up, so it runs after it: the watches close, then their directories go.
const tempDir = temporaryDirectories('admin-token-file-');
const opened: AdminTokenFile[] = [];
afterEach(() => {
  for (const watch of opened.splice(0)) watch.close();
});

/** Watches `file` (holding FIRST at start) and records what it reports. */
function watchFile(file: string) {
  const replaced: string[] = [];
  const refused: string[] = [];
  const watch = new AdminTokenFile({ file, current: FIRST, onReplaced: (token) => replaced.push(token), onRefused: (reason) => refused.push(reason), debounceMs: 20, pollMs: 200 });
  opened.push(watch);
  return { replaced, refused };
}

describe('AdminTokenFile', () => {
  it('reports a token replaced in place, then one renamed over the file (a trailing newline dropped)', async () => {
    const file = join(await tempDir(), 'admin-token');
    await writeFile(file, `${FIRST}\n`);
    const { replaced, refused } = watchFile(file);
    await writeFile(file, `${SECOND}\n`);
    await until('the in-place replacement reported', () => replaced.length === 1);
    await writeFile(`${file}.tmp`, THIRD);
    await rename(`${file}.tmp`, file);
    await until('the rename reported', () => replaced.length === 2);
    expect(replaced).toEqual([SECOND, THIRD]);
    expect(refused).toEqual([]);
  });

  it('follows a Kubernetes Secret update: the file is a symlink through ..data, which is swapped', async () => {
    // The kubelet's AtomicWriter: a new timestamped directory, a `..data_tmp` symlink to it renamed
    // over `..data`, the old directory removed. The visible `admin-token` link never changes.
    const dir = await tempDir();
    await mkdir(join(dir, '..v1'));
    await writeFile(join(dir, '..v1', 'admin-token'), FIRST);
    await symlink('..v1', join(dir, '..data'));
    await symlink('..data/admin-token', join(dir, 'admin-token'));
    const { replaced, refused } = watchFile(join(dir, 'admin-token'));
    await mkdir(join(dir, '..v2'));
    await writeFile(join(dir, '..v2', 'admin-token'), SECOND);
    await symlink('..v2', join(dir, '..data_tmp'));
    await rename(join(dir, '..data_tmp'), join(dir, '..data'));
    await rm(join(dir, '..v1'), { recursive: true });
    await until('the swap reported', () => replaced.length === 1);
    expect(replaced).toEqual([SECOND]);
    expect(refused).toEqual([]);
  });

  it.each([
    ['too short', 'short-token', /at least 16 characters/],
    ['with whitespace inside', 'an admin token with spaces', /whitespace at character 3/],
    ['empty (truncated mid-write)', '', /empty/],
  ])('refuses a replacement %s, never quoting it, and takes the next good one', async (_what, content, reason) => {
    const file = join(await tempDir(), 'admin-token');
    await writeFile(file, FIRST);
    const { replaced, refused } = watchFile(file);
    await writeFile(file, content);
    await until('the bad replacement refused', () => refused.length >= 1);
    expect(refused[0]).toMatch(reason);
    if (content !== '') for (const line of refused) expect(line).not.toContain(content);
    expect(replaced).toEqual([]);
    await writeFile(file, SECOND);
    await until('the good one taken', () => replaced.length === 1);
    expect(replaced).toEqual([SECOND]);
  });

  it('refuses a file that is gone (removed mid-swap), and takes it when it is back', async () => {
    const file = join(await tempDir(), 'admin-token');
    await writeFile(file, FIRST);
    const { replaced, refused } = watchFile(file);
    await rm(file);
    await until('the missing file refused', () => refused.length >= 1);
    expect(refused[0]).toMatch(/cannot read it \(ENOENT\)/);
    await writeFile(file, SECOND);
    await until('the file back', () => replaced.length === 1);
    expect(replaced).toEqual([SECOND]);
  });

  it('refuses a FIFO put in place of the file, and takes the next good one', async () => {
    // The read of a FIFO waited for a writer, and every later read queued behind it: the good
    // replacement after it was never taken, and nothing said why.
    const file = join(await tempDir(), 'admin-token');
    await writeFile(file, FIRST);
    const { replaced, refused } = watchFile(file);
    await rm(file);
    execFileSync('mkfifo', [file]);
    await until('the FIFO refused', () => refused.some((line) => line.includes('FIFO')));
    expect(refused.find((line) => line.includes('FIFO'))).toBe('cannot read it (found a FIFO, socket or device, not a regular file)');
    await rm(file);
    await writeFile(file, SECOND);
    await until('the good one taken', () => replaced.length === 1);
    expect(replaced).toEqual([SECOND]);
  });

  it('reports nothing when the file is rewritten with the token it already holds', async () => {
    const file = join(await tempDir(), 'admin-token');
    await writeFile(file, FIRST);
    const { replaced, refused } = watchFile(file);
    await writeFile(file, `${FIRST}\n`);
    await writeFile(file, SECOND);
    await until('the real replacement reported', () => replaced.length === 1);
    expect(replaced).toEqual([SECOND]);
    expect(refused).toEqual([]);
  });

  it('catches a replacement made between the start read and the watch: the file is read once the watch is open', async () => {
    const file = join(await tempDir(), 'admin-token');
    await writeFile(file, SECOND); // the router read FIRST; the file changed before it watched
    const { replaced } = watchFile(file);
    await until('the missed replacement reported', () => replaced.length === 1);
    expect(replaced).toEqual([SECOND]);
  });
});
