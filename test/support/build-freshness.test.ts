import { mkdtemp, mkdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildStaleReason, outputOf, staleReason } from './build-freshness.js';

describe('outputOf', () => {
  it.each([
    ['src/main.ts', 'dist/src/main.js'],
    ['bench/proxy.ts', 'dist/bench/proxy.js'],
    ['src/routing/pick-region.ts', 'dist/src/routing/pick-region.js'],
    ['src/types.d.ts', undefined],
    ['src/dashboard/browser/dashboard.js', undefined],
    ['src/data/regions.json', undefined],
  ])('%s → %s', (source, output) => {
    expect(outputOf(source)).toBe(output);
  });
});

describe('staleReason', () => {
  const times = (entries: Record<string, number>) => (path: string) => entries[path];
  const configs = ['tsconfig.json'];

  it('is undefined when every output is at least as new as its source and the options', () => {
    expect(staleReason(['src/a.ts', 'src/b.ts', 'src/x.d.ts'], configs, times({ 'tsconfig.json': 1, 'src/a.ts': 5, 'dist/src/a.js': 5, 'src/b.ts': 2, 'dist/src/b.js': 9 }))).toBeUndefined();
  });

  it('names a missing output', () => {
    expect(staleReason(['src/a.ts', 'src/b.ts'], configs, times({ 'tsconfig.json': 1, 'src/a.ts': 2, 'dist/src/a.js': 3, 'src/b.ts': 2 }))).toBe('dist/src/b.js is missing');
  });

  it('names a source edited after its output was written', () => {
    expect(staleReason(['src/a.ts'], configs, times({ 'tsconfig.json': 1, 'src/a.ts': 4, 'dist/src/a.js': 3 }))).toBe('src/a.ts changed after dist/src/a.js was written');
  });

  it('calls every output stale once the compiler options are newer than it', () => {
    expect(staleReason(['src/a.ts'], configs, times({ 'tsconfig.json': 7, 'src/a.ts': 2, 'dist/src/a.js': 3 }))).toBe('compiler options changed after dist/src/a.js was written');
  });

  it('calls a checkout with nothing to compile stale rather than current', () => {
    expect(staleReason([], configs, times({ 'tsconfig.json': 1 }))).toBe('no source to compile was found');
  });
});

describe('buildStaleReason', () => {
  it('reads the file times of a checkout: current after a compile, stale after an edit', async () => {
    const root = await mkdtemp(join(tmpdir(), 'build-freshness-'));
    try {
      await mkdir(join(root, 'src/routing'), { recursive: true });
      await mkdir(join(root, 'dist/src/routing'), { recursive: true });
      for (const file of ['tsconfig.json', 'tsconfig.build.json', 'package.json', 'src/routing/pick.ts']) await writeFile(join(root, file), '{}');
      await writeFile(join(root, 'dist/src/routing/pick.js'), '');
      const at = (file: string, seconds: number) => utimes(join(root, file), seconds, seconds);
      for (const file of ['tsconfig.json', 'tsconfig.build.json', 'package.json']) await at(file, 1_000);
      await at('src/routing/pick.ts', 2_000);
      await at('dist/src/routing/pick.js', 3_000);
      expect(buildStaleReason(root)).toBeUndefined();
      await at('src/routing/pick.ts', 4_000);
      expect(buildStaleReason(root)).toBe('src/routing/pick.ts changed after dist/src/routing/pick.js was written');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
