/**
 * The order vitest starts test files in. With two workers, the run ends when the busier one
 * does: a fresh checkout (CI) has no timings cached, vitest then starts the largest files first,
 * and a three-minute simulation file could start last, with the other worker idle all that time.
 * Files known to run long start first, longest first (each worker then takes the next longest
 * as it frees up, and the short files fill in at the end); the rest keep vitest's own order.
 */
import { relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Seconds each file took in a full run (2 workers, a busy shared machine: only the order
 * matters). Files not named here are short; a file that grows long belongs here.
 */
export const KNOWN_LONG_FILES: Readonly<Record<string, number>> = {
  'test/sim/scenarios.test.ts': 187,
  'test/cluster/supervisor.test.ts': 161,
  'test/sim/long-tail.test.ts': 109,
  'test/deploy/compose-up.test.ts': 98,
  'test/cluster/registry-seed.test.ts': 89,
  'test/cluster/drain-readiness.test.ts': 67,
  'test/ingress/lifecycle.test.ts': 63,
  'test/sim/steady-compare.test.ts': 63,
  'test/cluster/one-router.test.ts': 60,
  'test/proxy/region-gate.model.test.ts': 46,
  'test/dashboard/browser.test.ts': 42,
  'test/ingress/session-resumption.test.ts': 36,
  'test/orchestrator/orchestrator.test.ts': 32,
  'test/cli/admin-token-rotation.test.ts': 25,
  'test/ingress/upgrades.test.ts': 25,
  'test/registry/redis-silent-connection.test.ts': 23,
  'test/registry/redis-sentinel-partition.test.ts': 22,
  'test/hostile/client-lifetime.test.ts': 18,
  'test/hostile/slow-clients.test.ts': 17,
  'test/registry/prober.test.ts': 17,
  'test/ingress/deadline-admission.test.ts': 16,
  'test/observability/logger.test.ts': 15,
};

/**
 * `files` (paths relative to the project root) with the known long ones first, longest first;
 * the others after them, in the order given. Stable: equal estimates keep their given order.
 */
export function longestFirst<T>(files: readonly T[], pathOf: (file: T) => string, knownSeconds: Readonly<Record<string, number>>): T[] {
  const estimate = (file: T) => knownSeconds[pathOf(file)] ?? 0;
  return files
    .map((file, index) => ({ file, index, seconds: estimate(file) }))
    .sort((a, b) => b.seconds - a.seconds || a.index - b.index)
    .map(({ file }) => file);
}

export class LongestFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const root = this.ctx.config.root;
    const path = (spec: TestSpecification) => relative(root, spec.moduleId).split('\\').join('/');
    return longestFirst(await super.sort(files), path, KNOWN_LONG_FILES);
  }
}
