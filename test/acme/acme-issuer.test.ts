/**
 * The issuer against a real ACME CA (Debian's `pebble`) that requires External Account Binding,
 * as ZeroSSL and Google Trust Services do: with the binding an account is opened and the order
 * completes; without it, or with a wrong key, the CA's refusal comes back as the order's error.
 * The CA's HTTP-01 checks reach the router's own challenge responder, reading the vault.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { X509Certificate } from 'node:crypto';
import acme from 'acme-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AcmeIssuer } from '../../src/acme/acme-issuer.js';
import { createAcmeChallengeResponder } from '../../src/ingress/acme-challenge.js';
import { generateSelfSignedCertificate } from '../../src/ingress/certificates/dev-certificate.js';
import { MemoryCertificateVault } from '../../src/registry/memory-certificate-vault.js';
import { PEBBLE_MISSING, TestPebble } from '../support/pebble.js';
import { freePort } from '../support/redis-server.js';

const EAB = { kid: 'edge-router-test', hmacKey: randomBytes(32).toString('base64url') };

describe.skipIf(PEBBLE_MISSING)('AcmeIssuer with External Account Binding (pebble)', () => {
  let pebble: TestPebble;
  let responder: Server;
  const vault = new MemoryCertificateVault();

  beforeAll(async () => {
    const httpPort = await freePort();
    const answer = createAcmeChallengeResponder({ vault });
    responder = createServer((req, res) => {
      if (!answer(req, res)) res.writeHead(404).end();
    });
    responder.listen(httpPort, '127.0.0.1');
    await once(responder, 'listening');
    pebble = await TestPebble.start(httpPort, EAB);
  });

  afterAll(async () => {
    await pebble?.stop();
    responder?.close();
  });

  const issuer = (externalAccountBinding?: { kid: string; hmacKey: string }) =>
    // Each its own vault for the account key: a new account each time, as a router's first order opens one.
    AcmeIssuer.open({ directoryUrl: pebble.directoryUrl, caPem: pebble.listenerCaPem, vault: withOwnAccount(vault), ...(externalAccountBinding === undefined ? {} : { externalAccountBinding }) });

  it('opens the account with the binding and completes the order', async () => {
    const certificate = await (await issuer(EAB)).issue('eab.example.net');
    expect(new X509Certificate(certificate.certPem).subjectAltName).toBe('DNS:eab.example.net');
    expect(certificate.notAfter).toBeGreaterThan(Date.now());
  });

  it('orders a name longer than 64 characters with no common name in the CSR, which Let\'s Encrypt would refuse (RFC 5280: 64 at most)', async () => {
    const name = `${'long-'.repeat(6)}shop.${'long-'.repeat(6)}shop.example.net`; // 81 characters, a valid DNS name
    const finalize = vi.spyOn(acme.Client.prototype, 'finalizeOrder');
    try {
      const certificate = await (await issuer(EAB)).issue(name);
      const csr = finalize.mock.calls[0]![1];
      expect(acme.crypto.readCsrDomains(csr)).toEqual({ commonName: null, altNames: [name] });
      expect(new X509Certificate(certificate.certPem).subjectAltName).toBe(`DNS:${name}`);
    } finally {
      finalize.mockRestore();
    }
  });

  it('comes back with the CA\'s refusal without a binding, or with a wrong key', async () => {
    await expect((await issuer()).issue('no-eab.example.net')).rejects.toThrow(/requires .*externalAccountBinding/);
    await expect((await issuer({ kid: EAB.kid, hmacKey: randomBytes(32).toString('base64url') })).issue('bad-eab.example.net')).rejects.toThrow(/external account binding JWS verification error/);
  });
});

describe('AcmeIssuer against a CA that does not answer', () => {
  it('comes back with why (a refused connection, a timeout), not a TypeError of the CA client\'s', async () => {
    // Before: "Cannot read properties of undefined (reading 'config')" for every such order.
    const closed = await freePort();
    const refused = await AcmeIssuer.open({ directoryUrl: `https://127.0.0.1:${closed}/dir`, vault: new MemoryCertificateVault() });
    await expect(refused.issue('down.example.net')).rejects.toThrow(/^the CA did not answer \(ECONNREFUSED: connect ECONNREFUSED 127\.0\.0\.1:\d+\)$/);
    // One that accepts and never answers: the request's timeout.
    const silent = createServer(() => undefined);
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    try {
      const port = (silent.address() as { port: number }).port;
      const waiting = await AcmeIssuer.open({ directoryUrl: `http://127.0.0.1:${port}/dir`, vault: new MemoryCertificateVault(), requestTimeoutMs: 300 });
      await expect(waiting.issue('slow.example.net')).rejects.toThrow(/^the CA did not answer \(ECONNABORTED: timeout of 300ms exceeded\)$/);
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });
});

describe('AcmeIssuer given a certificate it cannot serve', () => {
  it('refuses it, saying why, rather than hand it on to replace the one served', async () => {
    // The CA's answer is played here (a real CA issues for the CSR it was sent): a certificate for another name and key.
    const wrong = await generateSelfSignedCertificate({ names: ['other.example.net'] });
    const auto = vi.spyOn(acme.Client.prototype, 'auto').mockResolvedValue(wrong.cert);
    try {
      const issuer = await AcmeIssuer.open({ directoryUrl: 'https://127.0.0.1:1/dir', vault: new MemoryCertificateVault() });
      await expect(issuer.issue('shop.example.net')).rejects.toThrow(
        "the CA's certificate for shop.example.net cannot be served: it is not for the private key ordered with it; not stored, the one served (if any) stays",
      );
      expect(auto).toHaveBeenCalledTimes(1);
    } finally {
      auto.mockRestore();
    }
  });
});

/** The vault's challenge answers, shared with the responder, but an account key of its own. */
function withOwnAccount(shared: MemoryCertificateVault): MemoryCertificateVault {
  const own = new MemoryCertificateVault();
  return Object.assign(Object.create(shared) as MemoryCertificateVault, { shareAccountKey: (fresh: string) => own.shareAccountKey(fresh) });
}
