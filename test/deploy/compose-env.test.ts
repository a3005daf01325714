/**
 * deploy/compose-env.sh: the generated admin token docker-compose reads from .env, so
 * `docker-compose up` works without an exported variable, and a token once written stays.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { missingProgram } from '../support/system-program.js';

const COMPOSE_MISSING = missingProgram('docker-compose', 'apt-get install -y docker-compose');
const dir = mkdtempSync(join(tmpdir(), 'edge-compose-env-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('deploy/compose-env.sh', () => {
  mkdirSync(join(dir, 'deploy'));
  copyFileSync('deploy/compose-env.sh', join(dir, 'deploy/compose-env.sh'));
  copyFileSync('docker-compose.yml', join(dir, 'docker-compose.yml'));
  const run = () => spawnSync('bash', [join(dir, 'deploy/compose-env.sh')], { encoding: 'utf8' });

  it('writes a generated 32-hex-digit token into .env, readable by its owner only, and keeps it on a second run', () => {
    expect(run().status).toBe(0);
    const first = readFileSync(join(dir, '.env'), 'utf8');
    expect(first).toMatch(/^EDGE_ADMIN_TOKEN=[0-9a-f]{32}\n$/);
    expect(statSync(join(dir, '.env')).mode & 0o777).toBe(0o600);
    const again = run();
    expect(again.status).toBe(0);
    expect(again.stderr).toContain('left unchanged');
    expect(readFileSync(join(dir, '.env'), 'utf8')).toBe(first);
  });

  it.skipIf(COMPOSE_MISSING)('is what docker-compose reads when no token is exported', () => {
    const { EDGE_ADMIN_TOKEN: _unset, ...env } = process.env;
    const token = readFileSync(join(dir, '.env'), 'utf8').trim().split('=')[1]!;
    const result = spawnSync('docker-compose', ['-f', 'docker-compose.yml', 'config'], { cwd: dir, encoding: 'utf8', env });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain(`EDGE_ADMIN_TOKEN: ${token}`);
  });
});
