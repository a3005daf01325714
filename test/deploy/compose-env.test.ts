/**
 * deploy/compose-env.sh: the generated admin and pre-warm tokens docker-compose reads from .env,
 * so `docker-compose up` works without an exported variable, and a token once written stays.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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

  it('writes generated 32-hex-digit tokens into .env, readable by its owner only, and keeps them on a second run', () => {
    expect(run().status).toBe(0);
    const first = readFileSync(join(dir, '.env'), 'utf8');
    expect(first).toMatch(/^EDGE_ADMIN_TOKEN=[0-9a-f]{32}\nEDGE_PREWARM_TOKEN=[0-9a-f]{32}\n$/);
    const [admin, prewarm] = first.trim().split('\n').map((line) => line.split('=')[1]);
    expect(admin).not.toBe(prewarm);
    expect(statSync(join(dir, '.env')).mode & 0o777).toBe(0o600);
    const again = run();
    expect(again.status).toBe(0);
    expect(again.stderr).toContain('left unchanged');
    expect(readFileSync(join(dir, '.env'), 'utf8')).toBe(first);
  });

  it.skipIf(COMPOSE_MISSING)('is what docker-compose reads when no token is exported', () => {
    const { EDGE_ADMIN_TOKEN: _admin, EDGE_PREWARM_TOKEN: _prewarm, ...env } = process.env;
    const tokens = Object.fromEntries(readFileSync(join(dir, '.env'), 'utf8').trim().split('\n').map((line) => line.split('=')));
    const result = spawnSync('docker-compose', ['-f', 'docker-compose.yml', 'config'], { cwd: dir, encoding: 'utf8', env });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain(`EDGE_ADMIN_TOKEN: ${tokens.EDGE_ADMIN_TOKEN}`);
    expect(result.stdout).toContain(`EDGE_PREWARM_TOKEN: ${tokens.EDGE_PREWARM_TOKEN}`);
  });

  it('adds only the token an existing .env lacks (one written before pre-warming existed)', () => {
    const older = mkdtempSync(join(tmpdir(), 'edge-compose-env-old-'));
    try {
      mkdirSync(join(older, 'deploy'));
      copyFileSync('deploy/compose-env.sh', join(older, 'deploy/compose-env.sh'));
      writeFileSync(join(older, '.env'), 'EDGE_ADMIN_TOKEN=0123456789abcdef0123456789abcdef\n');
      const result = spawnSync('bash', [join(older, 'deploy/compose-env.sh')], { encoding: 'utf8' });
      expect(result.status).toBe(0);
      expect(result.stderr).toContain('wrote a new EDGE_PREWARM_TOKEN');
      expect(readFileSync(join(older, '.env'), 'utf8')).toMatch(/^EDGE_ADMIN_TOKEN=0123456789abcdef0123456789abcdef\nEDGE_PREWARM_TOKEN=[0-9a-f]{32}\n$/);
    } finally {
      rmSync(older, { recursive: true, force: true });
    }
  });
});
