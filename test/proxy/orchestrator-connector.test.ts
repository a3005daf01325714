import { once } from 'node:events';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { Pool } from 'undici';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { generateSelfSignedCertificate } from '../../src/ingress/certificates/dev-certificate.js';
import { OrchestratorConnector, reloadOrchestratorTls } from '../../src/proxy/orchestrator-connector.js';
import type { OrchestratorTls } from '../../src/core/types.js';
import { until } from '../support/until.js';

describe('reloadOrchestratorTls', () => {
  const stops: Array<() => void> = [];
  afterEach(() => {
    for (const stop of stops.splice(0)) stop();
  });

  /** A reload every 10 ms whose reads `next` answers; the events it reported. */
  function reloading(connector: OrchestratorConnector, next: () => Promise<OrchestratorTls | null>) {
    const events: string[] = [];
    let reads = 0;
    const reload = reloadOrchestratorTls(connector, {
      everyMs: 10,
      read: () => {
        reads++;
        return next();
      },
      onEvent: (e) => events.push(e.type === 'reloaded' ? 'reloaded' : `refused: ${e.reason}`),
    });
    stops.push(reload.stop);
    return { events, reads: () => reads };
  }

  it('hands changed settings to the connector, once per change', async () => {
    const connector = new OrchestratorConnector(1_000, { ca: 'A' });
    let files: OrchestratorTls = { ca: 'A' };
    const watch = reloading(connector, async () => files);
    await until('a few reads', () => watch.reads() >= 3);
    expect(watch.events).toEqual([]);
    files = { ca: 'A', cert: 'client B', key: 'key B' };
    await until('taken', () => connector.tls?.cert === 'client B');
    await until('more reads', () => watch.reads() >= 8);
    expect(watch.events).toEqual(['reloaded']);
  });

  it('keeps the settings in use when the files cannot be used, and says so once per reason', async () => {
    const connector = new OrchestratorConnector(1_000, { cert: 'client A', key: 'key A' });
    let failure: string | null = '--orchestrator-client-key: /etc/k.pem: this key does not belong to the certificate in /etc/c.pem';
    const watch = reloading(connector, async () => {
      if (failure !== null) throw new Error(failure);
      return { cert: 'client B', key: 'key B' };
    });
    await until('several reads', () => watch.reads() >= 5);
    expect(connector.tls).toEqual({ cert: 'client A', key: 'key A' });
    expect(watch.events).toEqual([`refused: ${failure}`]);
    failure = null; // the second file has been written
    await until('taken', () => connector.tls?.cert === 'client B');
    expect(watch.events).toEqual([`refused: --orchestrator-client-key: /etc/k.pem: this key does not belong to the certificate in /etc/c.pem`, 'reloaded']);
  });
});

describe('OrchestratorConnector: the cost of a connection', () => {
  const closers: Array<() => Promise<unknown> | void> = [];
  afterEach(async () => {
    vi.restoreAllMocks();
    for (const close of closers.splice(0).reverse()) await close();
  });

  // --orchestrator-ca now carries Node's ~145 bundled roots too (config/orchestrator-tls.ts): a
  // secure context built from them costs ~20 ms of the event loop. Built per connection (node:tls
  // does so for every tls.connect given `ca` rather than `secureContext`), each new orchestrator
  // connection stalls every request the process serves.
  it('builds the secure context once per settings, not once per connection', async () => {
    const pem = await generateSelfSignedCertificate({ names: ['localhost'] });
    const server = createServer({ cert: pem.cert, key: pem.key }, (_req, res) => {
      res.setHeader('connection', 'close'); // each request on a new connection
      res.end('ok');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    closers.push(() => new Promise((r) => server.close(r)));
    const port = (server.address() as AddressInfo).port;
    const connector = new OrchestratorConnector(5_000, { ca: [...tls.rootCertificates, pem.cert].join('\n') });
    const pool = new Pool(`https://localhost:${port}`, { connect: connector.connect });
    closers.push(() => pool.close());
    const built = vi.spyOn(tls, 'createSecureContext');
    for (let i = 0; i < 5; i++) {
      const res = await pool.request({ method: 'GET', path: '/' });
      expect(await res.body.text()).toBe('ok');
    }
    expect(built.mock.calls.length).toBeLessThanOrEqual(1);
  });
});
