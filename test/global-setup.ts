/**
 * Builds dist/ once before the suite: a few tests run the real `edge-router` executable as a
 * separate process (cluster workers, signals, `npm start`), which needs the compiled output.
 * `npm test` has just written dist/ in its typecheck (`tsc -p tsconfig.json` checks and emits in
 * one compile); the build runs only when dist/ is missing or older than a source. And makes sure
 * the shared test Redis answers (support/shared-redis.ts). Listed by two projects: both steps do
 * nothing the second time.
 */
import { execFileSync } from 'node:child_process';
import { buildStaleReason } from './support/build-freshness.js';
import { ensureSharedRedis } from './support/shared-redis.js';

export default async function setup(): Promise<() => Promise<void>> {
  const stale = buildStaleReason(process.cwd());
  if (stale !== undefined) {
    console.log(`global setup: compiling dist/ (${stale})`);
    execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
  }
  return ensureSharedRedis();
}
