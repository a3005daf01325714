/**
 * `rediss://` through Redis Sentinel: the URL asks for TLS, and its password must never cross the
 * network in the clear. The "master" here is a listener that records what it is sent; a real
 * Sentinel (on loopback, a private process) names it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisRegistry } from '../../src/registry/redis-registry.js';
import { REGIONS } from '../support/regions.js';
import { freePort } from '../support/redis-server.js';
import { waitForPort as portUp } from '../support/port.js';
import { REDIS_MISSING } from '../support/system-program.js';
import { until } from '../support/until.js';

const PASSWORD = 's3cret-Pa55word';

describe.skipIf(REDIS_MISSING)('a rediss:// URL with Redis Sentinel', () => {
  let sentinel: ChildProcess | undefined;
  let master: Server | undefined;
  let sentinelPort = 0;
  /** What each connection to the "master" sent, in order. */
  const received: Buffer[][] = [];

  beforeAll(async () => {
    master = createServer((socket) => {
      const chunks: Buffer[] = [];
      received.push(chunks);
      socket.on('data', (d: Buffer) => chunks.push(d));
      socket.on('error', () => undefined);
    });
    master.listen(0, '127.0.0.1');
    await once(master, 'listening');
    const masterPort = (master.address() as { port: number }).port;
    sentinelPort = await freePort();
    const dir = await mkdtemp(join(tmpdir(), 'edge-sentinel-tls-'));
    const conf = join(dir, 'sentinel.conf');
    await writeFile(conf, [`port ${sentinelPort}`, 'bind 127.0.0.1', `dir ${dir}`, `sentinel monitor mymaster 127.0.0.1 ${masterPort} 1`, ''].join('\n'));
    sentinel = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    await portUp(sentinelPort, true);
  });

  afterAll(async () => {
    if (sentinel !== undefined && sentinel.exitCode === null && sentinel.signalCode === null) {
      const exited = once(sentinel, 'exit');
      sentinel.kill('SIGKILL');
      await exited;
    }
    master?.close();
  });

  it('connects to the master over TLS: the password never goes out in the clear', async () => {
    const registry = new RedisRegistry({
      url: `rediss://:${PASSWORD}@localhost`,
      sentinel: { sentinels: [{ host: '127.0.0.1', port: sentinelPort }], name: 'mymaster' },
      regions: REGIONS.map((r) => r.id),
    });
    try {
      // The Sentinel's own connections open with a plain command; the registry's with TLS or AUTH.
      const fromRegistry = () => received.find((c) => c.length > 0 && (c[0]![0] === 0x16 || /auth/i.test(Buffer.concat(c).toString('latin1'))));
      await until('the registry reached the master the Sentinel named', () => fromRegistry() !== undefined, 10_000);
      await new Promise((resolve) => setTimeout(resolve, 200)); // whatever else it sends at once
      const everything = Buffer.concat(received.flat()).toString('latin1');
      // Before: a plain connection that began `*3 $4 auth $0 $15 s3cret-Pa55word`.
      expect(everything).not.toContain(PASSWORD);
      expect(fromRegistry()![0]![0]).toBe(0x16); // a TLS handshake record
    } finally {
      await registry.close();
    }
  }, 20_000);
});
