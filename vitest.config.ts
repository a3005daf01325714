import { defineConfig } from 'vitest/config';
import { LongestFirstSequencer } from './test/support/longest-first.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // Tests start real servers and processes; keep them from fighting over two cores.
    maxWorkers: 2,
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // The long files start first, so that both workers finish together (test/support/longest-first.ts).
    sequence: { sequencer: LongestFirstSequencer },
  },
});
