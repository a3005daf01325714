import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateSelfSignedCertificate } from '../../src/ingress/certificates/dev-certificate.js';
import { cli } from '../support/cli.js';
import { redisKeyspace } from '../support/redis-keyspace.js';
import { REDIS_MISSING } from '../support/system-program.js';

const DAY = 86_400_000;

async function certFiles(dir: string, name: string, options: { validFrom?: Date; validForMs?: number; otherKey?: boolean } = {}) {
  const pem = await generateSelfSignedCertificate({ names: ['*.telnyxcompute.com'], ...options });
  const key = options.otherKey ? (await generateSelfSignedCertificate({ names: ['other.test'] })).key : pem.key;
  const cert = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  await writeFile(cert, pem.cert);
  await writeFile(keyFile, key);
  return { cert, key: keyFile };
}

describe('edge-router validate', () => {
  it('passes the bundled configuration, one ok line per check', async () => {
    const { code, stdout, stderr } = await cli(['validate', '--dev-cert']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^ok regions: 5 regions from .*regions\.json \(default nyc, zone telnyxcompute\.com\)$/m);
    expect(stdout).toMatch(/^ok geoip: .*sim\.mmdb \(/m);
    expect(stdout).toMatch(/^ok certificate: development/m);
  });

  it('names an expired certificate and a key that does not match, and exits 2', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edge-validate-'));
    const expired = await certFiles(dir, 'expired', { validFrom: new Date(Date.now() - 10 * DAY), validForMs: DAY });
    const mismatched = await certFiles(dir, 'mismatched', { otherKey: true });
    for (const pair of [expired, mismatched]) {
      const { code, stdout, stderr } = await cli(['validate', '--tls-cert', pair.cert, '--tls-key', pair.key]);
      expect(code).toBe(2);
      expect(stdout).toBe('');
      expect(stderr).toContain(pair === expired ? `${pair.cert}: certificate expired on` : `${pair.key}: private key does not match the certificate in ${pair.cert}`);
    }
  });

  it('says when a certificate expires within 14 days, and still passes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edge-validate-'));
    const soon = await certFiles(dir, 'soon', { validForMs: 5 * DAY });
    const { code, stdout } = await cli(['validate', '--tls-cert', soon.cert, '--tls-key', soon.key]);
    expect(code).toBe(0);
    expect(stdout).toMatch(new RegExp(`^ok certificate: ${soon.cert} for \\*\\.telnyxcompute\\.com, valid until \\d{4}-\\d\\d-\\d\\d; expires in [34] days$`, 'm'));
  });

  it('names the file and field of a bad regions file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edge-validate-'));
    const file = join(dir, 'regions.json');
    await writeFile(file, JSON.stringify({ defaultRegion: 'nyc', regoins: [] }));
    const { code, stderr } = await cli(['validate', '--dev-cert', '--regions', file]);
    expect(code).toBe(2);
    expect(stderr).toContain(file);
    expect(stderr).toMatch(/regoins/);
  });

  it('reports a registry it cannot reach', async () => {
    const { code, stderr } = await cli(['validate', '--dev-cert', '--redis', 'redis://127.0.0.1:1']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^edge-router validate: cannot reach the registry/m);
  });
});

describe.skipIf(REDIS_MISSING)('edge-router validate (Redis)', () => {
  const { url: REDIS, prefix, raw } = redisKeyspace('validate');

  it('passes a reachable registry, and refuses one written by a newer router', async () => {
    const args = ['validate', '--dev-cert', '--redis', REDIS, '--redis-prefix', prefix];
    const fine = await cli(args);
    expect(fine.code).toBe(0);
    expect(fine.stdout).toMatch(/^ok registry: .*, 0 functions, 0 custom domains$/m);
    await raw.set(`${prefix}schema`, '999');
    const newer = await cli(args);
    expect(newer.code).toBe(2);
    expect(newer.stderr).toMatch(/schema version "999" but this router understands \d+/);
  });
});
