/**
 * The test set-up as vitest.config.ts states it, checked against the test files: a file that
 * replaces a module with vi.mock runs in a module graph of its own. In a project that shares one
 * module context per worker (isolate: false), a module an earlier file had loaded kept the real
 * one, and the file passed or failed by the order the files happened to run in (seen in CI).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import config from '../../vitest.config.js';

interface ProjectTest {
  readonly name?: string;
  readonly include?: readonly string[];
  readonly exclude?: readonly string[];
  readonly isolate?: boolean;
}

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? testFiles(path) : entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

/** The config's globs as regular expressions: `**` any folders (or none), `*` within one name. */
function globMatcher(glob: string): RegExp {
  const pattern = glob
    .split(/(\*\*\/|\*)/)
    .map((part) => (part === '**/' ? '(?:[^/]+/)*' : part === '*' ? '[^/]*' : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${pattern}$`);
}

const matchesAny = (file: string, globs: readonly string[] = []) => globs.some((glob) => globMatcher(glob).test(file));

describe('test isolation', () => {
  it('reads the globs of the config as vitest does', () => {
    expect(matchesAny('test/core/a.test.ts', ['test/core/**/*.test.ts'])).toBe(true);
    expect(matchesAny('test/core/deep/a.test.ts', ['test/core/**/*.test.ts'])).toBe(true);
    expect(matchesAny('test/corex/a.test.ts', ['test/core/**/*.test.ts'])).toBe(false);
    expect(matchesAny('test/orchestrator/container-pool.test.ts', ['test/orchestrator/container-pool.test.ts'])).toBe(true);
  });

  it('runs every file that uses vi.mock only in projects that give each file its own module graph', () => {
    const shared = (config as { test?: ProjectTest & { projects?: Array<{ test: ProjectTest }> } }).test;
    // A project takes the shared options' isolate unless it sets its own (extends: true).
    const projects = (shared?.projects ?? []).map((p) => ({ ...p.test, isolate: p.test.isolate ?? shared?.isolate }));
    expect(projects.length).toBeGreaterThan(0);
    const mocking = testFiles('test').filter((file) => /\bvi\.mock\(/.test(readFileSync(file, 'utf8')));
    expect(mocking.length).toBeGreaterThan(0);
    const sharedRuns = mocking.flatMap((file) =>
      projects.filter((p) => p.isolate === false && matchesAny(file, p.include) && !matchesAny(file, p.exclude)).map((p) => `${file} in ${p.name}`),
    );
    expect(sharedRuns).toEqual([]);
  });
});
