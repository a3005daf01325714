import { defineConfig } from 'vitest/config';
import { LongestFirstSequencer } from './test/support/longest-first.js';

/**
 * Test files of the pure layers (core/ and routing/ import no I/O, start nothing and change no
 * global: STYLE.md): they share one module context per worker instead of each loading its own,
 * which took most of their time (21 files: 29 s run isolated, 7 s shared, on a busy machine).
 */
const PURE = ['test/core/**/*.test.ts', 'test/routing/**/*.test.ts'];

export default defineConfig({
  test: {
    // Tests start real servers and processes; keep them from fighting over two cores.
    maxWorkers: 2,
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // The long files start first, so that both workers finish together (test/support/longest-first.ts).
    sequence: { sequencer: LongestFirstSequencer },
    projects: [
      { extends: true, test: { name: 'pure', include: PURE, isolate: false } },
      // The global setup belongs to one project: a setup in the shared options runs once per project.
      { extends: true, test: { name: 'integration', include: ['test/**/*.test.ts'], exclude: PURE, globalSetup: ['test/global-setup.ts'] } },
    ],
  },
});
