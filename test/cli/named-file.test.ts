import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { replaceFile } from '../../src/cli/named-file.js';
import { temporaryDirectories } from '../support/temp-dirs.js';

const tempDir = temporaryDirectories('named-file-');

describe('replaceFile', () => {
  it('puts a new file in place of the old one (renamed over it, never written into it), with the mode asked', async () => {
    const dir = await tempDir();
    const file = join(dir, 'backup.json');
    await writeFile(file, 'the good backup');
    const before = await stat(file);
    await replaceFile(file, 'the new backup', 0o600);
    const after = await stat(file);
    expect(await readFile(file, 'utf8')).toBe('the new backup');
    // Another inode: a reader holding the old file, or a write that failed midway, never saw it cut short.
    expect(after.ino).not.toBe(before.ino);
    expect(after.mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(['backup.json']);
  });

  it('leaves what was there, and no temporary file, when the new one cannot be put in place', async () => {
    const dir = await tempDir();
    const target = join(dir, 'taken');
    await mkdir(target);
    await writeFile(join(target, 'inside'), 'kept');
    await expect(replaceFile(target, 'data')).rejects.toMatchObject({ code: expect.stringMatching(/EISDIR|ENOTEMPTY|EEXIST/) });
    expect((await readdir(dir)).sort()).toEqual(['taken']);
    expect(await readFile(join(target, 'inside'), 'utf8')).toBe('kept');
  });
});
