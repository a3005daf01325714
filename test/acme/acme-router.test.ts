/**
 * Certificates for custom domains end to end: two real routers sharing a real Redis, a real ACME
 * CA (pebble, whose HTTP-01 checks of every name reach one chosen router's plain port), real TLS
 * clients checking the issued chain against the CA's root.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type PeerCertificate } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { TestOrigin } from '../support/origin.js';
import { PEBBLE_MISSING, TestPebble } from '../support/pebble.js';
import { freePort } from '../support/redis-server.js';
import { redisKeyspace } from '../support/redis-keyspace.js';
import { startTestRouter, type TestRouter } from '../support/router.js';
import { REDIS_MISSING } from '../support/system-program.js';
import { until } from '../support/until.js';

const DOMAIN = 'shop.example.net';
const ADMIN_TOKEN = 'acme-test-admin-token-0123456789';

/** The admin API's view of the certificates (never a key). */
async function certificatesOf(router: TestRouter): Promise<{ text: string; json: { acme: boolean; certificates: Array<Record<string, string>>; failures: Array<Record<string, unknown>> } }> {
  const res = await fetch(`http://127.0.0.1:${router.adminPort}/api/certificates`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  const text = await res.text();
  return { text, json: JSON.parse(text) as never };
}

/** The certificate a router presents for `servername`, checked against `ca` (authorized or not). */
function presented(port: number, servername: string, ca: string): Promise<{ authorized: boolean; error: string | null; certificate: PeerCertificate }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername, ca, rejectUnauthorized: false }, () => {
      const result = { authorized: socket.authorized, error: socket.authorizationError === null ? null : String(socket.authorizationError), certificate: socket.getPeerCertificate() };
      socket.end();
      resolve(result);
    });
    socket.once('error', reject);
  });
}

function get(port: number, host: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/hello', servername: host, headers: { host }, ca }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** As an operator would (admin API, `registry domain add`); the router's Redis connection may still be coming up. */
async function addDomain(router: TestRouter, name: string): Promise<void> {
  const write = () => router.router.registry.putDomain(name, { fn: 'shop', org: 'acme' }).then(() => true, () => false);
  await until(`the registry takes ${name}`, write, 5_000);
}

describe.skipIf(REDIS_MISSING || PEBBLE_MISSING)('ACME certificates for custom domains (pebble, Redis, two routers)', () => {
  const { url, prefix } = redisKeyspace('acme-router');
  const cleanups: Array<() => Promise<void>> = [];
  afterAll(async () => {
    // Each runs whatever the one before it did: a failing cleanup must not leave a CA running.
    for (const cleanup of cleanups.reverse()) await Promise.resolve().then(cleanup).catch(() => undefined);
  });

  async function setUp(label: string, challengePort: number) {
    const pebble = await TestPebble.start(challengePort);
    cleanups.push(() => pebble.stop());
    const dir = await mkdtemp(join(tmpdir(), 'edge-router-acme-'));
    const caFile = join(dir, 'pebble-listener.pem');
    await writeFile(caFile, pebble.listenerCaPem);
    const origin = await TestOrigin.start('fra');
    cleanups.push(() => origin.kill());
    const flags = ['--redis', url, '--redis-prefix', `${prefix}${label}:`, '--acme-directory', pebble.directoryUrl, '--acme-ca-file', caFile, '--acme-email', 'ops@example.net', '--admin-token', ADMIN_TOKEN];
    const start = async (extra: string[]): Promise<TestRouter> => {
      const router = await startTestRouter({ fra: origin.url }, [...flags, ...extra], {}, ['fra']);
      cleanups.push(() => router.close());
      return router;
    };
    return { pebble, origin, start };
  }

  it('one router orders, the CA\'s check reaches another, and both serve the issued certificate', async () => {
    const challengePort = await freePort();
    const { pebble, origin, start } = await setUp('issue', challengePort);
    // Router B gets the CA's checks and looks for work only once an hour; router A orders.
    const b = await start(['--http-port', String(challengePort), '--acme-check-interval', '3600000']);
    const a = await start(['--acme-check-interval', '200']);
    const root = await pebble.rootPem();
    expect((await presented(a.httpsPort, DOMAIN, root)).authorized).toBe(false); // the development certificate until then

    await addDomain(a, DOMAIN);
    await until('router A logs the certificate issued', () => a.logs.some((l) => l.event === 'acme_issued'), 20_000);
    expect(a.logs.find((l) => l.event === 'acme_issued')).toMatchObject({ name: DOMAIN, reason: 'missing' });

    const fromA = await presented(a.httpsPort, DOMAIN, root);
    expect(fromA).toMatchObject({ authorized: true, error: null });
    expect(fromA.certificate.subjectaltname).toBe(`DNS:${DOMAIN}`);
    expect(fromA.certificate.issuer.CN).toMatch(/^Pebble Intermediate CA/);
    // The whole path: the custom domain's request over the issued certificate reaches its function.
    expect(await get(a.httpsPort, DOMAIN, root)).toMatchObject({ status: 200 });
    expect(origin.requests.some((r) => r.url === '/hello' && r.headers['x-edge-fn'] === 'shop' && r.headers['x-edge-org'] === 'acme')).toBe(true);

    // B serves the same certificate from the shared vault at its next check, without ordering.
    b.router.certificates!.reconsider();
    await until('router B serves the issued certificate', async () => (await presented(b.httpsPort, DOMAIN, root)).authorized, 5_000);
    expect((await presented(b.httpsPort, DOMAIN, root)).certificate.fingerprint256).toBe(fromA.certificate.fingerprint256);
    expect(b.logs.filter((l) => l.event === 'acme_issued')).toEqual([]);

    // The admin API lists it, on every router, with its renewal time and without its key.
    for (const router of [a, b]) {
      const { text, json } = await certificatesOf(router);
      expect(json).toMatchObject({ acme: true, certificates: [{ name: DOMAIN, notAfter: new Date(Date.parse(fromA.certificate.valid_to)).toISOString() }], failures: [] });
      expect(text).not.toMatch(/PRIVATE KEY|BEGIN CERTIFICATE/);
    }

    // Names the zone's certificate covers are never ordered, and no log line carries a private key.
    expect(a.logs.filter((l) => l.event === 'acme_issued')).toHaveLength(1);
    expect([...a.logs, ...b.logs].some((l) => JSON.stringify(l).includes('PRIVATE KEY'))).toBe(false);
  });

  it('records a failed order with the CA\'s reason and backs off: no second order within the retry time', async () => {
    const closedPort = await freePort(); // the CA's checks find nobody there
    const { start } = await setUp('fail', closedPort);
    const a = await start(['--acme-check-interval', '100']);
    await addDomain(a, 'broken.example.net');
    await until('the failure is logged', () => a.logs.some((l) => l.event === 'acme_failed'), 20_000);
    const failure = a.logs.find((l) => l.event === 'acme_failed')!;
    expect(failure).toMatchObject({ name: 'broken.example.net', attempts: 1 });
    expect(String(failure.reason)).toMatch(/connect|refused/i);
    expect(Date.parse(String(failure.retryAt)) - Date.now()).toBeGreaterThan(4 * 60_000);
    await sleep(1_000); // ten checks
    expect(a.logs.filter((l) => l.event === 'acme_failed')).toHaveLength(1);
    expect((await certificatesOf(a)).json).toMatchObject({ acme: true, certificates: [], failures: [{ name: 'broken.example.net', attempts: 1, reason: failure.reason }] });
  });
});
