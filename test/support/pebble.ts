/**
 * A private ACME CA for tests: Let's Encrypt's test server `pebble` (Debian package `pebble`) on
 * free loopback ports, with `pebble-challtestsrv` as its DNS server answering every name with
 * 127.0.0.1, so the CA's HTTP-01 check of any name reaches `httpPort` on this machine. Pebble's
 * root changes with every start; `rootPem()` fetches it for verifying what it issued.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSelfSignedCertificate } from '../../src/ingress/certificates/dev-certificate.js';
import { freePort } from './redis-server.js';
import { missingProgram } from './system-program.js';
import { waitForPort } from './port.js';

export const PEBBLE_MISSING = missingProgram('pebble', 'apt-get install -y pebble');

export class TestPebble {
  private constructor(
    private readonly children: ChildProcess[],
    private readonly dir: string,
    readonly port: number,
    private readonly managementPort: number,
    /** The CA certificate for pebble's own HTTPS listener (not the root it issues under). */
    readonly listenerCaPem: string,
  ) {}

  get directoryUrl(): string {
    return `https://127.0.0.1:${this.port}/dir`;
  }

  /**
   * `httpPort`: where the CA fetches HTTP-01 answers (every name resolves to 127.0.0.1).
   * `eab`: make accounts require this External Account Binding (key id → base64url HMAC key).
   */
  static async start(httpPort: number, eab?: { readonly kid: string; readonly hmacKey: string }): Promise<TestPebble> {
    const dir = await mkdtemp(join(tmpdir(), 'edge-router-pebble-'));
    const listener = await generateSelfSignedCertificate({ names: ['127.0.0.1', 'localhost'] });
    await writeFile(join(dir, 'cert.pem'), listener.cert);
    await writeFile(join(dir, 'key.pem'), listener.key);
    const [port, managementPort, dnsPort, challengeManagementPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    await writeFile(
      join(dir, 'pebble.json'),
      JSON.stringify({
        pebble: {
          listenAddress: `127.0.0.1:${port}`,
          managementListenAddress: `127.0.0.1:${managementPort}`,
          certificate: join(dir, 'cert.pem'),
          privateKey: join(dir, 'key.pem'),
          httpPort,
          tlsPort: await freePort(),
          ocspResponderURL: '',
          externalAccountBindingRequired: eab !== undefined,
          ...(eab === undefined ? {} : { externalAccountMACKeys: { [eab.kid]: eab.hmacKey } }),
        },
      }),
    );
    const children: ChildProcess[] = [];
    const dns = spawn(
      'pebble-challtestsrv',
      ['-defaultIPv4', '127.0.0.1', '-defaultIPv6', '', '-dns01', `127.0.0.1:${dnsPort}`, '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', `127.0.0.1:${challengeManagementPort}`],
      { stdio: 'ignore' },
    );
    children.push(dns);
    const pebble = new TestPebble(children, dir, port, managementPort, listener.cert);
    try {
      await waitForPort(challengeManagementPort, true);
      // No sleeps before validating, no nonces refused at random: the test is about the router.
      const ca = spawn('pebble', ['-config', join(dir, 'pebble.json'), '-dnsserver', `127.0.0.1:${dnsPort}`], {
        stdio: 'ignore',
        env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0' },
      });
      children.push(ca);
      await waitForPort(port, true);
      await waitForPort(managementPort, true);
    } catch (err) {
      await pebble.stop();
      throw err;
    }
    return pebble;
  }

  /** The root pebble issues under (PEM), for verifying an issued chain. */
  rootPem(): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = request(`https://127.0.0.1:${this.managementPort}/roots/0`, { agent: new Agent({ ca: this.listenerCaPem }) }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`pebble roots: ${res.statusCode}`))));
      });
      req.on('error', reject);
      req.end();
    });
  }

  async stop(): Promise<void> {
    for (const child of this.children.splice(0)) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}
