import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KNOWN_LONG_FILES, longestFirst } from './longest-first.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('longestFirst', () => {
  const order = (files: string[], known: Record<string, number>) => longestFirst(files, (f) => f, known);

  it('starts the known long files first, longest first, and keeps the order of the others after them', () => {
    expect(order(['a', 'b', 'slow', 'c', 'slowest'], { slow: 60, slowest: 180 })).toEqual(['slowest', 'slow', 'a', 'b', 'c']);
  });

  it('keeps the given order of files with equal estimates', () => {
    expect(order(['x', 'y', 'z'], { x: 5, z: 5 })).toEqual(['x', 'z', 'y']);
  });

  it('leaves the files as given when none is known long', () => {
    expect(order(['c', 'a', 'b'], { elsewhere: 100 })).toEqual(['c', 'a', 'b']);
  });

  it('names only test files that exist (a renamed file would silently lose its place)', () => {
    const missing = Object.keys(KNOWN_LONG_FILES).filter((path) => !existsSync(join(ROOT, path)));
    expect(missing).toEqual([]);
  });
});
