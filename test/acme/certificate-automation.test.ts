/**
 * Which names get an issued certificate, and which issued certificates are served: certificate
 * files always win, removed domains stop being served, a certificate that does not load is
 * reported and left out. Real TLS contexts from self-signed certificates; the CA is a stand-in
 * issuer (the real exchange: acme-router.test.ts).
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { connect, createSecureContext, createServer } from 'node:tls';
import { describe, expect, it } from 'vitest';
import type { IssuedCertificate } from '../../src/core/certificate-vault.js';
import { CertificateAutomation } from '../../src/acme/certificate-automation.js';
import { IssuedContexts } from '../../src/acme/issued-contexts.js';
import { certificateMatchesHost } from '../../src/ingress/certificates/certificate-names.js';
import { generateSelfSignedCertificate } from '../../src/ingress/certificates/dev-certificate.js';
import { MemoryCertificateVault } from '../../src/registry/memory-certificate-vault.js';

const HOUR = 3_600_000;

async function selfSigned(name: string, validFrom = new Date(Date.now() - HOUR), validForMs = 90 * 24 * HOUR): Promise<IssuedCertificate> {
  const pem = await generateSelfSignedCertificate({ names: [name], validFrom, validForMs });
  return { name, certPem: pem.cert, keyPem: pem.key, notBefore: validFrom.getTime(), notAfter: validFrom.getTime() + validForMs };
}

describe('CertificateAutomation', () => {
  it('orders only custom domains no certificate file covers, serves only those, and stops serving a removed one', async () => {
    const vault = new MemoryCertificateVault();
    const ordered: string[] = [];
    const issued = new IssuedContexts({});
    let domains = ['free.example', 'covered.example', 'shop.files.example'];
    const fileNames = ['covered.example', '*.files.example'];
    const automation = new CertificateAutomation({
      vault,
      issued,
      issuer: {
        issue: async (name) => {
          ordered.push(name);
          return selfSigned(name);
        },
      },
      customDomains: () => domains,
      coveredByFiles: (name) => certificateMatchesHost(fileNames, name),
      holder: 'router-1',
      onEvent: () => undefined,
    });
    await automation.manager.check();
    expect(ordered).toEqual(['free.example']);
    expect(issued.names()).toEqual(['free.example']);
    expect(issued.contextFor('FREE.example')).toBeDefined();

    domains = ['covered.example'];
    automation.reconsider();
    expect(issued.names()).toEqual([]);
    await automation.stop();
  });
});

describe('IssuedContexts', () => {
  it('serves certificates inside their validity only, reports one that does not load, and reuses contexts it made', async () => {
    const bad: string[] = [];
    const issued = new IssuedContexts({ minVersion: 'TLSv1.2' }, (name, reason) => bad.push(`${name}: ${reason}`));
    const good = await selfSigned('good.example');
    const expired = await selfSigned('old.example', new Date(Date.now() - 100 * 24 * HOUR), 90 * 24 * HOUR);
    const future = await selfSigned('later.example', new Date(Date.now() + HOUR));
    const broken: IssuedCertificate = { ...good, name: 'broken.example', keyPem: (await selfSigned('other.example')).keyPem };
    const all = new Map([good, expired, future, broken].map((c) => [c.name, c]));
    issued.update(all, () => true, Date.now());
    // Contexts are made when first asked for, not for every certificate at once (a start with
    // 100,000 custom domains blocked a worker for about 16 s): the broken pair is found then.
    expect(issued.names().sort()).toEqual(['broken.example', 'good.example']);
    expect(bad).toEqual([]);
    expect(issued.contextFor('broken.example')).toBeUndefined();
    expect(issued.contextFor('broken.example')).toBeUndefined();
    expect(bad).toEqual([expect.stringMatching(/^broken\.example: /)]); // once
    expect(issued.names()).toEqual(['good.example']);
    expect(issued.contextFor('old.example')).toBeUndefined();
    expect(issued.contextFor('later.example')).toBeUndefined();
    const context = issued.contextFor('good.example');
    expect(context).toBeDefined();
    issued.update(all, () => true, Date.now());
    expect(issued.contextFor('good.example')).toBe(context);
    // Renewed: a new context, made from the new certificate.
    const renewed = await selfSigned('good.example');
    issued.update(new Map([...all, ['good.example', renewed]]), () => true, Date.now());
    const next = issued.contextFor('good.example');
    expect(next).toBeDefined();
    expect(next).not.toBe(context);
    issued.update(all, (name) => name !== 'good.example', Date.now());
    expect(issued.contextFor('good.example')).toBeUndefined();
  });

  it('reads validity at each handshake: an expiry between refreshes ends serving, a renewal not valid yet leaves the one it renews served until it is', async () => {
    let clock = Date.now();
    const issued = new IssuedContexts({}, () => undefined, () => clock);
    const first = await selfSigned('shop.example', new Date(clock - HOUR), 2 * HOUR);
    issued.update(new Map([['shop.example', first]]), () => true, clock);
    const firstContext = issued.contextFor('shop.example');
    expect(firstContext).toBeDefined();
    // Renewed by a CA that does not backdate, ahead of this host's clock: not valid here for a minute yet.
    const renewal = await selfSigned('shop.example', new Date(clock + 60_000), 90 * 24 * HOUR);
    issued.update(new Map([['shop.example', renewal]]), () => true, clock);
    expect(issued.contextFor('shop.example')).toBe(firstContext);
    expect(issued.names()).toEqual(['shop.example']);
    clock += 60_000; // valid now, with no refresh in between
    const renewedContext = issued.contextFor('shop.example');
    expect(renewedContext).toBeDefined();
    expect(renewedContext).not.toBe(firstContext);
    // A certificate that expires while no refresh comes (a check waiting on a slow order) stops being served then.
    const short = await selfSigned('brief.example', new Date(clock - HOUR), HOUR + 1_000);
    issued.update(new Map([['shop.example', renewal], ['brief.example', short]]), () => true, clock);
    expect(issued.contextFor('brief.example')).toBeDefined();
    clock += 1_000;
    expect(issued.contextFor('brief.example')).toBeUndefined();
    expect(issued.names()).toEqual(['shop.example']);
    // A first certificate not valid yet is served from its start, with no refresh in between.
    const early = await selfSigned('new.example', new Date(clock + 5_000));
    issued.update(new Map([['new.example', early]]), () => true, clock);
    expect(issued.contextFor('new.example')).toBeUndefined();
    expect(issued.names()).toEqual([]);
    clock += 5_000;
    expect(issued.contextFor('new.example')).toBeDefined();
  });

  it('serves the issued certificate to a client whose SNI has upper case or a trailing dot, as the certificate files are', async () => {
    const issued = new IssuedContexts({});
    issued.update(new Map([['shop.example', await selfSigned('shop.example')]]), () => true, Date.now());
    const fallback = await generateSelfSignedCertificate({ names: ['*.zone.example'] });
    const fallbackContext = createSecureContext({ cert: fallback.cert, key: fallback.key });
    // As the router's SNI callback: an issued certificate first, else the files' choice (here the default).
    const server = createServer({ cert: fallback.cert, key: fallback.key, SNICallback: (name, cb) => cb(null, issued.contextFor(name) ?? fallbackContext) }, (socket) => socket.end());
    server.on('tlsClientError', () => undefined);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const presentedFor = (servername: string) =>
      new Promise<string | undefined>((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, servername, rejectUnauthorized: false }, () => {
          resolve(socket.getPeerCertificate().subjectaltname);
          socket.destroy();
        });
        socket.once('error', reject);
      });
    try {
      expect(await presentedFor('shop.example')).toBe('DNS:shop.example');
      expect(await presentedFor('Shop.EXAMPLE')).toBe('DNS:shop.example');
      expect(await presentedFor('shop.example.')).toBe('DNS:shop.example');
    } finally {
      server.close();
    }
  });
});
