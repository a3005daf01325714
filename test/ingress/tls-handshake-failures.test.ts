/**
 * TLS handshakes that fail on the HTTPS listener are counted by reason in
 * edge_router_tls_handshake_failures_total, a fixed set of labels: real TLS clients (an unknown SNI
 * name with no certificate for it, TLS 1.0 only, no common cipher), plain HTTP sent to the port,
 * a client that leaves mid-handshake and one that never finishes it; and OpenSSL's own s_client
 * refusing the router's certificate, since Node's TLS client checks it only after the handshake and
 * sends no alert.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSelfSignedCertificate } from '../../src/ingress/certificates/dev-certificate.js';
import { HANDSHAKE_FAILURES } from '../../src/core/tls-handshake-failure.js';
import { ADMIN_TOKEN } from '../support/hostile.js';
import { startTestRouter, type TestRouter } from '../support/router.js';
import { until } from '../support/until.js';
import { missingProgram } from '../support/system-program.js';

const OPENSSL_MISSING = missingProgram('openssl', 'apt-get install -y openssl');

async function failures(router: TestRouter): Promise<Record<string, number>> {
  const text = await (await request(`http://127.0.0.1:${router.adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body.text();
  const counts: Record<string, number> = {};
  for (const m of text.matchAll(/^edge_router_tls_handshake_failures_total\{reason="([a-z_]+)"\} (\d+)$/gm)) counts[m[1]!] = Number(m[2]);
  return counts;
}

/**
 * A TLS handshake with `options`: whether it completed. Closed cleanly once it has (a destroy at
 * once would reach the router before the client's Finished does under TLS 1.3: an aborted handshake).
 */
function handshake(port: number, options: ConnectionOptions): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false, ...options });
    let connected = false;
    socket.once('secureConnect', () => {
      connected = true;
      socket.once('close', () => resolve(true));
      socket.end();
    });
    socket.on('error', () => {
      if (!connected) resolve(false);
    });
  });
}

/** Raw bytes to the port, then the client closes (or the server does, first). */
function sendAndClose(port: number, bytes: Buffer | string, how: 'end' | 'reset'): Promise<void> {
  return new Promise((resolve) => {
    const socket = netConnect({ port, host: '127.0.0.1' });
    socket.on('error', () => undefined);
    socket.once('close', () => resolve());
    socket.once('connect', () => {
      socket.write(bytes);
      setTimeout(() => (how === 'end' ? socket.end() : socket.resetAndDestroy()), 100);
    });
  });
}

/**
 * `openssl s_client` trusting only `caFile`, which did not sign the router's certificate: it
 * refuses that certificate with an alert (unknown_ca) and exits non-zero. Resolves to its exit
 * code and what it printed.
 */
function opensslRefusing(port: number, caFile: string, version: '-tls1_2' | '-tls1_3'): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'echo-demo.telnyxcompute.com', version, '-verify_return_error', '-CAfile', caFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** The first bytes of a ClientHello (a record header and part of the handshake header): a client that stops mid-handshake. */
const HALF_CLIENT_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);

describe('TLS handshake failures, with a default certificate', () => {
  let router: TestRouter;
  beforeAll(async () => {
    router = await startTestRouter({}, ['--admin-token', ADMIN_TOKEN, '--tls-handshake-timeout', '500'], {}, []);
  });
  afterAll(() => router.close());

  it('has every reason at 0 before any failure', async () => {
    expect(await failures(router)).toEqual(Object.fromEntries(HANDSHAKE_FAILURES.map((reason) => [reason, 0])));
  });

  it('counts a TLS 1.0-only client and plain HTTP as protocol', async () => {
    // OpenSSL 3 allows TLS 1.0 only at security level 0.
    expect(await handshake(router.httpsPort, { servername: 'echo-demo.telnyxcompute.com', minVersion: 'TLSv1', maxVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0' })).toBe(false);
    await until('one protocol failure', async () => (await failures(router)).protocol === 1);
    await sendAndClose(router.httpsPort, 'GET / HTTP/1.1\r\nHost: echo-demo.telnyxcompute.com\r\n\r\n', 'end');
    await until('two protocol failures', async () => (await failures(router)).protocol === 2);
  });

  it('counts a client offering no cipher the router takes as cipher', async () => {
    expect(await handshake(router.httpsPort, { servername: 'echo-demo.telnyxcompute.com', maxVersion: 'TLSv1.2', ciphers: 'AES128-SHA' })).toBe(false);
    await until('one cipher failure', async () => (await failures(router)).cipher === 1);
  });

  it('counts a client that closes or resets mid-handshake as aborted', async () => {
    await sendAndClose(router.httpsPort, HALF_CLIENT_HELLO, 'end');
    await sendAndClose(router.httpsPort, HALF_CLIENT_HELLO, 'reset');
    await until('two aborted handshakes', async () => (await failures(router)).aborted === 2);
  });

  it('counts a client that never finishes its handshake as timeout', async () => {
    const socket = netConnect({ port: router.httpsPort, host: '127.0.0.1' });
    socket.on('error', () => undefined);
    socket.once('connect', () => socket.write(HALF_CLIENT_HELLO));
    await new Promise((resolve) => socket.once('close', resolve));
    await until('one timeout', async () => (await failures(router)).timeout === 1);
  });

  it.skipIf(OPENSSL_MISSING)("counts a client refusing the router's certificate with an alert (openssl s_client) as certificate_rejected", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edge-router-other-ca-'));
    const otherCa = join(dir, 'other-ca.pem');
    await writeFile(otherCa, (await generateSelfSignedCertificate({ names: ['other-ca.example.org'] })).cert);
    const before = await failures(router);
    for (const version of ['-tls1_3', '-tls1_2'] as const) {
      const { code, output } = await opensslRefusing(router.httpsPort, otherCa, version);
      // It did refuse the certificate (not fail for another reason): the verification error is its.
      expect(code, output).not.toBe(0);
      expect(output).toMatch(/verify error:num=18:self[- ]signed certificate/);
    }
    await until('two certificate_rejected', async () => (await failures(router)).certificate_rejected === before.certificate_rejected! + 2);
    expect(await failures(router)).toEqual({ ...before, certificate_rejected: before.certificate_rejected! + 2 });
  });

  it('counts nothing for a handshake that completes, whatever name it asked', async () => {
    const before = await failures(router);
    expect(await handshake(router.httpsPort, { servername: 'unknown.example.net' })).toBe(true);
    expect(await handshake(router.httpsPort, {})).toBe(true);
    expect(await failures(router)).toEqual(before);
  });
});

describe('TLS handshake failures, without a default certificate', () => {
  let router: TestRouter;
  beforeAll(async () => {
    // One certificate, for one name: no default (`--tls-dir` without a `*.<zone>` pair).
    const dir = await mkdtemp(join(tmpdir(), 'edge-router-tls-'));
    const pem = await generateSelfSignedCertificate({ names: ['only.example.org'] });
    await writeFile(join(dir, 'only.crt'), pem.cert);
    await writeFile(join(dir, 'only.key'), pem.key);
    router = await startTestRouter({}, ['--admin-token', ADMIN_TOKEN, '--tls-dir', dir], {}, []);
  });
  afterAll(() => router.close());

  it('counts a name no certificate covers, and a client naming none, as no_certificate', async () => {
    expect(await handshake(router.httpsPort, { servername: 'only.example.org' })).toBe(true);
    expect(await handshake(router.httpsPort, { servername: 'unknown.example.net' })).toBe(false);
    await until('one no_certificate', async () => (await failures(router)).no_certificate === 1);
    // TLS 1.2 as well (the failure is OpenSSL's "no shared cipher" there).
    expect(await handshake(router.httpsPort, { servername: 'unknown.example.net', maxVersion: 'TLSv1.2' })).toBe(false);
    // No SNI at all (an IP address is never sent as one).
    expect(await handshake(router.httpsPort, {})).toBe(false);
    await until('three no_certificate', async () => (await failures(router)).no_certificate === 3);
    expect((await failures(router)).cipher).toBe(0);
  });
});
