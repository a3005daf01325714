/**
 * Certificates: development certificates, refusals at open, SNI selection and protocol hardening
 * through real TLS handshakes on loopback, hot reload, and the name rules. Keys are made here.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/core/errors.js';
import {
  CertificateError,
  CertificateStore,
  certificateMatchesHost,
  dnsNamesFromSubjectAltName,
  sniCallback,
  type CertEvent,
  type CertificateStoreOptions,
} from '../../../src/ingress/certificates/certificate-store.js';
import { generateDevCertificate, generateSelfSignedCertificate, type CertificatePem } from '../../../src/ingress/certificates/dev-certificate.js';
import { until } from '../../support/until.js';

const DAY_MS = 86_400_000;
const WAIT_MS = 5_000;

let root: string;
let wildcard: CertificatePem; // the default: *.example.test
let api: CertificatePem; // exact: api.example.test
let other: CertificatePem; // a second wildcard: *.other.test
/** Undone after each test; `suiteCleanups` after the file, for servers a whole describe shares. */
const cleanups: (() => unknown)[] = [];
const suiteCleanups: (() => unknown)[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'edge-certs-'));
  [wildcard, api, other] = await Promise.all([
    generateSelfSignedCertificate({ names: ['*.example.test'] }),
    generateSelfSignedCertificate({ names: ['api.example.test'] }),
    generateSelfSignedCertificate({ names: ['*.other.test'] }),
  ]);
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  for (const cleanup of suiteCleanups.splice(0).reverse()) await cleanup();
  await rm(root, { recursive: true, force: true });
});

let dirCount = 0;
async function freshDir(): Promise<string> {
  const dir = join(root, `case-${++dirCount}`);
  await mkdir(dir);
  return dir;
}

/** Writes beside and renames into place, as certificate tools do, so readers never see half a file. */
async function replaceFile(file: string, text: string): Promise<void> {
  await writeFile(`${file}.tmp`, text);
  await rename(`${file}.tmp`, file);
}

/** A certificate for `names` that has been valid a day and expires `msLeft` from now (certificate times are whole seconds). */
function expiringIn(msLeft: number, names: string[] = ['soon.example.test']): Promise<CertificatePem> {
  return generateSelfSignedCertificate({ names, validFrom: new Date(Date.now() - DAY_MS), validForMs: DAY_MS + msLeft });
}

async function writePair(dir: string, stem: string, pem: CertificatePem): Promise<{ certFile: string; keyFile: string }> {
  const certFile = join(dir, `${stem}.crt`);
  const keyFile = join(dir, `${stem}.key`);
  await Promise.all([writeFile(certFile, pem.cert), writeFile(keyFile, pem.key)]);
  return { certFile, keyFile };
}

/** A default `*.example.test` pair plus a `--tls-dir` holding `api.example.test` and `*.other.test`. */
async function layout(): Promise<{ certFile: string; keyFile: string; dir: string }> {
  const base = await freshDir();
  const dir = join(base, 'pairs');
  await mkdir(dir);
  const main = await writePair(base, 'default', wildcard);
  await writePair(dir, 'api', api);
  await writePair(dir, 'other', other);
  return { ...main, dir };
}

async function openStore(options: CertificateStoreOptions): Promise<CertificateStore> {
  const store = await CertificateStore.open({ watch: false, ...options });
  cleanups.push(() => store.close());
  return store;
}

function bounded<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const waitFor = (predicate: () => boolean, what: string) => until(what, predicate, WAIT_MS);

interface TestServer {
  readonly port: number;
  /** Handshakes the server refused, so a test can tell a server refusal from a client one. */
  readonly refusals: Error[];
}

/** An echo server configured the way the router's TLS server must be. */
async function startServer(store: CertificateStore, owner = cleanups): Promise<TestServer> {
  return startTlsServer({ ...store.tlsOptions(), ...store.defaultCredentials(), SNICallback: sniCallback(store) }, owner);
}

async function startTlsServer(options: tls.TlsOptions, owner = cleanups): Promise<TestServer> {
  const refusals: Error[] = [];
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer(options, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.pipe(socket);
  });
  server.on('tlsClientError', (err) => refusals.push(err));
  server.listen(0, '127.0.0.1');
  await bounded(once(server, 'listening'), 'server listening');
  owner.push(async () => {
    for (const socket of sockets) socket.destroy();
    server.close();
    await bounded(once(server, 'close'), 'server close');
  });
  return { port: (server.address() as AddressInfo).port, refusals };
}

/** Completes a handshake (or rejects with the client's error); the socket is closed after the test. */
async function handshake(port: number, options: tls.ConnectionOptions = {}): Promise<tls.TLSSocket> {
  const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
  cleanups.push(() => socket.destroy());
  await bounded(
    new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    }),
    `handshake with ${options.servername ?? 'no SNI'}`,
  );
  return socket;
}

function servedNames(socket: tls.TLSSocket): string | undefined {
  return socket.getPeerCertificate().subjectaltname;
}

async function echo(socket: tls.TLSSocket, text: string): Promise<string> {
  socket.write(text);
  const [chunk] = (await bounded(once(socket, 'data'), 'echo')) as [Buffer];
  return chunk.toString();
}

describe('generateDevCertificate', () => {
  it('covers the zone, its one-label wildcard and loopback, with EC P-256, for about 30 days', async () => {
    const startedAt = Date.now();
    const { cert, key } = await generateDevCertificate({ zone: 'Example.Test.', hosts: ['router.internal', '10.1.2.3'] });
    expect(Date.now() - startedAt).toBeLessThan(1_000);

    const x509 = new X509Certificate(cert);
    expect(dnsNamesFromSubjectAltName(x509.subjectAltName)).toEqual(['*.example.test', 'example.test', 'localhost', 'router.internal']);
    expect(x509.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(x509.subjectAltName).toMatch(/IP Address:(?:0:0:0:0:0:0:0:1|::1)\b/);
    expect(x509.subjectAltName).toContain('IP Address:10.1.2.3');
    expect(x509.checkHost('fn-org.example.test')).toBe('*.example.test'); // OpenSSL answers with the SAN that matched
    expect(x509.checkHost('a.b.example.test')).toBeUndefined();
    expect(x509.checkIP('::1')).toBe('::1');
    expect(x509.ca).toBe(false);

    const validFromMs = new Date(x509.validFrom).getTime();
    const validToMs = new Date(x509.validTo).getTime();
    expect(validFromMs).toBeLessThanOrEqual(startedAt);
    expect(validToMs - startedAt).toBeGreaterThan(29 * DAY_MS);
    expect(validToMs - startedAt).toBeLessThan(31 * DAY_MS);

    const privateKey = createPrivateKey(key);
    expect(privateKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(x509.checkPrivateKey(privateKey)).toBe(true);
  });

  it('is what the store serves when no files are given', async () => {
    const devCert = await generateDevCertificate({ zone: 'example.test' });
    const events: CertEvent[] = [];
    const store = await openStore({ zone: 'example.test', devCert, onEvent: (e) => events.push(e) });
    expect(events).toEqual([{ type: 'loaded', names: ['*.example.test', 'example.test', 'localhost'] }]);
    expect(store.defaultCredentials()).toEqual(devCert);
    expect(store.secureContextFor('anything.invalid')).toBe(store.defaultContext());
  });
});

describe('CertificateStore.open refuses unusable material, naming the file', () => {
  it.each([
    {
      problem: 'a missing certificate file',
      arrange: async (dir: string) => ({ certFile: join(dir, 'nope.crt'), keyFile: (await writePair(dir, 'k', wildcard)).keyFile }),
      file: 'nope.crt',
      reason: /file not found/,
    },
    {
      problem: 'a certificate that is not PEM',
      arrange: async (dir: string) => {
        const pair = await writePair(dir, 'default', wildcard);
        await writeFile(pair.certFile, 'this is not a certificate\n');
        return pair;
      },
      file: 'default.crt',
      reason: /not a PEM certificate/,
    },
    {
      problem: 'a corrupt PEM certificate',
      arrange: async (dir: string) => {
        const pair = await writePair(dir, 'default', wildcard);
        await writeFile(pair.certFile, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
        return pair;
      },
      file: 'default.crt',
      reason: /not a valid PEM certificate/,
    },
    {
      problem: 'a key that is not PEM',
      arrange: async (dir: string) => {
        const pair = await writePair(dir, 'default', wildcard);
        await writeFile(pair.keyFile, wildcard.cert);
        return pair;
      },
      file: 'default.key',
      reason: /not a PEM private key/,
    },
    {
      problem: 'a key that does not match the certificate',
      arrange: (dir: string) => writePair(dir, 'default', { cert: wildcard.cert, key: api.key }),
      file: 'default.key',
      reason: /does not match the certificate in .*default\.crt/,
    },
    {
      problem: 'a chain in the wrong order: the key belongs to a certificate after the first',
      arrange: (dir: string) => writePair(dir, 'default', { cert: `${other.cert.trimEnd()}\n${wildcard.cert}`, key: wildcard.key }),
      file: 'default.crt',
      reason: /certificate 2 of 2 in it matches the key: the server's own certificate must come first, then its chain/,
    },
    {
      problem: 'a certificate path that is a directory',
      arrange: async (dir: string) => {
        await mkdir(join(dir, 'default.crt'));
        return { certFile: join(dir, 'default.crt'), keyFile: (await writePair(dir, 'k', wildcard)).keyFile };
      },
      file: 'default.crt',
      reason: /expected a PEM file, found a directory/,
    },
    {
      // Its open() waited for a writer in libuv's pool, and every later reload queued behind it.
      problem: 'a key path that is a FIFO',
      arrange: async (dir: string) => {
        const pair = await writePair(dir, 'default', wildcard);
        await rm(pair.keyFile);
        execFileSync('mkfifo', [pair.keyFile]);
        return pair;
      },
      file: 'default.key',
      reason: /expected a PEM file, found a FIFO, socket or device, not a regular file/,
    },
    {
      problem: 'an expired certificate',
      arrange: async (dir: string) => {
        const expired = await generateSelfSignedCertificate({ names: ['*.example.test'], validFrom: new Date(Date.now() - 10 * DAY_MS), validForMs: DAY_MS });
        return writePair(dir, 'default', expired);
      },
      file: 'default.crt',
      reason: /certificate expired on 20\d\d-/,
    },
    {
      problem: 'a certificate not valid yet',
      arrange: async (dir: string) => {
        const future = await generateSelfSignedCertificate({ names: ['*.example.test'], validFrom: new Date(Date.now() + DAY_MS) });
        return writePair(dir, 'default', future);
      },
      file: 'default.crt',
      reason: /not valid before/,
    },
    {
      problem: 'a certificate without DNS names',
      arrange: async (dir: string) => writePair(dir, 'default', await generateSelfSignedCertificate({ names: ['127.0.0.1'] })),
      file: 'default.crt',
      reason: /no DNS names/,
    },
    {
      problem: 'a missing --tls-dir',
      arrange: (dir: string) => Promise.resolve({ dir: join(dir, 'absent') }),
      file: 'absent',
      reason: /directory not found/,
    },
    {
      problem: 'a --tls-dir certificate without its key',
      arrange: async (dir: string) => {
        await writeFile(join(dir, 'api.crt'), api.cert);
        return { dir };
      },
      file: 'api.crt',
      reason: /no api\.key beside this certificate/,
    },
    {
      problem: 'an empty --tls-dir and no default',
      arrange: (dir: string) => Promise.resolve({ dir }),
      file: 'case-',
      reason: /no \.crt \+ \.key pairs/,
    },
  ])('refuses $problem', async ({ arrange, file, reason }) => {
    const paths = await arrange(await freshDir());
    const opening = CertificateStore.open({ zone: 'example.test', watch: false, ...paths });
    const err = (await opening.then(
      () => expect.unreachable('open() accepted unusable material'),
      (e: unknown) => e,
    )) as CertificateError;
    expect(err).toBeInstanceOf(CertificateError);
    expect(err.code).toBe('certificate');
    expect(err.file).toContain(file);
    expect(err.message).toContain(err.file);
    expect(err.reason).toMatch(reason);
  });

  it('never shows a --tls-key value that may be the key itself (one line of base64, naming no directory that exists)', async () => {
    const dir = await freshDir();
    const { certFile, keyFile } = await writePair(dir, 'default', wildcard);
    // `kubectl get secret … -o jsonpath='{.data.tls\\.key}'`: the PEM, base64 on one line (so no PEM text to refuse).
    const oneLine = Buffer.from(wildcard.key).toString('base64');
    const err = (await CertificateStore.open({ zone: 'example.test', watch: false, certFile, keyFile: oneLine }).catch((e: unknown) => e)) as CertificateError;
    expect(err).toBeInstanceOf(CertificateError);
    expect(err.message).toMatch(/^\(the private key file\): cannot read the private key file \(E[A-Z]+\); its value is not shown/);
    expect(err.message).not.toContain(oneLine.slice(0, 40));
    // A path in a directory that exists is a path: named, as before.
    const missing = join(dir, 'missing.key');
    await expect(CertificateStore.open({ zone: 'example.test', watch: false, certFile, keyFile: missing })).rejects.toThrow(`${missing}: file not found`);
    expect(keyFile).toContain(dir);
  });

  it('starts without a bad --tls-dir pair among good ones, reporting it: one customer\'s file does not keep the router down', async () => {
    const dir = await freshDir();
    await writePair(dir, 'api', api);
    await writePair(dir, 'mixed', { cert: other.cert, key: api.key });
    const events: CertEvent[] = [];
    const store = await openStore({ dir, zone: 'example.test', onEvent: (e) => events.push(e) });
    expect(events).toEqual([
      { type: 'file-refused', file: join(dir, 'mixed.key'), reason: expect.stringMatching(/does not match/), keptPrevious: false },
      { type: 'loaded', names: ['api.example.test'] },
    ]);
    expect(store.secureContextFor('api.example.test')).toBeDefined();
  });

  it('refuses a certificate file without a key file, and no material at all, as configuration errors', async () => {
    await expect(CertificateStore.open({ zone: 'example.test', certFile: '/x.crt' })).rejects.toBeInstanceOf(ConfigError);
    await expect(CertificateStore.open({ zone: 'example.test' })).rejects.toThrow(/no certificate/);
  });
});

describe('SNI selection through a real handshake', () => {
  let port: number;
  let store: CertificateStore;

  beforeAll(async () => {
    store = await CertificateStore.open({ ...(await layout()), zone: 'example.test', watch: false });
    port = (await startServer(store, suiteCleanups)).port;
  });
  afterAll(() => store.close());

  it.each([
    { servername: 'api.example.test', served: 'DNS:api.example.test', why: 'an exact name beats the wildcard' },
    { servername: 'API.Example.TEST.', served: 'DNS:api.example.test', why: 'case and a trailing dot are ignored' },
    { servername: 'fn-org.example.test', served: 'DNS:*.example.test', why: 'the wildcard covers one label' },
    { servername: 'x.other.test', served: 'DNS:*.other.test', why: 'a directory wildcard' },
    { servername: 'a.b.other.test', served: 'DNS:*.example.test', why: 'a wildcard never covers two labels: default' },
    { servername: 'other.test', served: 'DNS:*.example.test', why: 'a wildcard never covers its parent: default' },
    { servername: 'unknown.invalid', served: 'DNS:*.example.test', why: 'an unknown name gets the default' },
    { servername: undefined, served: 'DNS:*.example.test', why: 'no SNI gets the server’s own default' },
  ])('$servername → $served ($why)', async ({ servername, served }) => {
    const socket = await handshake(port, servername === undefined ? {} : { servername });
    expect(servedNames(socket)).toBe(served);
  });

  it('serves the --tls-dir certificate naming *.<zone> as the default when no default is given', async () => {
    const dir = await freshDir();
    await writePair(dir, 'zone-wildcard', wildcard);
    await writePair(dir, 'api', api);
    const dirOnly = await openStore({ zone: 'example.test', dir });
    expect(dirOnly.defaultCredentials()?.cert).toBe(wildcard.cert);
    expect(dirOnly.secureContextFor('unknown.invalid')).toBe(dirOnly.defaultContext());
    expect(dirOnly.secureContextFor('api.example.test')).not.toBe(dirOnly.defaultContext());
  });

  it('takes the *.<zone> pair expiring last as the default when a renewal sits beside the old one', async () => {
    const dir = await freshDir();
    const old = await generateSelfSignedCertificate({ names: ['*.example.test'], validForMs: 10 * DAY_MS });
    const renewal = await generateSelfSignedCertificate({ names: ['*.example.test'], validForMs: 90 * DAY_MS });
    // Alphabetical order puts the old one first, so the choice cannot come from the file names.
    await writePair(dir, 'a-zone-old', old);
    await writePair(dir, 'b-zone-renewal', renewal);
    const store = await openStore({ zone: 'example.test', dir });
    expect(store.secureContextFor('fn.example.test')).toBe(store.defaultContext());
    expect(store.defaultCredentials()?.cert).toBe(renewal.cert);
  });
});

describe('protocol and cipher hardening', () => {
  let store: CertificateStore;
  let server: TestServer;

  beforeAll(async () => {
    store = await CertificateStore.open({ ...(await layout()), zone: 'example.test', watch: false });
    server = await startServer(store, suiteCleanups);
  });
  afterAll(() => store.close());

  it('allows only ECDHE with AES-GCM or ChaCha20-Poly1305 for TLS 1.2', () => {
    const options = store.tlsOptions();
    expect(options).toMatchObject({ minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', honorCipherOrder: true });
    const tls12 = options.ciphers.split(':').filter((c) => !c.startsWith('TLS_'));
    expect(tls12.length).toBeGreaterThan(0);
    for (const cipher of tls12) expect(cipher).toMatch(/^ECDHE-(?:ECDSA|RSA)-(?:AES(?:128|256)-GCM-SHA(?:256|384)|CHACHA20-POLY1305)$/);
  });

  it.each([
    { client: 'TLS 1.3', options: { minVersion: 'TLSv1.3' }, protocol: 'TLSv1.3' },
    { client: 'TLS 1.2 with AES-GCM', options: { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' }, protocol: 'TLSv1.2' },
    { client: 'TLS 1.2 with ChaCha20', options: { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-CHACHA20-POLY1305' }, protocol: 'TLSv1.2' },
  ] as const)('accepts a $client client', async ({ options, protocol }) => {
    const socket = await handshake(server.port, { servername: 'api.example.test', ...options });
    expect(socket.getProtocol()).toBe(protocol);
    if ('ciphers' in options) expect(socket.getCipher().standardName).toMatch(/GCM|CHACHA20/);
    expect(await echo(socket, 'ping')).toBe('ping');
  });

  // Each client is first shown to work against a server with Node's defaults (made permissive
  // where Node's defaults already refuse), so a refusal below is the hardening, not the client.
  it.each([
    {
      client: 'TLS 1.1',
      options: { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' },
      permissive: { minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' },
    },
    { client: 'TLS 1.2 CBC-only (SHA-1)', options: { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA' }, permissive: {} },
    { client: 'TLS 1.2 CBC-only (SHA-384)', options: { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-SHA384' }, permissive: {} },
  ] as const)('refuses a $client client', async ({ options, permissive }) => {
    const control = await startTlsServer({ ...permissive, ...store.defaultCredentials() });
    const accepted = await handshake(control.port, { servername: 'api.example.test', ...options });
    expect(accepted.getProtocol()).toMatch(/^TLSv1\.[12]$/);

    const refusalsBefore = server.refusals.length;
    await expect(handshake(server.port, { servername: 'api.example.test', ...options })).rejects.toMatchObject({
      code: expect.stringMatching(/^ERR_SSL_/),
    });
    await waitFor(() => server.refusals.length > refusalsBefore, 'the server to record the refused handshake');
  });
});

describe('hot reload', () => {
  it('serves a renewed certificate to new connections while open ones keep theirs; a broken one is refused', async () => {
    const paths = await layout();
    const events: CertEvent[] = [];
    const store = await openStore({ ...paths, zone: 'example.test', watch: true, reloadDebounceMs: 50, onEvent: (e) => events.push(e) });
    const { port } = await startServer(store);

    const before = await handshake(port, { servername: 'api.example.test' });
    expect(servedNames(before)).toBe('DNS:api.example.test');

    // A renewal keeps the key and adds a name: only the certificate file is replaced.
    const renewed = await generateSelfSignedCertificate({ names: ['api.example.test', 'api2.example.test'], key: api.key });
    await replaceFile(join(paths.dir, 'api.crt'), renewed.cert);
    await waitFor(() => events.some((e) => e.type === 'loaded' && e.names.includes('api2.example.test')), 'the renewal to load');

    const after = await handshake(port, { servername: 'api.example.test' });
    expect(servedNames(after)).toBe('DNS:api.example.test, DNS:api2.example.test');
    expect(servedNames(before)).toBe('DNS:api.example.test');
    expect(await echo(before, 'still here')).toBe('still here');

    await replaceFile(join(paths.dir, 'api.crt'), '-----BEGIN CERTIFICATE-----\ntruncated');
    await waitFor(() => events.some((e) => e.type === 'file-refused'), 'the broken replacement to be refused');
    expect(events.at(-2)).toEqual({ type: 'file-refused', file: join(paths.dir, 'api.crt'), reason: expect.stringMatching(/not a valid PEM/), keptPrevious: true });
    expect(events.at(-1)).toMatchObject({ type: 'loaded' });

    const afterBroken = await handshake(port, { servername: 'api.example.test' });
    expect(servedNames(afterBroken)).toBe('DNS:api.example.test, DNS:api2.example.test');
  });

  it('one bad file does not hold back the others: it keeps what it served, or serves nothing when it is new', async () => {
    const paths = await layout();
    const events: CertEvent[] = [];
    const store = await openStore({ ...paths, zone: 'example.test', onEvent: (e) => events.push(e) });
    const { port } = await startServer(store);
    const [renewedOther, shop, nextDefault] = await Promise.all([
      generateSelfSignedCertificate({ names: ['*.other.test', 'renewed.other.test'] }),
      generateSelfSignedCertificate({ names: ['shop.example.test'] }),
      generateSelfSignedCertificate({ names: ['*.example.test', 'next.example.test'] }),
    ]);

    // Broken: api's certificate (truncated), a new pair whose key does not match, the default's key.
    await replaceFile(join(paths.dir, 'api.crt'), '-----BEGIN CERTIFICATE-----\ntruncated');
    await writePair(paths.dir, 'broken', { cert: shop.cert, key: other.key });
    await replaceFile(paths.keyFile, 'not a key');
    await replaceFile(paths.certFile, nextDefault.cert);
    // Good: a renewal of *.other.test and a new pair.
    await replaceFile(join(paths.dir, 'other.crt'), renewedOther.cert);
    await replaceFile(join(paths.dir, 'other.key'), renewedOther.key);
    await writePair(paths.dir, 'shop', shop);
    await store.reload();

    const refused = events.filter((e) => e.type === 'file-refused');
    expect(refused).toEqual(
      expect.arrayContaining([
        { type: 'file-refused', file: join(paths.dir, 'api.crt'), reason: expect.stringMatching(/not a valid PEM/), keptPrevious: true },
        { type: 'file-refused', file: join(paths.dir, 'broken.key'), reason: expect.stringMatching(/does not match the certificate/), keptPrevious: false },
        { type: 'file-refused', file: paths.keyFile, reason: expect.stringMatching(/not a PEM private key/), keptPrevious: true },
      ]),
    );
    expect(refused).toHaveLength(3);
    expect(events.at(-1)).toMatchObject({ type: 'loaded' });
    // The good files are served…
    expect(servedNames(await handshake(port, { servername: 'x.other.test' }))).toBe('DNS:*.other.test, DNS:renewed.other.test');
    expect(servedNames(await handshake(port, { servername: 'shop.example.test' }))).toBe('DNS:shop.example.test');
    // …the bad ones keep what they served before (the default: for unknown names and in the store's default pair).
    expect(servedNames(await handshake(port, { servername: 'api.example.test' }))).toBe('DNS:api.example.test');
    expect(servedNames(await handshake(port, { servername: 'unknown.example.test' }))).toBe('DNS:*.example.test');
    expect(store.defaultCredentials()?.cert).toBe(wildcard.cert);

    // Fixed files are picked up by the next reload.
    await replaceFile(paths.keyFile, nextDefault.key);
    await store.reload();
    expect(events.filter((e) => e.type === 'file-refused')).toHaveLength(5); // api and broken, still bad
    expect(store.defaultCredentials()?.cert).toBe(nextDefault.cert);
  });

  it('does not keep a pair whose certificate has expired: its names are no longer served nor counted as covered', async () => {
    const base = await freshDir();
    // Expires in about 2 s (certificate times are whole seconds).
    const soon = await expiringIn(2_000);
    await writePair(base, 'default', wildcard);
    await writePair(base, 'soon', soon);
    const events: CertEvent[] = [];
    const store = await openStore({ dir: base, zone: 'example.test', onEvent: (e) => events.push(e) });
    expect(events.at(-1)).toEqual({ type: 'loaded', names: ['*.example.test', 'soon.example.test'] });
    await waitFor(() => Date.now() > Date.parse(new X509Certificate(soon.cert).validTo), 'the certificate to expire');
    await store.reload();
    expect(events.at(-2)).toEqual({ type: 'file-refused', file: join(base, 'soon.crt'), reason: expect.stringMatching(/expired/), keptPrevious: false });
    expect(events.at(-1)).toEqual({ type: 'loaded', names: ['*.example.test'] });
  });

  it('stops serving a pair when its certificate expires, though no file changes: its names are no longer counted as covered', async () => {
    const base = await freshDir();
    const soon = await expiringIn(2_000);
    await writePair(base, 'default', wildcard);
    await writePair(base, 'soon', soon);
    const events: CertEvent[] = [];
    // No watching: nothing on disk changes, only the clock moves past the certificate's end.
    const store = await openStore({ dir: base, zone: 'example.test', onEvent: (e) => events.push(e) });
    const { port } = await startServer(store);
    expect(servedNames(await handshake(port, { servername: 'soon.example.test' }))).toBe('DNS:soon.example.test');
    await until('a load without the expired pair', () => events.some((e) => e.type === 'loaded' && !e.names.includes('soon.example.test')), 15_000);
    expect(events.at(-1)).toEqual({ type: 'loaded', names: ['*.example.test'] });
    expect(servedNames(await handshake(port, { servername: 'soon.example.test' }))).toBe('DNS:*.example.test');
  });

  it('times the next change even when it passed during the reload that found it (a slow read of a large directory)', async () => {
    // The load judges every file by the clock of its start; the timer was armed after it. A moment
    // passed in between armed nothing: the pair was served expired, and every later expiry untimed.
    const base = await freshDir();
    const soon = await expiringIn(1_500);
    await writePair(base, 'default', wildcard);
    await writePair(base, 'soon', soon);
    const events: CertEvent[] = [];
    let slowReload = false;
    const store = await openStore({
      dir: base,
      zone: 'example.test',
      onEvent: (e) => {
        events.push(e);
        // The reload's load is done, its timer not armed yet: the certificate's end passes here.
        if (slowReload && e.type === 'loaded') {
          slowReload = false;
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2_000);
        }
      },
    });
    slowReload = true;
    await store.reload();
    expect(events.filter((e) => e.type === 'loaded').at(-1)).toEqual({ type: 'loaded', names: ['*.example.test', 'soon.example.test'] });
    await until('a load without the expired pair', () => events.at(-1)?.type === 'loaded' && !(events.at(-1) as { names: string[] }).names.includes('soon.example.test'), 5_000);
    expect(store.secureContextFor('soon.example.test')).toBe(store.secureContextFor('x.example.test'));
  });

  it('serves nothing once every certificate has expired, though no file changes: no name counts as covered, and none is served expired', async () => {
    // Seen in review: the reload that found nothing servable was refused, which kept the expired
    // pair in service, its names counted as covered by files (ACME never ordered them), for good.
    const base = await freshDir();
    const soon = await expiringIn(2_000, ['*.example.test', 'shop.customer.test']);
    await writePair(base, 'default', soon);
    const events: CertEvent[] = [];
    const store = await openStore({ dir: base, zone: 'example.test', onEvent: (e) => events.push(e) });
    expect(events.at(-1)).toEqual({ type: 'loaded', names: ['*.example.test', 'shop.customer.test'] });
    await until('a load after the certificate expired', () => events.some((e) => e.type === 'loaded' && e.names.length === 0), 15_000);
    expect(events.filter((e) => e.type === 'reload-failed')).toEqual([]);
    expect(store.defaultCredentials()).toBeUndefined();
    expect(store.secureContextFor('shop.customer.test')).toBeUndefined();
    expect(store.secureContextFor('api.example.test')).toBeUndefined();
    // A new pair dropped in later is served as usual.
    await writePair(base, 'default', wildcard);
    await store.reload();
    expect(events.at(-1)).toEqual({ type: 'loaded', names: ['*.example.test'] });
    expect(store.defaultCredentials()?.cert).toBe(wildcard.cert);
  });

  it('serves a pair refused as not yet valid once its validity begins, though no file changes', async () => {
    const base = await freshDir();
    // Valid from about 2 s on (whole seconds): a CA whose clock runs a little ahead, or a certificate staged early.
    const early = await generateSelfSignedCertificate({ names: ['early.example.test'], validFrom: new Date(Date.now() + 2_000) });
    await writePair(base, 'default', wildcard);
    await writePair(base, 'early', early);
    const events: CertEvent[] = [];
    const store = await openStore({ dir: base, zone: 'example.test', onEvent: (e) => events.push(e) });
    expect(events).toEqual([
      { type: 'file-refused', file: join(base, 'early.crt'), reason: expect.stringMatching(/not valid before/), keptPrevious: false },
      { type: 'loaded', names: ['*.example.test'] },
    ]);
    await until('a load with the pair', () => events.some((e) => e.type === 'loaded' && e.names.includes('early.example.test')), 15_000);
    const { port } = await startServer(store);
    expect(servedNames(await handshake(port, { servername: 'early.example.test' }))).toBe('DNS:early.example.test');
  });

  it('refuses a reload whole only when nothing would be left to serve', async () => {
    const base = await freshDir();
    const { certFile, keyFile } = await writePair(base, 'default', wildcard);
    const events: CertEvent[] = [];
    const store = await openStore({ dir: base, zone: 'example.test', onEvent: (e) => events.push(e) });
    await rm(certFile);
    await rm(keyFile);
    await store.reload();
    expect(events.at(-1)).toEqual({ type: 'reload-failed', file: base, reason: expect.stringMatching(/no \.crt \+ \.key pairs/) });
    expect(store.defaultCredentials()?.cert).toBe(wildcard.cert);
  });

  it('drops what expires while a reload is refused whole (its files gone mid-update), and serves the rest', async () => {
    // Kept whole, the refused reload went on serving the expired pair to every client naming it
    // (failing each one) instead of the zone's wildcard, and counted its name as covered by a file.
    const base = await freshDir();
    const soon = await expiringIn(2_000);
    const kept = await writePair(base, 'default', wildcard);
    const going = await writePair(base, 'soon', soon);
    const events: CertEvent[] = [];
    const store = await openStore({ dir: base, zone: 'example.test', onEvent: (e) => events.push(e) });
    const { port } = await startServer(store);
    for (const file of [kept.certFile, kept.keyFile, going.certFile, going.keyFile]) await rm(file);
    await store.reload();
    expect(events.at(-1)).toEqual({ type: 'reload-failed', file: base, reason: expect.stringMatching(/no \.crt \+ \.key pairs/) });
    expect(servedNames(await handshake(port, { servername: 'soon.example.test' }))).toBe('DNS:soon.example.test');
    // Its expiry reloads (refused whole again: still no files), and what is left is served.
    await until('a load without the expired pair', () => events.some((e) => e.type === 'loaded' && !e.names.includes('soon.example.test')), 15_000);
    expect(events.slice(-2)).toEqual([
      { type: 'reload-failed', file: base, reason: expect.stringMatching(/no \.crt \+ \.key pairs/) },
      { type: 'loaded', names: ['*.example.test'] },
    ]);
    expect(servedNames(await handshake(port, { servername: 'soon.example.test' }))).toBe('DNS:*.example.test');
    expect(store.defaultCredentials()?.cert).toBe(wildcard.cert);
  });

  it('still drops an expiring certificate at its expiry when a refused reload came at another moment first (a pair becoming valid)', async () => {
    // The reload at the refused pair's start was refused whole too; the moment it had waited for
    // was then past, and no timer was armed for the expiry after it.
    const base = await freshDir();
    const soon = await expiringIn(5_000);
    const early = await generateSelfSignedCertificate({ names: ['early.example.test'], validFrom: new Date(Date.now() + 2_000) });
    const files = [await writePair(base, 'default', wildcard), await writePair(base, 'soon', soon), await writePair(base, 'early', early)];
    const events: CertEvent[] = [];
    const store = await openStore({ dir: base, zone: 'example.test', onEvent: (e) => events.push(e) });
    const { port } = await startServer(store);
    for (const { certFile, keyFile } of files) await Promise.all([rm(certFile), rm(keyFile)]);
    await store.reload();
    expect(events.at(-1)).toMatchObject({ type: 'reload-failed' });
    await until('a load without the expired pair', () => events.some((e) => e.type === 'loaded' && !e.names.includes('soon.example.test')), 20_000);
    expect(servedNames(await handshake(port, { servername: 'soon.example.test' }))).toBe('DNS:*.example.test');
  }, 30_000);

  it('keeps the context of every pair a reload finds unchanged, building one only for what changed', async () => {
    // A context costs OpenSSL over a millisecond of the event loop: rebuilding every pair of a
    // large --tls-dir at each renewal stalled every worker for as long as they took together.
    const paths = await layout();
    const store = await openStore({ ...paths, zone: 'example.test' });
    const apiBefore = store.secureContextFor('api.example.test');
    const otherBefore = store.secureContextFor('shop.other.test');
    const defaultBefore = store.defaultContext();
    expect(apiBefore).toBeDefined();
    expect(otherBefore).toBeDefined();
    await writePair(paths.dir, 'api', await generateSelfSignedCertificate({ names: ['api.example.test'] }));
    await store.reload();
    expect(store.secureContextFor('api.example.test')).not.toBe(apiBefore);
    expect(store.secureContextFor('shop.other.test')).toBe(otherBefore);
    expect(store.defaultContext()).toBe(defaultBefore);
  });

  it('picks up a replaced default certificate and a pair added to --tls-dir', async () => {
    const paths = await layout();
    const events: CertEvent[] = [];
    const store = await openStore({ ...paths, zone: 'example.test', watch: true, reloadDebounceMs: 50, onEvent: (e) => events.push(e) });
    const { port } = await startServer(store);

    const next = await generateSelfSignedCertificate({ names: ['*.example.test', 'edge.example.test'] });
    await replaceFile(paths.keyFile, next.key);
    await replaceFile(paths.certFile, next.cert);
    await writePair(paths.dir, 'shop', await generateSelfSignedCertificate({ names: ['shop.example.test'] }));
    await waitFor(
      () => events.some((e) => e.type === 'loaded' && e.names.includes('edge.example.test') && e.names.includes('shop.example.test')),
      'the new default and the new pair to load',
    );
    expect(servedNames(await handshake(port, { servername: 'unknown.invalid' }))).toBe('DNS:*.example.test, DNS:edge.example.test');
    expect(servedNames(await handshake(port, { servername: 'shop.example.test' }))).toBe('DNS:shop.example.test');
  });

  it('follows a Kubernetes Secret volume update: the files are symlinks through ..data, which is swapped', async () => {
    // The kubelet's AtomicWriter: a new timestamped directory, a `..data_tmp` symlink to it renamed
    // over `..data`, the old directory removed. The visible `<name>.crt` links never change.
    const dir = await freshDir();
    await mkdir(join(dir, '..v1'));
    await writePair(join(dir, '..v1'), 'wildcard', wildcard);
    await symlink('..v1', join(dir, '..data'));
    await symlink('..data/wildcard.crt', join(dir, 'wildcard.crt'));
    await symlink('..data/wildcard.key', join(dir, 'wildcard.key'));
    const events: CertEvent[] = [];
    const store = await openStore({ zone: 'example.test', dir, watch: true, reloadDebounceMs: 50, onEvent: (e) => events.push(e) });
    expect(store.defaultCredentials()?.cert).toBe(wildcard.cert);

    const renewed = await generateSelfSignedCertificate({ names: ['*.example.test', 'renewed.example.test'] });
    await mkdir(join(dir, '..v2'));
    await writePair(join(dir, '..v2'), 'wildcard', renewed);
    await symlink('..v2', join(dir, '..data_tmp'));
    await rename(join(dir, '..data_tmp'), join(dir, '..data'));
    await rm(join(dir, '..v1'), { recursive: true });
    await waitFor(() => events.some((e) => e.type === 'loaded' && e.names.includes('renewed.example.test')), 'the swapped Secret to load');
    expect(store.defaultCredentials()?.cert).toBe(renewed.cert);
  });

  it('follows a --tls-dir that is itself a symlink swapped to another directory, every time', async () => {
    // `ln -s releases/v2 live.tmp && mv -T live.tmp live`: nothing changes inside the directory the
    // watch was opened on (it follows the old target); only the parent sees the swap.
    const base = await freshDir();
    const releases = [
      await generateSelfSignedCertificate({ names: ['*.example.test', 'v1.example.test'] }),
      await generateSelfSignedCertificate({ names: ['*.example.test', 'v2.example.test'] }),
      await generateSelfSignedCertificate({ names: ['*.example.test', 'v3.example.test'] }),
    ];
    for (const [i, pem] of releases.entries()) {
      await mkdir(join(base, `v${i + 1}`));
      await writePair(join(base, `v${i + 1}`), 'wildcard', pem);
    }
    await symlink('v1', join(base, 'live'));
    const events: CertEvent[] = [];
    const store = await openStore({ zone: 'example.test', dir: join(base, 'live'), watch: true, reloadDebounceMs: 50, onEvent: (e) => events.push(e) });
    for (const version of [2, 3]) {
      await symlink(`v${version}`, join(base, 'live.tmp'));
      await rename(join(base, 'live.tmp'), join(base, 'live'));
      await waitFor(() => events.some((e) => e.type === 'loaded' && e.names.includes(`v${version}.example.test`)), `release v${version} to load`);
    }
    expect(store.defaultCredentials()?.cert).toBe(releases[2]!.cert);
  });

  it('follows a default pair symlinked to files in another directory when those are replaced', async () => {
    // `--tls-cert /etc/edge/tls.crt` → a file another tool renews by rename in its own directory:
    // nothing changes where the watch is, so only the files' identity (checked every pollMs) tells.
    const shared = await freshDir();
    const own = await freshDir();
    await writePair(shared, 'live', wildcard);
    await symlink(join(shared, 'live.crt'), join(own, 'tls.crt'));
    await symlink(join(shared, 'live.key'), join(own, 'tls.key'));
    const events: CertEvent[] = [];
    const store = await openStore({ certFile: join(own, 'tls.crt'), keyFile: join(own, 'tls.key'), zone: 'example.test', watch: true, reloadDebounceMs: 50, pollMs: 50, onEvent: (e) => events.push(e) });

    const renewed = await generateSelfSignedCertificate({ names: ['*.example.test', 'renewed.example.test'] });
    await replaceFile(join(shared, 'live.key'), renewed.key);
    await replaceFile(join(shared, 'live.crt'), renewed.cert);
    await waitFor(() => store.defaultCredentials()?.cert === renewed.cert, 'the renewed target to load');
    // A poll that saw the second file change while the first reload ran reloads once more (seen on
    // a loaded host): counted from after that. Once taken, unchanged files are not read again at every check.
    await new Promise((r) => setTimeout(r, 200));
    const loads = events.filter((e) => e.type === 'loaded').length;
    await new Promise((r) => setTimeout(r, 300));
    expect(events.filter((e) => e.type === 'loaded')).toHaveLength(loads);
  });

  it('follows a --tls-dir pair symlinked to files in another directory when those are replaced there, every time', async () => {
    // certbot's layout: `<name>.crt` here → live/<name>/fullchain.pem → ../../archive/<name>/fullchainN.pem;
    // a renewal writes the next archive files and re-points the live links. Nothing changes in --tls-dir.
    const dir = await freshDir();
    const letsencrypt = await freshDir();
    await writePair(dir, 'default', wildcard);
    const live = join(letsencrypt, 'live', 'shop');
    const archive = join(letsencrypt, 'archive', 'shop');
    await mkdir(live, { recursive: true });
    await mkdir(archive, { recursive: true });
    const issue = async (version: number) => {
      const pem = await generateSelfSignedCertificate({ names: [`v${version}.shop.example.test`] });
      await writeFile(join(archive, `fullchain${version}.pem`), pem.cert);
      await writeFile(join(archive, `privkey${version}.pem`), pem.key);
      for (const [link, file] of [['privkey.pem', `privkey${version}.pem`], ['fullchain.pem', `fullchain${version}.pem`]] as const) {
        await symlink(`../../archive/shop/${file}`, join(live, `${link}.tmp`));
        await rename(join(live, `${link}.tmp`), join(live, link));
      }
    };
    await issue(1);
    await symlink(join(live, 'fullchain.pem'), join(dir, 'shop.crt'));
    await symlink(join(live, 'privkey.pem'), join(dir, 'shop.key'));
    const events: CertEvent[] = [];
    const store = await openStore({ zone: 'example.test', dir, watch: true, reloadDebounceMs: 50, onEvent: (e) => events.push(e) });
    expect(events.at(-1)).toEqual({ type: 'loaded', names: ['*.example.test', 'v1.shop.example.test'] });
    for (const version of [2, 3]) {
      await issue(version);
      await waitFor(() => events.some((e) => e.type === 'loaded' && e.names.includes(`v${version}.shop.example.test`)), `renewal v${version} to load`);
    }
    expect(store.secureContextFor('v3.shop.example.test')).not.toBe(store.defaultContext());
  });

  it('stops reloading once closed', async () => {
    const paths = await layout();
    const events: CertEvent[] = [];
    const store = await openStore({ ...paths, zone: 'example.test', watch: true, reloadDebounceMs: 20, onEvent: (e) => events.push(e) });
    store.close();
    await replaceFile(join(paths.dir, 'api.crt'), 'garbage');
    await new Promise((r) => setTimeout(r, 200));
    expect(events).toHaveLength(1);
  });
});

describe('certificateMatchesHost', () => {
  it.each([
    [['*.example.com'], 'a.example.com', true],
    [['*.example.com'], 'a.b.example.com', false],
    [['*.example.com'], 'example.com', false],
    [['*.example.com'], '.example.com', false],
    [['*.example.com'], 'A.EXAMPLE.com.', true],
    [['*.Example.COM.'], 'a.example.com', true],
    [['*.example.com'], 'a.example.com:8443', true],
    [['*.example.com'], 'a.example.com.evil.test', false],
    [['*.example.com'], '', false],
    [['api.example.com'], 'api.example.com', true],
    [['api.example.com'], 'API.Example.Com', true],
    [['api.example.com'], 'www.example.com', false],
    [['example.com', '*.example.com'], 'example.com', true],
    [['f*.example.com'], 'foo.example.com', false],
    [['*.com'], 'com', false],
    [['*.example.com'], '[::1]:443', false],
    [[], 'a.example.com', false],
  ])('%j covers %j: %s', (names, host, expected) => {
    expect(certificateMatchesHost(names, host)).toBe(expected);
  });
});

describe('dnsNamesFromSubjectAltName', () => {
  it.each([
    ['DNS:a.example.com, IP Address:127.0.0.1, DNS:*.B.example.com', ['a.example.com', '*.b.example.com']],
    ['DNS:"a,b.example.com", DNS:c.example.com', ['a,b.example.com', 'c.example.com']],
    ['IP Address:::1, URI:https://example.com/', []],
    [undefined, []],
  ])('%j → %j', (subjectAltName, names) => {
    expect(dnsNamesFromSubjectAltName(subjectAltName)).toEqual(names);
  });
});
