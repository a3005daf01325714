import { defineConfig } from 'vitest/config';
import { LongestFirstSequencer } from './test/support/longest-first.js';

/**
 * Test files of the pure layers (core/ and routing/ import no I/O, start nothing and change no
 * global: STYLE.md): they share one module context per worker instead of each loading its own,
 * which took most of their time (21 files: 29 s run isolated, 7 s shared, on a busy machine).
 */
const PURE = ['test/core/**/*.test.ts', 'test/routing/**/*.test.ts'];

/**
 * Files under those folders that replace a module with vi.mock: the mock applies only to a module
 * graph of the file's own. In the shared context, a module an earlier file had loaded kept the real
 * one, and the file failed or passed by the order the files ran in (seen in CI: the failing watch of
 * replacement-watch-failure.test.ts never failed, and both its tests timed out).
 */
const PURE_WITH_MOCKS = ['test/core/replacement-watch-failure.test.ts'];

/**
 * Integration files that set no process.env, install no global and restore what they spy on after
 * each test (checked by eye and run twice shared, 2026-12-05): each isolated file paid ~1.5 s of
 * CPU for its own fork and module graph (these 26 files: 77 s CPU isolated, 39 s shared, on a busy
 * host). They share one module context per worker too; they still start real servers and processes.
 */
const SHARED_INTEGRATION = [
  'test/cli/**/*.test.ts', 'test/config/**/*.test.ts', 'test/geoip/**/*.test.ts', 'test/architecture/**/*.test.ts',
  // Checked the same way (2026-12-05): no process.env writes and no vi.mock; fake timers, spies,
  // process listeners and undici's global dispatcher put back in afterEach or finally. Many short
  // files, where a fork and a module graph of their own were most of the cost.
  'test/acme/**/*.test.ts', 'test/bench/**/*.test.ts', 'test/dashboard/**/*.test.ts',
  'test/observability/**/*.test.ts', 'test/registry/**/*.test.ts', 'test/support/**/*.test.ts',
  'test/orchestrator/container-pool.test.ts', 'test/orchestrator/latency-window.test.ts',
  'test/sim/free-port.test.ts', 'test/sim/report.test.ts',
  // Shared since the Redis subscriber connections the registry tests left reconnecting forever
  // (through a wrapper made with Object.create: test/support/overriding.ts) were closed: their
  // 2 s and rising retry timers were those load-generator.test.ts saw started in its window.
  // load-generator.test.ts still counts every timer the worker starts meanwhile: a file that leaves
  // one running fails it. Checked as above (no process.env, no vi.mock, spies put back).
  'test/hostile/**/*.test.ts', 'test/sim/load-generator.test.ts',
  // Left in 'integration': test/deploy, the long simulations (scenarios, long-tail, steady-compare)
  // and orchestrator.test.ts, whose time is their own (processes, topologies, containers) so that
  // sharing saves little, and the last holds bounds in milliseconds another file's leftover timer
  // could disturb; token-matches.test.ts, whose vi.mock('node:crypto') must apply to a module graph
  // of its own.
];

export default defineConfig({
  test: {
    // Tests start real servers and processes; keep them from fighting over two cores.
    maxWorkers: 2,
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // The long files start first, so that both workers finish together (test/support/longest-first.ts).
    sequence: { sequencer: LongestFirstSequencer },
    projects: [
      { extends: true, test: { name: 'pure', include: PURE, exclude: PURE_WITH_MOCKS, isolate: false } },
      { extends: true, test: { name: 'pure-isolated', include: PURE_WITH_MOCKS } },
      // The global setup belongs to one project: a setup in the shared options runs once per project.
      { extends: true, test: { name: 'integration', include: ['test/**/*.test.ts'], exclude: [...PURE, ...SHARED_INTEGRATION], globalSetup: ['test/global-setup.ts'] } },
      // Its files may run the compiled router (dist/): the same setup, a no-op once dist/ is fresh.
      { extends: true, test: { name: 'integration-shared', include: SHARED_INTEGRATION, isolate: false, globalSetup: ['test/global-setup.ts'] } },
    ],
  },
});
