/**
 * Sentinel failovers where the old master does not die: frozen (SIGSTOP: what a stalled VM or a
 * partition looks like to a client), or cut off from the Sentinels only, still answering its
 * clients (split brain). ioredis follows a failover by itself only when the connection to the old
 * master closes; in both cases it does not.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { RedisRegistry } from '../../src/registry/redis-registry.js';
import { REGIONS } from '../support/regions.js';
import { freePort } from '../support/redis-server.js';
import { REDIS_MISSING } from '../support/system-program.js';
import { TcpRelay } from '../support/tcp-relay.js';
import { untilDefined } from '../support/until.js';

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** One command to a server on loopback, on a connection of its own. */
async function ask(port: number, ...args: string[]): Promise<unknown> {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null });
  client.on('error', () => undefined); // a refused probe is an answer ("not yet"), not a failure
  try {
    await client.connect();
    return await client.call(args[0]!, ...args.slice(1));
  } finally {
    client.disconnect();
  }
}

function start(args: string[]): ChildProcess {
  const child = spawn('redis-server', args, { stdio: 'ignore' });
  cleanup.push(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGCONT');
    child.kill('SIGKILL');
    await exited;
  });
  return child;
}

/**
 * A master, a replica in sync with it and one Sentinel (quorum 1, down after 1 s), on loopback.
 * Everyone, the Sentinel too, reaches the master through a relay, so that the Sentinel's own
 * links to it can be silenced while its clients' stay.
 */
async function sentinelGroup() {
  const dir = await mkdtemp(join(tmpdir(), 'edge-sentinel-'));
  const [masterPort, replicaPort, sentinelPort] = [await freePort(), await freePort(), await freePort()];
  // --dir: a replica writes the snapshot it receives from its master to disk, even with --save "".
  const common = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
  const master = start(['--port', String(masterPort), ...common]);
  const relay = await TcpRelay.start(masterPort);
  cleanup.push(() => relay.close());
  start(['--port', String(replicaPort), ...common, '--replicaof', '127.0.0.1', String(masterPort)]);
  const conf = join(dir, 'sentinel.conf');
  const settings = [`sentinel monitor mymaster 127.0.0.1 ${relay.port} 1`, 'sentinel down-after-milliseconds mymaster 1000', 'sentinel failover-timeout mymaster 3000'];
  await writeFile(conf, [`port ${sentinelPort}`, 'bind 127.0.0.1', `dir ${dir}`, ...settings, ''].join('\n'));
  start([conf, '--sentinel']);
  // Sentinel learns of replicas from the master's INFO (every 10 s): no replica known, no failover.
  await untilDefined('the sentinel discovering the replica', async () => (((await ask(sentinelPort, 'SENTINEL', 'replicas', 'mymaster')) as unknown[]).length > 0 ? true : undefined), 20_000, 100);
  await untilDefined('the replica syncing', async () => (/master_link_status:up/.test(String(await ask(replicaPort, 'INFO', 'replication'))) ? true : undefined), 10_000, 100);
  const registry = new RedisRegistry({
    url: 'redis://localhost',
    sentinel: { sentinels: [{ host: '127.0.0.1', port: sentinelPort }], name: 'mymaster' },
    keyPrefix: 'failover:',
    regions: REGIONS.map((r) => r.id),
  });
  cleanup.push(() => registry.close());
  await registry.ready(5_000);
  const promoted = () =>
    untilDefined('the sentinel promoting the replica', async () => ((await ask(sentinelPort, 'SENTINEL', 'get-master-addr-by-name', 'mymaster')) as string[])[1] === String(replicaPort) || undefined, 15_000, 100);
  return { master, relay, replicaPort, registry, promoted };
}

/** Writes `weight` for atl through `registry` until the promoted replica holds it; resolves with how long that took. */
async function untilWrittenTo(registry: RedisRegistry, port: number, weight: number): Promise<number> {
  const started = Date.now();
  await untilDefined('a write reaching the promoted replica', async () => {
    await registry.setOverrides('atl', { drained: false, weight }).catch(() => undefined);
    const stored = (await ask(port, 'HGET', 'failover:overrides', 'atl')) as string | null;
    return stored !== null && JSON.parse(stored).weight === weight ? true : undefined;
  }, 10_000, 200);
  return Date.now() - started;
}

describe.skipIf(REDIS_MISSING)('RedisRegistry through Redis Sentinel, when the old master does not die', () => {
  it('frozen master: writes go to the promoted replica, not on timing out against the frozen one', async () => {
    const { master, replicaPort, registry, promoted } = await sentinelGroup();
    master.kill('SIGSTOP');
    await promoted();
    // Before: every command went to the frozen master and timed out, until it woke up.
    expect(await untilWrittenTo(registry, replicaPort, 3)).toBeLessThan(10_000);
  }, 60_000);

  it('master cut off from the Sentinels only: writes follow the failover, rather than going on into the old master (lost when it rejoins)', async () => {
    const { relay, replicaPort, registry, promoted } = await sentinelGroup();
    expect(relay.silence(/sentinel/i)).toBeGreaterThan(0);
    await promoted();
    // Before: the old master still answered, so ioredis never asked the Sentinels again and every
    // write went on into it, a master nobody else read and whose data its demotion throws away.
    expect(await untilWrittenTo(registry, replicaPort, 4)).toBeLessThan(10_000);
  }, 60_000);
});
