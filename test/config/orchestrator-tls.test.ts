import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { resolveOrchestratorTls } from '../../src/config/orchestrator-tls.js';
import { generateSelfSignedCertificate } from '../../src/ingress/certificates/dev-certificate.js';

async function file(text: string, name = 'file.pem'): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'edge-orchestrator-tls-')), name);
  await writeFile(path, text);
  return path;
}

const ca = (value: string) => ({ ca: { value, source: '--orchestrator-ca' } });
const client = (cert: string, key: string) => ({ clientCert: { value: cert, source: '--orchestrator-client-cert' }, clientKey: { value: key, source: 'EDGE_ORCHESTRATOR_CLIENT_KEY' } });

describe('resolveOrchestratorTls', () => {
  it('is null when nothing is given', async () => {
    expect(await resolveOrchestratorTls({})).toBeNull();
  });

  it("adds a CA file's certificates, and nothing else of it, to Node's bundled roots", async () => {
    const [a, b] = await Promise.all([generateSelfSignedCertificate({ names: ['a.internal'] }), generateSelfSignedCertificate({ names: ['b.internal'] })]);
    const tls = await resolveOrchestratorTls(ca(await file(`# the region CAs\n${a.cert}\n${b.cert}`)));
    // node:tls takes `ca` as the whole trust store: given alone, the private CA would shut out every public one.
    // (and NODE_EXTRA_CA_CERTS's, where the environment names a file: test/proxy/pools.test.ts)
    expect(tls?.ca?.match(/BEGIN CERTIFICATE/g)?.length).toBeGreaterThanOrEqual(rootCertificates.length + 2);
    for (const root of rootCertificates) expect(tls?.ca).toContain(root.trim());
    expect(tls?.ca).toContain(a.cert.trim());
    expect(tls?.ca).toContain(b.cert.trim());
    expect(tls?.ca).not.toContain('# the region CAs');
    expect(tls?.cert).toBeUndefined();
  });

  it.each([
    ['a file that is not there', async () => '/nonexistent/ca.pem', /^--orchestrator-ca: cannot read \/nonexistent\/ca\.pem: ENOENT$/],
    ['a file without certificates', async () => file('not a certificate'), /^--orchestrator-ca: .*file\.pem: expected PEM certificates \(-----BEGIN CERTIFICATE-----\), found none$/],
    ['a damaged certificate', async () => file('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'), /^--orchestrator-ca: .*file\.pem: certificate 1 of 1 is not valid: /],
    [
      'a private key beside the certificate',
      async () => {
        const pem = await generateSelfSignedCertificate({ names: ['a.internal'] });
        return file(`${pem.cert}\n${pem.key}`);
      },
      /^--orchestrator-ca: .*file\.pem: holds a private key; give only the CA's certificates$/,
    ],
  ])('refuses as a CA %s, naming the flag and the file', async (_what, path, message) => {
    await expect(resolveOrchestratorTls(ca(await path()))).rejects.toThrow(message);
  });

  it('refuses a CA file holding no certificate valid now (every orchestrator handshake would fail), and takes a bundle where an old CA sits beside its successor', async () => {
    const day = 86_400_000;
    const [expired, future, current] = await Promise.all([
      generateSelfSignedCertificate({ names: ['old.internal'], validFrom: new Date(Date.now() - 30 * day), validForMs: 10 * day }),
      generateSelfSignedCertificate({ names: ['next.internal'], validFrom: new Date(Date.now() + 10 * day) }),
      generateSelfSignedCertificate({ names: ['now.internal'] }),
    ]);
    await expect(resolveOrchestratorTls(ca(await file(expired.cert)))).rejects.toThrow(/^--orchestrator-ca: .*file\.pem: no certificate in it is valid now \(the one that expires last expired on \d{4}-\d\d-\d\dT/);
    await expect(resolveOrchestratorTls(ca(await file(`${expired.cert}\n${future.cert}`)))).rejects.toThrow(/no certificate in it is valid now \(the one that expires last is valid only from \d{4}-/);
    const tls = await resolveOrchestratorTls(ca(await file(`${expired.cert}\n${current.cert}`)));
    expect(tls?.ca).toContain(current.cert.trim());
  });

  it('takes a client certificate with its key', async () => {
    const pem = await generateSelfSignedCertificate({ names: ['router.internal'] });
    const tls = await resolveOrchestratorTls(client(await file(pem.cert, 'router.crt'), await file(pem.key, 'router.key')));
    expect(tls?.cert).toContain('BEGIN CERTIFICATE');
    expect(tls?.key).toBe(pem.key);
    expect(tls?.ca).toBeUndefined();
  });

  it('never shows a client key value that may be the key itself (one line of base64, naming no directory that exists)', async () => {
    const pem = await generateSelfSignedCertificate({ names: ['router.internal'] });
    const certFile = await file(pem.cert, 'router.crt');
    const oneLine = Buffer.from(pem.key).toString('base64');
    const refused = (await resolveOrchestratorTls(client(certFile, oneLine)).then(
      () => expect.unreachable('a key that cannot be read was taken'),
      (e: unknown) => e,
    )) as Error;
    expect(refused.message).toMatch(/^EDGE_ORCHESTRATOR_CLIENT_KEY: cannot read the private key file \(E[A-Z]+\); its value is not shown/);
    expect(refused.message).not.toContain(oneLine.slice(0, 40));
    // A path in a directory that exists is named, as a CA's is.
    const missing = join(certFile, '..', 'missing.key');
    await expect(resolveOrchestratorTls(client(certFile, missing))).rejects.toThrow(`EDGE_ORCHESTRATOR_CLIENT_KEY: cannot read ${missing}: ENOENT`);
  });

  it('refuses a client certificate without its key, and a key without its certificate', async () => {
    const pem = await generateSelfSignedCertificate({ names: ['router.internal'] });
    const certFile = await file(pem.cert, 'router.crt');
    await expect(resolveOrchestratorTls({ clientCert: { value: certFile, source: '--orchestrator-client-cert' } })).rejects.toThrow(
      /^--orchestrator-client-cert: a client certificate and its key go together: give both --orchestrator-client-cert and --orchestrator-client-key$/,
    );
    await expect(resolveOrchestratorTls({ clientKey: { value: certFile, source: 'EDGE_ORCHESTRATOR_CLIENT_KEY' } })).rejects.toThrow(/^EDGE_ORCHESTRATOR_CLIENT_KEY: a client certificate and its key go together/);
  });

  it('refuses a key that is not a key, or is the key of another certificate', async () => {
    const [mine, other] = await Promise.all([generateSelfSignedCertificate({ names: ['router.internal'] }), generateSelfSignedCertificate({ names: ['other.internal'] })]);
    const certFile = await file(mine.cert, 'router.crt');
    await expect(resolveOrchestratorTls(client(certFile, await file(mine.cert, 'router.key')))).rejects.toThrow(/^EDGE_ORCHESTRATOR_CLIENT_KEY: .*router\.key: expected a PEM private key/);
    await expect(resolveOrchestratorTls(client(certFile, await file(other.key, 'router.key')))).rejects.toThrow(
      /^EDGE_ORCHESTRATOR_CLIENT_KEY: .*router\.key: this key does not belong to the certificate in .*router\.crt$/,
    );
  });
});

describe('resolveOrchestratorTls given PEM text instead of a path', () => {
  it('refuses it without showing it: the "file not found" error printed the private key', async () => {
    const pair = await generateSelfSignedCertificate({ names: ['router.internal'] });
    const refused = await resolveOrchestratorTls(client(await file(pair.cert), pair.key)).then(
      () => undefined,
      (err: unknown) => err as Error,
    );
    expect(refused?.message).toMatch(/^EDGE_ORCHESTRATOR_CLIENT_KEY: expected a path to a PEM private key, got PEM text/);
    expect(refused?.message).not.toContain(pair.key.split('\n')[1]!);
  });
});
