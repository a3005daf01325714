import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import type { Dispatcher } from 'undici';
import { UPSTREAM_SERVERNAME, UpstreamPools, type OrchestratorDispatchOptions } from '../../src/proxy/pools.js';
import { generateSelfSignedCertificate } from '../../src/ingress/certificates/dev-certificate.js';
import type { RegionConfig } from '../../src/core/types.js';
import { agentFor, get as getThroughRouter } from '../support/clients.js';
import { TestOrigin } from '../support/origin.js';
import { startTestRouter } from '../support/router.js';
import { until } from '../support/until.js';

/** One GET through `dispatcher` with the given Host header: the status and body, or the error's message. */
function get(dispatcher: Dispatcher, host: string): Promise<string> {
  const options: OrchestratorDispatchOptions = { method: 'GET', path: '/', headers: { host }, servername: UPSTREAM_SERVERNAME };
  return dispatcher.request(options).then(
    async (res) => `${res.statusCode} ${await res.body.text()}`,
    (err: Error) => `error: ${err.message}`,
  );
}

describe('UpstreamPools: orchestrators over TLS', () => {
  const closers: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  /**
   * An https orchestrator with a certificate for `names` only (self-signed: its own CA); it answers
   * with the SNI it was sent, the Host, and the client certificate's name when it requires one
   * (`clientCa`).
   */
  async function tlsOrchestrator(names: string[], clientCa?: string): Promise<{ port: number; cert: string; handshakes: () => number }> {
    const pem = await generateSelfSignedCertificate({ names });
    const options = { cert: pem.cert, key: pem.key, ...(clientCa === undefined ? {} : { ca: clientCa, requestCert: true, rejectUnauthorized: true }) };
    const server: Server = createServer(options, (req, res) => {
      const socket = req.socket as TLSSocket;
      const peer = clientCa === undefined ? '' : ` client=${socket.getPeerX509Certificate()?.subjectAltName ?? '-'}`;
      res.end(`sni=${socket.servername || '-'} host=${req.headers.host}${peer}`);
    });
    let handshakes = 0;
    server.on('secureConnection', () => handshakes++);
    server.on('tlsClientError', () => undefined);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    closers.push(() => {
      server.closeAllConnections();
      server.close();
    });
    return { port: (server.address() as { port: number }).port, cert: pem.cert, handshakes: () => handshakes };
  }

  const region = (orchestrators: string[]) => ({ id: 'fra', orchestrators }) as unknown as RegionConfig;

  it("names the orchestrator, not the function, in its TLS handshake, and keeps one connection whatever the functions' names", async () => {
    // The router forwards each function's public name as Host. undici used it as the server name:
    // the orchestrator's certificate was checked against the function's name (and failed), and a
    // change of function meant a new connection.
    const orchestrator = await tlsOrchestrator(['localhost']);
    const pools = new UpstreamPools([region([`https://localhost:${orchestrator.port}`])], { connections: 1, tls: { ca: orchestrator.cert } });
    closers.push(() => pools.destroy());
    const fra = pools.get('fra')!;
    const answers = [];
    for (const host of ['a-org1.telnyxcompute.com', 'b-org1.telnyxcompute.com', 'a-org1.telnyxcompute.com']) answers.push(await get(fra, host));
    expect(answers).toEqual(['200 sni=localhost host=a-org1.telnyxcompute.com', '200 sni=localhost host=b-org1.telnyxcompute.com', '200 sni=localhost host=a-org1.telnyxcompute.com']);
    expect(orchestrator.handshakes()).toBe(1);
  });

  it('checks each orchestrator of a region against its own name, and refuses one whose certificate does not carry it', async () => {
    const good = await tlsOrchestrator(['localhost']);
    const wrong = await tlsOrchestrator(['elsewhere.example']);
    const goodPools = new UpstreamPools([region([`https://localhost:${good.port}`, `https://127.0.0.1:${good.port}`])], { tls: { ca: good.cert } });
    const wrongPools = new UpstreamPools([region([`https://localhost:${wrong.port}`])], { tls: { ca: wrong.cert } });
    closers.push(() => goodPools.destroy(), () => wrongPools.destroy());
    expect(await get(wrongPools.get('fra')!, 'a-org1.telnyxcompute.com')).toMatch(/^error: .*(altnames|Hostname\/IP does not match)/);
    // An orchestrator listed by IP address is sent no SNI (RFC 6066), and its certificate must carry the address.
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add(await get(goodPools.get('fra')!, 'a-org1.telnyxcompute.com'));
    expect([...seen].sort()).toEqual(['200 sni=localhost host=a-org1.telnyxcompute.com', 'error: Hostname/IP does not match certificate\'s altnames: IP: 127.0.0.1 is not in the cert\'s list: ']);
  });

  it('presents its client certificate to an orchestrator that requires one, and is refused without it', async () => {
    const routerPem = await generateSelfSignedCertificate({ names: ['router.internal'], clientAuth: true });
    const orchestrator = await tlsOrchestrator(['localhost'], routerPem.cert);
    const withCert = new UpstreamPools([region([`https://localhost:${orchestrator.port}`])], { tls: { ca: orchestrator.cert, cert: routerPem.cert, key: routerPem.key } });
    const without = new UpstreamPools([region([`https://localhost:${orchestrator.port}`])], { tls: { ca: orchestrator.cert } });
    closers.push(() => withCert.destroy(), () => without.destroy());
    expect(await get(withCert.get('fra')!, 'a-org1.telnyxcompute.com')).toBe('200 sni=localhost host=a-org1.telnyxcompute.com client=DNS:router.internal');
    expect(await get(without.get('fra')!, 'a-org1.telnyxcompute.com')).toMatch(/^error: /);
  });
});

describe('the router with https orchestrators (--orchestrator-ca, --orchestrator-client-cert)', () => {
  const closers: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  it('probes and forwards over mutual TLS, checking the orchestrator by its own name, on one connection for every function', async () => {
    const [pem, routerPem] = await Promise.all([generateSelfSignedCertificate({ names: ['localhost'] }), generateSelfSignedCertificate({ names: ['router.internal'], clientAuth: true })]);
    // The orchestrator requires the router's client certificate, of probes too.
    const fra = await TestOrigin.start('fra', 0, { cert: pem.cert, key: pem.key, clientCa: routerPem.cert });
    closers.push(() => fra.kill());
    const sockets = new Map<object, number>();
    fra.handler = (req, res) => {
      const socket = req.socket as TLSSocket;
      if (!sockets.has(socket)) sockets.set(socket, sockets.size + 1);
      const client = socket.getPeerX509Certificate()?.subjectAltName ?? '-';
      res.end(`sni=${socket.servername || '-'} host=${req.headers.host} fn=${req.headers['x-edge-fn']} client=${client} connection=${sockets.get(socket)}`);
    };
    const dir = await mkdtemp(join(tmpdir(), 'orchestrator-tls-'));
    const [caFile, certFile, keyFile] = [join(dir, 'ca.pem'), join(dir, 'router.crt'), join(dir, 'router.key')];
    await Promise.all([writeFile(caFile, pem.cert), writeFile(certFile, routerPem.cert), writeFile(keyFile, routerPem.key)]);
    // The router starts once its probes have found fra up.
    const router = await startTestRouter({ fra: fra.url }, ['--orchestrator-ca', caFile, '--orchestrator-client-cert', certFile, '--orchestrator-client-key', keyFile]);
    closers.push(() => router.close());
    const agent = agentFor(router.httpsPort);
    closers.push(() => agent.close());
    const bodies = [];
    for (const host of ['alpha-org1.telnyxcompute.com', 'beta-org1.telnyxcompute.com', 'alpha-org1.telnyxcompute.com']) {
      const res = await getThroughRouter(agent, router.httpsPort, '/', { host });
      expect(res.status).toBe(200);
      bodies.push(res.body);
    }
    const port = router.httpsPort;
    expect(bodies).toEqual([
      `sni=localhost host=alpha-org1.telnyxcompute.com:${port} fn=alpha client=DNS:router.internal connection=1`,
      `sni=localhost host=beta-org1.telnyxcompute.com:${port} fn=beta client=DNS:router.internal connection=1`,
      `sni=localhost host=alpha-org1.telnyxcompute.com:${port} fn=alpha client=DNS:router.internal connection=1`,
    ]);
  });
});

describe('a rotated client certificate', () => {
  const closers: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  it('is taken from its files while the router runs: new connections present it, and a half-written pair is refused until whole', async () => {
    const [pem, first, second] = await Promise.all([
      generateSelfSignedCertificate({ names: ['localhost'] }),
      generateSelfSignedCertificate({ names: ['router-first.internal'], clientAuth: true }),
      generateSelfSignedCertificate({ names: ['router-second.internal'], clientAuth: true }),
    ]);
    const fra = await TestOrigin.start('fra', 0, { cert: pem.cert, key: pem.key, clientCa: `${first.cert}\n${second.cert}` });
    closers.push(() => fra.kill());
    fra.handler = (req, res) => {
      res.setHeader('connection', 'close'); // every request on a new connection, with the certificate of the moment
      res.end(`client=${(req.socket as TLSSocket).getPeerX509Certificate()?.subjectAltName ?? '-'}`);
    };
    const dir = await mkdtemp(join(tmpdir(), 'orchestrator-rotation-'));
    const [caFile, certFile, keyFile] = [join(dir, 'ca.pem'), join(dir, 'router.crt'), join(dir, 'router.key')];
    await Promise.all([writeFile(caFile, pem.cert), writeFile(certFile, first.cert), writeFile(keyFile, first.key)]);
    const router = await startTestRouter({ fra: fra.url }, ['--orchestrator-ca', caFile, '--orchestrator-client-cert', certFile, '--orchestrator-client-key', keyFile], {}, undefined, (resolved) => ({
      ...resolved,
      config: { ...resolved.config, orchestratorTlsReloadMs: 50 },
    }));
    closers.push(() => router.close());
    const agent = agentFor(router.httpsPort);
    closers.push(() => agent.close());
    const ask = async () => (await getThroughRouter(agent, router.httpsPort, '/', { host: 'alpha-org1.telnyxcompute.com' })).body;
    expect(await ask()).toBe('client=DNS:router-first.internal');
    // Each file is replaced whole (written aside, then renamed over), as rotation tools do: a
    // plain write truncates first, and a reload every 50 ms can read the empty file in between.
    const replace = async (file: string, text: string) => {
      await writeFile(`${file}.new`, text);
      await rename(`${file}.new`, file);
    };
    // The rotation writes the certificate first: for a moment it does not match the key.
    await replace(certFile, second.cert);
    await until('the half-written pair refused', () => router.logs.some((l) => l.event === 'orchestrator_tls_refused'));
    expect(String(router.logs.find((l) => l.event === 'orchestrator_tls_refused')?.reason)).toMatch(/^--orchestrator-client-key: .*router\.key: this key does not belong to the certificate in .*router\.crt$/);
    expect(await ask()).toBe('client=DNS:router-first.internal');
    await replace(keyFile, second.key);
    await until('the new pair taken', () => router.logs.some((l) => l.event === 'orchestrator_tls_reloaded'));
    expect(await ask()).toBe('client=DNS:router-second.internal');
    // Never the key in the log.
    expect(JSON.stringify(router.logs)).not.toContain('PRIVATE KEY');
  });
});

describe('--orchestrator-ca adds to what Node trusts', () => {
  const closers: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
  });

  /**
   * In a child process whose Node trusts `systemPem` (NODE_EXTRA_CA_CERTS: the one way to add to
   * Node's default store), one request through the pools and one probe to `url`, with the TLS
   * settings resolved from `--orchestrator-ca privateCa` (or none).
   */
  function throughChild(systemPem: string, url: string, privateCa: string | null): Promise<{ pool: string; probe: string }> {
    const child = `
      import { resolveOrchestratorTls } from './dist/src/config/orchestrator-tls.js';
      import { UpstreamPools, UPSTREAM_SERVERNAME } from './dist/src/proxy/pools.js';
      import { Prober } from './dist/src/registry/prober.js';
      const [url, privateCa] = process.argv.slice(1);
      const tls = await resolveOrchestratorTls(privateCa === '-' ? {} : { ca: { value: privateCa, source: '--orchestrator-ca' } });
      const options = tls === null ? {} : { tls };
      const regions = [{ id: 'fra', orchestrators: [url] }];
      const pools = new UpstreamPools(regions, options);
      const pool = await pools.get('fra').request({ method: 'GET', path: '/', headers: { host: 'a-org1.telnyxcompute.com' }, servername: UPSTREAM_SERVERNAME }).then(
        async (res) => res.statusCode + ' ' + (await res.body.text()),
        (err) => 'error: ' + err.message,
      );
      await pools.destroy();
      const probe = await new Promise((resolve) => {
        const prober = new Prober({ regions, healthyThreshold: 1, unhealthyThreshold: 1, ...options, onHeartbeat: (hb) => { void prober.stop(); resolve(hb.status); } });
        prober.start();
      });
      console.log(JSON.stringify({ pool, probe }));
    `;
    return new Promise((resolve, reject) => {
      execFile(process.execPath, ['--input-type=module', '-e', child, url, privateCa ?? '-'], { env: { ...process.env, NODE_EXTRA_CA_CERTS: systemPem }, cwd: process.cwd() }, (err, stdout, stderr) => {
        if (err) return reject(new Error(`${err.message}\n${stderr}`));
        resolve(JSON.parse(stdout.trim().split('\n').pop()!) as { pool: string; probe: string });
      });
    });
  }

  it('still trusts an orchestrator whose certificate Node trusts by default when a private CA is given', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'orchestrator-ca-defaults-'));
    const [trusted, privateCa] = await Promise.all([generateSelfSignedCertificate({ names: ['localhost'] }), generateSelfSignedCertificate({ names: ['private-ca.internal'] })]);
    await Promise.all([writeFile(join(dir, 'system.pem'), trusted.cert), writeFile(join(dir, 'private.pem'), privateCa.cert)]);
    const orchestrator = await TestOrigin.start('fra', 0, { cert: trusted.cert, key: trusted.key });
    closers.push(() => orchestrator.kill());
    orchestrator.handler = (_req, res) => res.end('ok');
    const url = orchestrator.url;
    expect(await throughChild(join(dir, 'system.pem'), url, null)).toEqual({ pool: '200 ok', probe: 'up' });
    // Given as it was, the private CA replaced Node's whole store: 'self-signed certificate', region down.
    expect(await throughChild(join(dir, 'system.pem'), url, join(dir, 'private.pem'))).toEqual({ pool: '200 ok', probe: 'up' });
  });
});
