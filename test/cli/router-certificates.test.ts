/**
 * The whole router process and its certificate files: a client that sends no SNI never reaches
 * the SNICallback, so it sees the server's own default pair, which a reload must replace too —
 * including a reload that lands while the router is still starting.
 */
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseFlags } from '../../src/cli/flags.js';
import { routerHelp } from '../../src/cli/help/router.js';
import { resolveRouterFlags, startRouterProcess, type StartHooks } from '../../src/cli/router-command.js';
import { generateSelfSignedCertificate, type CertificatePem } from '../../src/ingress/certificates/dev-certificate.js';
import { regionsFileFor } from '../support/router.js';
import { until } from '../support/until.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function replaceFile(file: string, text: string): Promise<void> {
  await writeFile(`${file}.tmp`, text);
  await rename(`${file}.tmp`, file);
}

interface PairFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

async function replacePair(files: PairFiles, pem: CertificatePem): Promise<void> {
  await replaceFile(files.keyFile, pem.key);
  await replaceFile(files.certFile, pem.cert);
}

const ADMIN_TOKEN = 'router-certificates-test-token';

/** The router's Prometheus answer. */
async function scrape(adminPort: number): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  return response.text();
}

/** A router on --tls-cert/--tls-key files holding `first`; returns its HTTPS port and the files. */
async function startRouter(first: CertificatePem, hooksFor: (files: PairFiles) => StartHooks = () => ({})) {
  const dir = await mkdtemp(join(tmpdir(), 'edge-router-certs-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const files = { certFile: join(dir, 'default.crt'), keyFile: join(dir, 'default.key') };
  await writeFile(files.certFile, first.cert);
  await writeFile(files.keyFile, first.key);
  const parsed = parseFlags(
    ['--regions', await regionsFileFor({}), '--tls-cert', files.certFile, '--tls-key', files.keyFile, '--admin-token', ADMIN_TOKEN, '--workers', '1', '--https-port', '0', '--http-port', '0', '--admin-port', '0', '--bind', '127.0.0.1', '--probe', 'off'],
    routerHelp.flags,
    {},
  );
  const router = await startRouterProcess(await resolveRouterFlags(parsed), pino({ level: 'silent' }), hooksFor(files));
  cleanups.push(() => router.close());
  return { port: router.ports.https!, adminPort: router.ports.admin, files };
}

/** The names on the certificate a client that sends no SNI is shown. */
async function namesWithoutSni(port: number): Promise<string | undefined> {
  const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    return socket.getPeerCertificate().subjectaltname;
  } finally {
    socket.destroy();
  }
}

describe('the router process and its default certificate', () => {
  it('shows a client without SNI the replaced default pair once the files change', async () => {
    const first = await generateSelfSignedCertificate({ names: ['*.telnyxcompute.com', 'first.telnyxcompute.com'] });
    const second = await generateSelfSignedCertificate({ names: ['*.telnyxcompute.com', 'second.telnyxcompute.com'] });
    const { port, files } = await startRouter(first);
    expect(await namesWithoutSni(port)).toContain('first.telnyxcompute.com');

    await replacePair(files, second);
    await until('the replaced pair to reach clients without SNI', async () => (await namesWithoutSni(port))?.includes('second.telnyxcompute.com') === true, 5_000);
  });

  it('counts a refused replacement in the metrics, and keeps serving the pair it replaced', async () => {
    const first = await generateSelfSignedCertificate({ names: ['*.telnyxcompute.com', 'first.telnyxcompute.com'] });
    const { port, adminPort, files } = await startRouter(first);
    expect(await scrape(adminPort)).toMatch(/^edge_router_reloads_refused_total\{file="tls"\} 0$/m);

    await replaceFile(files.certFile, '-----BEGIN CERTIFICATE-----\ntruncated');
    await until('the refusal to be counted', async () => /^edge_router_reloads_refused_total\{file="tls"\} 1$/m.test(await scrape(adminPort)), 5_000);
    expect(await scrape(adminPort)).toMatch(/^edge_router_reloads_refused_total\{file="geoip"\} 0$/m);
    expect(await namesWithoutSni(port)).toContain('first.telnyxcompute.com');
  });

  it('serves the new default pair when the reload landed while the router was starting', async () => {
    const first = await generateSelfSignedCertificate({ names: ['*.telnyxcompute.com', 'first.telnyxcompute.com'] });
    const second = await generateSelfSignedCertificate({ names: ['*.telnyxcompute.com', 'second.telnyxcompute.com'] });
    let reloaded = false;
    const { port } = await startRouter(first, (files) => ({
      // The servers were set up with `first`; the files change and the store reloads before the router is running.
      certificatesOpened: async (store) => {
        await replacePair(files, second);
        await store.reload();
        reloaded = store.defaultCredentials()?.cert === second.cert;
      },
    }));
    expect(reloaded).toBe(true);
    // No further reload comes: what the router serves now is what it will serve.
    expect(await namesWithoutSni(port)).toContain('second.telnyxcompute.com');
  });
});
