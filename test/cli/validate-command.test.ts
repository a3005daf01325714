import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { describe, expect, it } from 'vitest';
import { buildSimDatabase } from '../../src/geoip/sim-database.js';
import { generateSelfSignedCertificate } from '../../src/ingress/certificates/dev-certificate.js';
import { CLIENT_METROS } from '../../src/sim/client-metros.js';
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

  it('refuses a regions file of 5,000 unclosed brackets in the usual one line naming the file, not a stack overflow', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'edge-validate-')), 'deep.json');
    await writeFile(file, '['.repeat(5_000));
    const { code, stdout, stderr } = await cli(['validate', '--regions', file]);
    expect({ code, stdout, stderr }).toEqual({ code: 2, stdout: '', stderr: `edge-router validate: ${file}: not valid JSON at line 1, column 5001: expected a value, found the end of the file\n` });
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

  it('refuses a pair OpenSSL will not load, as the router would at its start (a 512-bit RSA key), also in a --tls-dir', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edge-validate-'));
    const weak = await generate([{ name: 'commonName', value: 'weak.telnyxcompute.com' }], { keySize: 512, algorithm: 'sha256', extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'weak.telnyxcompute.com' }] }] });
    await writeFile(join(dir, 'weak.crt'), weak.cert);
    await writeFile(join(dir, 'weak.key'), weak.private);
    await certFiles(dir, 'good');
    // Before: "ok certificate" and exit 0, while the router refused to start.
    const single = await cli(['validate', '--tls-cert', join(dir, 'weak.crt'), '--tls-key', join(dir, 'weak.key')]);
    expect(single.code).toBe(2);
    expect(single.stderr).toMatch(new RegExp(`${join(dir, 'weak.crt').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: refused by OpenSSL \\(.*ee key too small\\)`));
    const inDir = await cli(['validate', '--tls-dir', dir]);
    expect(inDir.code).toBe(2);
    expect(inDir.stderr).toContain(`${join(dir, 'weak.crt')}: refused by OpenSSL (`);
    expect(inDir.stderr).not.toContain('good.crt');
  });

  it('names every bad pair of a --tls-dir, not only the first', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edge-validate-'));
    const expired = await certFiles(dir, 'expired', { validFrom: new Date(Date.now() - 10 * DAY), validForMs: DAY });
    const mismatched = await certFiles(dir, 'mismatched', { otherKey: true });
    await certFiles(dir, 'good');
    const { code, stderr } = await cli(['validate', '--tls-dir', dir]);
    expect(code).toBe(2);
    expect(stderr).toContain(`${expired.cert}: certificate expired on`);
    expect(stderr).toContain(`${mismatched.key}: private key does not match the certificate in ${mismatched.cert}`);
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

  it('refuses an orchestrator URL the router could not use (a path, a password), naming file and field, without the password', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edge-validate-'));
    const bundled = JSON.parse(await readFile('regions.json', 'utf8')) as { regions: Array<{ orchestrators: string[] }> };
    const cases: Array<[string, string]> = [
      ['http://127.0.0.1:7001/api', 'expected an http(s) origin without a path, got "http://127.0.0.1:7001/api"'],
      ['http://:s3cret@127.0.0.1:7001', 'expected an http(s) origin without credentials, got "http://127.0.0.1:7001/" (its credentials not shown)'],
    ];
    for (const [url, message] of cases) {
      const file = join(dir, 'regions.json');
      bundled.regions[0]!.orchestrators = [url];
      await writeFile(file, JSON.stringify(bundled));
      const { code, stdout, stderr } = await cli(['validate', '--dev-cert', '--regions', file]);
      expect({ code, stdout, stderr }).toEqual({ code: 2, stdout: '', stderr: `edge-router validate: ${file}: regions[0].orchestrators[0]: ${message}\n` });
    }
  });

  it('names the flag, or the field of the regions file, that gives an empty GeoIP path', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edge-validate-'));
    const flag = await cli(['validate', '--dev-cert', '--geoip', '']);
    expect(flag).toMatchObject({ code: 2, stderr: 'edge-router validate: --geoip: expected a path to a .mmdb file, or "none", got ""\n' });
    const file = join(dir, 'regions.json');
    const bundled = JSON.parse(await readFile('regions.json', 'utf8')) as Record<string, unknown>;
    await writeFile(file, JSON.stringify({ ...bundled, geoip: '' }));
    const field = await cli(['validate', '--dev-cert', '--regions', file]);
    expect(field).toMatchObject({ code: 2, stderr: `edge-router validate: ${file}: geoip: expected a path to a .mmdb file, or "none"\n` });
  });

  it('names the env variable that gave a bad value, not its flag', async () => {
    const { code, stderr } = await cli(['validate', '--dev-cert'], { env: { EDGE_HTTPS_PORT: 'abc' } });
    expect({ code, stderr }).toEqual({ code: 2, stderr: 'edge-router validate: EDGE_HTTPS_PORT: expected a whole number from 0 to 65535, got "abc"\n' });
  });

  it('warns of a setting that would do nothing, on stderr, and still passes (the router starts with it)', async () => {
    const { code, stdout, stderr } = await cli(['validate', '--dev-cert', '--plain-http', 'serve'], { env: { EDGE_REDIRECT_PORT: '443' } });
    expect({ code, stderr }).toEqual({ code: 0, stderr: 'edge-router validate: warning: EDGE_REDIRECT_PORT is ignored: it is the port of the 308 to HTTPS, and --plain-http serve routes plain HTTP instead of redirecting it\n' });
    expect(stdout).toMatch(/^ok regions: /m);
  });

  it('refuses a bad probe setting while probing is off too (before, it passed unseen until probing was turned on)', async () => {
    const { code, stderr } = await cli(['validate', '--dev-cert', '--probe', 'off'], { env: { EDGE_PROBE_INTERVAL_MS: 'abc' } });
    expect({ code, stderr }).toEqual({ code: 2, stderr: expect.stringMatching(/^edge-router validate: EDGE_PROBE_INTERVAL_MS: expected a whole number from 1 to 3600000, got "abc"\n$/) });
  });

  it('passes a GeoIP database whose build date is no valid time, saying so (formatting it threw: a stack trace)', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'validate-')), 'epoch.mmdb');
    // 9e12 seconds: a writer that stored microseconds; mmdb-lib's Date of it is invalid.
    await writeFile(file, buildSimDatabase(CLIENT_METROS, 9_000_000_000_000));
    const { code, stdout, stderr } = await cli(['validate', '--dev-cert', '--geoip', file]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toMatch(/^ok geoip: .*epoch\.mmdb \(EdgeRouter-Sim-City, no valid build date\)$/m);
  });

  it('refuses a --redirect-port that is no port clients could be sent to', async () => {
    const { code, stderr } = await cli(['validate', '--dev-cert', '--redirect-port', '0']);
    expect({ code, stderr }).toEqual({ code: 2, stderr: 'edge-router validate: --redirect-port: expected a whole number from 1 to 65535, got "0"\n' });
  });

  it('refuses a listen address that is not an IP address, which the router could only look up when it starts', async () => {
    const { code, stderr } = await cli(['validate', '--dev-cert', '--bind', 'notanip']);
    expect({ code, stderr }).toEqual({ code: 2, stderr: 'edge-router validate: --bind: expected an IP address, got "notanip"\n' });
  });

  it('refuses two listeners given one port, which the router could only find when it failed to bind the second', async () => {
    // Before: validate passed, and the router stopped saying the port was "already in use (another edge-router, or another program)".
    const same = await cli(['validate', '--dev-cert', '--https-port', '8080'], { env: {} });
    expect({ code: same.code, stderr: same.stderr }).toEqual({ code: 2, stderr: 'edge-router validate: --https-port and --http-port are both 8080: each listener needs a port of its own\n' });
    // The admin listener on 127.0.0.1 collides with public listeners on 0.0.0.0 (every IPv4 address) or :: (every address)…
    const admin = await cli(['validate', '--dev-cert'], { env: { EDGE_ADMIN_PORT: '8443' } });
    expect({ code: admin.code, stderr: admin.stderr }).toEqual({ code: 2, stderr: 'edge-router validate: --https-port and EDGE_ADMIN_PORT are both 8443: each listener needs a port of its own\n' });
    expect((await cli(['validate', '--dev-cert', '--bind', '::', '--admin-port', '8080'])).code).toBe(2);
    // In any spelling of "::" (the router then stopped at start, "already in use").
    expect((await cli(['validate', '--dev-cert', '--bind', '0:0:0:0:0:0:0:0', '--admin-port', '8443'])).code).toBe(2);
    expect((await cli(['validate', '--dev-cert', '--bind', '::0', '--admin-port', '8443'])).code).toBe(2);
    // …but not with public listeners on another address, nor when the system picks each port (0).
    expect((await cli(['validate', '--dev-cert', '--bind', '10.0.0.5', '--admin-port', '8443'])).code).toBe(0);
    expect((await cli(['validate', '--dev-cert', '--bind', '::1', '--admin-port', '8443'])).code).toBe(0);
    // An address with a zone id is compared in its short form too (the URL parser threw on it: a stack trace).
    expect((await cli(['validate', '--dev-cert', '--bind', 'fe80:0::1%lo', '--admin-host', 'fe80::1%lo', '--admin-port', '8443'])).stderr).toMatch(/--https-port and --admin-port are both 8443/);
    expect((await cli(['validate', '--dev-cert', '--bind', 'fe80::1%lo', '--admin-port', '8443'])).code).toBe(0);
    // An IPv4-mapped admin address is the IPv4 address it maps, which 0.0.0.0 covers (Linux refuses
    // that bind beside it: validate passed, and the router stopped at start, "already in use").
    expect((await cli(['validate', '--dev-cert', '--bind', '0.0.0.0', '--admin-host', '::ffff:127.0.0.1', '--admin-port', '8443'])).stderr).toMatch(/--https-port and --admin-port are both 8443/);
    expect((await cli(['validate', '--dev-cert', '--bind', '::ffff:10.0.0.5', '--admin-host', '10.0.0.5', '--admin-port', '8443'])).stderr).toMatch(/--https-port and --admin-port are both 8443/);
    expect((await cli(['validate', '--dev-cert', '--https-port', '0', '--http-port', '0', '--admin-port', '0'])).code).toBe(0);
  });

  it('goes on to the files and the registry after a problem in the router flags, one line per problem', async () => {
    // Before: "no certificate" came alone, and the GeoIP database and registry were never looked at.
    const { code, stdout, stderr } = await cli(['validate', '--geoip', '/nonexistent.mmdb', '--redis', 'redis://127.0.0.1:1']);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^edge-router validate: no certificate: /m);
    expect(stderr).toMatch(/^edge-router validate: --geoip: \/nonexistent\.mmdb: file not found$/m);
    expect(stderr).toMatch(/^edge-router validate: cannot reach the registry/m);
    expect(stderr.trimEnd().split('\n')).toHaveLength(3);
  });

  it('names a bad regions file once, not again as the reason the rest could not be checked', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'edge-validate-')), 'regions.json');
    await writeFile(file, '{');
    const { code, stderr } = await cli(['validate', '--regions', file, '--geoip', '/nonexistent.mmdb']);
    expect(code).toBe(2);
    expect(stderr.trimEnd().split('\n')).toEqual([expect.stringMatching(new RegExp(`^edge-router validate: ${file}: not valid JSON`))]);
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

  it.each([
    ['residency', 'WRONGTYPE the key holds a string, not a hash', 'routers keep what they last read of it; one started now serves no function (registry_unreachable) until it is mended'],
    ['overrides', 'WRONGTYPE Operation against a key holding the wrong kind of value', 'routers keep the drains and weights they last read; one started now takes none (not drained, the regions file\'s weights) until it is mended'],
  ] as const)('names a %s key of another Redis type for what it means, not as a router logs it', async (part, why, consequence) => {
    const own = `${prefix}${part}-case:`;
    await raw.set(`${own}${part}`, 'not a hash');
    const { code, stderr } = await cli(['validate', '--dev-cert', '--redis', REDIS, '--redis-prefix', own]);
    expect(code).toBe(2);
    // Before: the router's log line, "its entries are kept as last read until it reads again", as if validate kept any.
    expect(stderr.split('\n').filter(Boolean)).toEqual([
      `edge-router validate: registry: the registry's ${part} key ${own}${part} cannot be read (${why}): ${consequence} (redis-cli TYPE ${own}${part} shows what it holds)`,
    ]);
  });
});

describe('edge-router validate without a GeoIP database', () => {
  it('says what the router does then: every client from the default region (no country header is read)', async () => {
    const { code, stdout } = await cli(['validate', '--dev-cert', '--geoip', 'none']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^ok geoip: none \(every client is routed from the default region\)$/m);
    expect(stdout).not.toMatch(/country header/);
  });
});
