/** The router's ACME flags as the router command resolves them: off by default, every mistake named. */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseFlags } from '../../src/cli/flags.js';
import { routerHelp } from '../../src/cli/help/router.js';
import { resolveRouterFlags } from '../../src/cli/router-command.js';

const resolve = (argv: string[], env: NodeJS.ProcessEnv = {}) => resolveRouterFlags(parseFlags(['--dev-cert', '--workers', '1', ...argv], routerHelp.flags, env));
const DIRECTORY = 'https://acme.example/directory';

describe('router ACME flags', () => {
  it('are off unless --acme-directory is given', async () => {
    expect((await resolve([])).acme).toBeNull();
  });

  it('resolve a directory, a contact, a CA file and the check interval, from flags or the environment', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edge-router-acme-flags-'));
    const ca = join(dir, 'ca.pem');
    await writeFile(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    expect((await resolve(['--acme-directory', DIRECTORY, '--acme-email', 'ops@example.net', '--acme-ca-file', ca, '--acme-check-interval', '5000'])).acme).toEqual({
      directoryUrl: DIRECTORY,
      email: 'ops@example.net',
      caPem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
      checkEveryMs: 5000,
    });
    expect((await resolve([], { EDGE_ACME_DIRECTORY: DIRECTORY })).acme).toEqual({ directoryUrl: DIRECTORY, checkEveryMs: 30_000 });
  });

  it.each([
    [['--acme-email', 'ops@example.net'], '--acme-email applies only with --acme-directory'],
    [['--acme-directory', 'http://acme.example/directory'], '--acme-directory: expected the https:// URL of an ACME directory, got "http://acme.example/directory"'],
    [['--acme-directory', 'letsencrypt'], '--acme-directory: expected the https:// URL of an ACME directory, got "letsencrypt"'],
    [['--acme-directory', DIRECTORY, '--acme-email', 'ops'], '--acme-email: expected an email address, got "ops"'],
    [['--acme-directory', DIRECTORY, '--acme-ca-file', '/nonexistent/ca.pem'], '--acme-ca-file: /nonexistent/ca.pem: cannot read (ENOENT)'],
    // Before: ": cannot read (ENOENT)", naming neither the setting nor a file.
    [['--acme-directory', DIRECTORY, '--acme-ca-file', ''], '--acme-ca-file: expected the path of a PEM file of CA certificates, got ""'],
    // Read as every PEM file is: a directory (or a FIFO, which held the start) is refused by kind.
    [['--acme-directory', DIRECTORY, '--acme-ca-file', '/'], '--acme-ca-file: /: cannot read (found a directory)'],
    [['--acme-directory', DIRECTORY, '--acme-check-interval', '10'], '--acme-check-interval'],
    [['--acme-directory', DIRECTORY, '--workers', '2'], '--acme-directory with several workers needs --redis'],
  ])('refuse %j: %s', async (argv, message) => {
    await expect(resolve(argv)).rejects.toThrow(message);
  });

  it('name the environment variable that set a bad value', async () => {
    await expect(resolve([], { EDGE_ACME_DIRECTORY: 'ftp://x' })).rejects.toThrow('EDGE_ACME_DIRECTORY: expected the https:// URL');
  });

  it('refuse a CA file that holds no PEM certificate, naming it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edge-router-acme-flags-'));
    const ca = join(dir, 'ca.der');
    await writeFile(ca, Buffer.from([0x30, 0x82, 0x01]));
    await expect(resolve(['--acme-directory', DIRECTORY, '--acme-ca-file', ca])).rejects.toThrow(`--acme-ca-file: ${ca}: expected PEM certificates`);
    await expect(resolve(['--acme-directory', DIRECTORY], { EDGE_ACME_CA_FILE: ca })).rejects.toThrow(`EDGE_ACME_CA_FILE: ${ca}: expected PEM certificates`);
  });

  it('take an External Account Binding as both halves, the key from the environment, and never echo the key in an error', async () => {
    const hmacKey = 'zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W';
    expect((await resolve(['--acme-directory', DIRECTORY, '--acme-eab-kid', 'kid-1'], { EDGE_ACME_EAB_HMAC_KEY: hmacKey })).acme).toMatchObject({
      externalAccountBinding: { kid: 'kid-1', hmacKey },
    });
    const plainBase64 = 'q83vEjRWeJq8PpGa+/3E2g==';
    expect((await resolve(['--acme-directory', DIRECTORY, '--acme-eab-kid', 'kid-1'], { EDGE_ACME_EAB_HMAC_KEY: plainBase64 })).acme?.externalAccountBinding?.hmacKey).toBe(plainBase64);
    await expect(resolve(['--acme-directory', DIRECTORY, '--acme-eab-kid', 'kid-1'])).rejects.toThrow('--acme-eab-kid needs --acme-eab-hmac-key (or EDGE_ACME_EAB_HMAC_KEY)');
    await expect(resolve(['--acme-directory', DIRECTORY], { EDGE_ACME_EAB_HMAC_KEY: hmacKey })).rejects.toThrow('EDGE_ACME_EAB_HMAC_KEY needs --acme-eab-kid');
    await expect(resolve(['--acme-eab-kid', 'kid-1'], { EDGE_ACME_EAB_HMAC_KEY: hmacKey })).rejects.toThrow('--acme-eab-kid applies only with --acme-directory');
    const badKey = 'secret key with spaces, not base64url';
    const refused = await resolve(['--acme-directory', DIRECTORY, '--acme-eab-kid', 'kid-1'], { EDGE_ACME_EAB_HMAC_KEY: badKey }).catch((err: Error) => err);
    expect(refused).toBeInstanceOf(Error);
    expect((refused as Error).message).toContain('EDGE_ACME_EAB_HMAC_KEY: expected the base64url HMAC key');
    expect((refused as Error).message).not.toContain(badKey);
  });

  it('allow several workers with Redis, which shares the challenges', async () => {
    expect((await resolve(['--acme-directory', DIRECTORY, '--workers', '2', '--redis', 'redis://127.0.0.1:6379'])).acme).toMatchObject({ directoryUrl: DIRECTORY });
  });
});
