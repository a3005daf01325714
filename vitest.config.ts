import { defineConfig } from 'vitest/config';
import { LongestFirstSequencer } from './test/support/longest-first.js';

/**
 * Test files of the pure layers (core/ and routing/ import no I/O, start nothing and change no
 * global: STYLE.md): they share one module context per worker instead of each loading its own,
 * which took most of their time (21 files: 29 s run isolated, 7 s shared, on a busy machine).
 */
const PURE = ['test/core/**/*.test.ts', 'test/routing/**/*.test.ts'];

/**
 * Integration files that set no process.env, install no global and restore what they spy on after
 * each test (checked by eye and run twice shared, 2026-12-05): each isolated file paid ~1.5 s of
 * CPU for its own fork and module graph (these 26 files: 77 s CPU isolated, 39 s shared, on a busy
 * host). They share one module context per worker too; they still start real servers and processes.
 */
const SHARED_INTEGRATION = ['test/cli/**/*.test.ts', 'test/config/**/*.test.ts', 'test/geoip/**/*.test.ts', 'test/architecture/**/*.test.ts'];

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
      { extends: true, test: { name: 'integration', include: ['test/**/*.test.ts'], exclude: [...PURE, ...SHARED_INTEGRATION], globalSetup: ['test/global-setup.ts'] } },
      // Its files may run the compiled router (dist/): the same setup, a no-op once dist/ is fresh.
      { extends: true, test: { name: 'integration-shared', include: SHARED_INTEGRATION, isolate: false, globalSetup: ['test/global-setup.ts'] } },
    ],
  },
});
