/**
 * deploy/compose-env.sh: the generated admin and pre-warm tokens docker-compose.yml mounts as
 * secret files (deploy/compose-secrets/), so no container carries them in its environment (which
 * `docker inspect` shows), and a token once written stays.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { missingProgram } from '../support/system-program.js';

const COMPOSE_MISSING = missingProgram('docker-compose', 'apt-get install -y docker-compose');
const dir = mkdtempSync(join(tmpdir(), 'edge-compose-env-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A checkout's worth of what the script and compose read, in a directory of its own. */
function checkout(root: string): () => SpawnSyncReturns<string> {
  mkdirSync(join(root, 'deploy'));
  copyFileSync('deploy/compose-env.sh', join(root, 'deploy/compose-env.sh'));
  copyFileSync('docker-compose.yml', join(root, 'docker-compose.yml'));
  const { EDGE_ADMIN_TOKEN: _admin, EDGE_PREWARM_TOKEN: _prewarm, ...env } = process.env;
  return () => spawnSync('bash', [join(root, 'deploy/compose-env.sh')], { encoding: 'utf8', env });
}

describe('deploy/compose-env.sh', () => {
  const run = checkout(dir);
  const secrets = join(dir, 'deploy/compose-secrets');
  const read = (name: string) => readFileSync(join(secrets, name), 'utf8');

  it('writes a generated 32-hex-digit token per file, in a directory only its owner may enter, and keeps them on a second run', () => {
    const first = run();
    expect(first.status, first.stderr).toBe(0);
    expect(first.stderr).toContain('wrote a new token to deploy/compose-secrets/admin-token deploy/compose-secrets/prewarm-token');
    const admin = read('admin-token');
    const prewarm = read('prewarm-token');
    expect(admin).toMatch(/^[0-9a-f]{32}\n$/);
    expect(prewarm).toMatch(/^[0-9a-f]{32}\n$/);
    expect(admin).not.toBe(prewarm);
    // The directory keeps other users of the host out; the files must be readable by the
    // containers' user (node, uid 1000), which compose's bind mount leaves them as they are.
    expect(statSync(secrets).mode & 0o777).toBe(0o700);
    for (const name of ['admin-token', 'prewarm-token']) expect(statSync(join(secrets, name)).mode & 0o777, name).toBe(0o644);
    // Nothing in .env any more: compose reads no token from there.
    expect(() => statSync(join(dir, '.env'))).toThrow();
    const again = run();
    expect(again.status).toBe(0);
    expect(again.stderr).toContain('left unchanged');
    expect([read('admin-token'), read('prewarm-token')]).toEqual([admin, prewarm]);
  });

  it.skipIf(COMPOSE_MISSING)('is what docker-compose mounts, with no token in any container\'s environment', () => {
    const { EDGE_ADMIN_TOKEN: _admin, EDGE_PREWARM_TOKEN: _prewarm, ...env } = process.env;
    const result = spawnSync('docker-compose', ['-f', 'docker-compose.yml', 'config'], { cwd: dir, encoding: 'utf8', env });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain(`file: ${join(secrets, 'admin-token')}`);
    expect(result.stdout).toContain(`file: ${join(secrets, 'prewarm-token')}`);
    expect(result.stdout).not.toContain(read('admin-token').trim());
    expect(result.stdout).not.toContain(read('prewarm-token').trim());
  });

  it('carries over the tokens an earlier version wrote into .env (the ones your tools use), and generates only what is missing', () => {
    const older = mkdtempSync(join(tmpdir(), 'edge-compose-env-old-'));
    try {
      const runOlder = checkout(older);
      writeFileSync(join(older, '.env'), 'EDGE_ADMIN_TOKEN=0123456789abcdef0123456789abcdef\n', { mode: 0o600 });
      const result = runOlder();
      expect(result.status, result.stderr).toBe(0);
      expect(result.stderr).toContain('carried EDGE_ADMIN_TOKEN over from .env');
      expect(result.stderr).toContain('delete it there');
      expect(result.stderr).toContain('wrote a new token to deploy/compose-secrets/prewarm-token');
      expect(readFileSync(join(older, 'deploy/compose-secrets/admin-token'), 'utf8')).toBe('0123456789abcdef0123456789abcdef\n');
      expect(readFileSync(join(older, 'deploy/compose-secrets/prewarm-token'), 'utf8')).toMatch(/^[0-9a-f]{32}\n$/);
    } finally {
      rmSync(older, { recursive: true, force: true });
    }
  });
});
