/**
 * Tests that need a system program (redis-server, chromium) call `needProgram`: on a developer's
 * machine without it they are skipped loudly with the install command; in CI (CI=true) a missing
 * program fails the run instead — CI must never pass by skipping.
 */
import { execFileSync } from 'node:child_process';

export function hasProgram(path: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${path}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Returns true when the program is missing and the suite should be skipped. */
export function missingProgram(program: string, install: string): boolean {
  if (hasProgram(program)) return false;
  const message = `${program} is not installed: these tests need it. Install it with: ${install}`;
  if (process.env.CI === 'true' || process.env.CI === '1') throw new Error(`CI: ${message}`);
  console.warn(`\n*** SKIPPING: ${message} ***\n`);
  return true;
}

export const REDIS_MISSING = missingProgram('redis-server', 'apt-get install -y redis-server');
