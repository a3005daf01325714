/**
 * A router whose every certificate file expires while it runs, no file changing: from then on it
 * serves no certificate at all (handshakes fail) instead of the expired one, and counts none of
 * the expired names as covered by files, so ACME may order the custom domains among them.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { connect as tlsConnect } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { generateSelfSignedCertificate } from '../../../src/ingress/certificates/dev-certificate.js';
import { HOST } from '../../support/clients.js';
import { startTestRouter, type TestRouter } from '../../support/router.js';
import { until } from '../../support/until.js';

const DAY_MS = 24 * 60 * 60 * 1000;
let router: TestRouter | undefined;
afterEach(async () => {
  await router?.close();
  router = undefined;
});

/** The certificate the router presents for `servername`, or null when the handshake fails. */
function presented(port: number, servername: string): Promise<X509Certificate | null> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ port, host: '127.0.0.1', servername, rejectUnauthorized: false });
    socket.once('secureConnect', () => {
      const raw = socket.getPeerX509Certificate();
      socket.end();
      resolve(raw ?? null);
    });
    socket.on('error', () => resolve(null));
  });
}

describe('certificates that all expire', () => {
  it('serves no certificate once every one has expired, not the expired one, also to clients without SNI', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edge-all-expired-'));
    // Valid for about 3 more seconds (certificate times are whole seconds).
    const soon = await generateSelfSignedCertificate({ names: ['*.telnyxcompute.com'], validFrom: new Date(Date.now() - DAY_MS), validForMs: DAY_MS + 3_000 });
    await writeFile(join(dir, 'default.crt'), soon.cert);
    await writeFile(join(dir, 'default.key'), soon.key);
    router = await startTestRouter({}, ['--tls-dir', dir], {}, []);
    const before = await presented(router.httpsPort, HOST);
    expect(before?.subjectAltName).toBe('DNS:*.telnyxcompute.com');
    const expiresAt = Date.parse(before!.validTo);
    await until('the certificate has expired', () => Date.now() > expiresAt, 10_000);
    await until('no certificate is served for the zone', async () => (await presented(router!.httpsPort, HOST)) === null, 10_000);
    expect(await presented(router.httpsPort, '')).toBeNull();
    expect(router.logs.filter((l) => l.event === 'tls_reload_failed')).toEqual([]);
    expect(router.logs.some((l) => l.event === 'tls_loaded' && Array.isArray(l.names) && l.names.length === 0)).toBe(true);
  }, 30_000);
});
