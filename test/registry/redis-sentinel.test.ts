import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisRegistry } from '../../src/registry/redis-registry.js';
import { REGIONS } from '../support/regions.js';
import { freePort } from '../support/redis-server.js';
import { REDIS_MISSING } from '../support/system-program.js';
import { registryContract } from './registry-contract.js';
import { untilDefined } from '../support/until.js';

/**
 * Redis Sentinel on loopback: a master, a replica and one Sentinel (quorum 1), all private
 * processes on free ports. The registry reaches Redis only through the Sentinel.
 */
const children: ChildProcess[] = [];
let masterPort = 0;
let sentinelPort = 0;
let master: ChildProcess | undefined;


function start(args: string[]): ChildProcess {
  const child = spawn('redis-server', args, { stdio: 'ignore' });
  children.push(child);
  return child;
}

async function masterAddress(): Promise<string | undefined> {
  const sentinel = new Redis({ port: sentinelPort, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null });
  sentinel.on('error', () => undefined); // a refused probe is an answer ("not yet"), not a failure
  try {
    await sentinel.connect();
    const addr = (await sentinel.call('SENTINEL', 'get-master-addr-by-name', 'mymaster')) as [string, string] | null;
    return addr === null ? undefined : `${addr[0]}:${addr[1]}`;
  } finally {
    sentinel.disconnect();
  }
}

const open = (prefix: string) =>
  new RedisRegistry({
    url: 'redis://localhost',
    sentinel: { sentinels: [{ host: '127.0.0.1', port: sentinelPort }], name: 'mymaster' },
    keyPrefix: prefix,
    regions: REGIONS.map((r) => r.id),
  });

describe.skipIf(REDIS_MISSING)('RedisRegistry through Redis Sentinel', () => {
  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edge-sentinel-'));
    masterPort = await freePort();
    const replicaPort = await freePort();
    sentinelPort = await freePort();
    // --dir: a replica writes the snapshot it receives from its master to disk, even with --save "".
    const common = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
    master = start(['--port', String(masterPort), ...common]);
    start(['--port', String(replicaPort), ...common, '--replicaof', '127.0.0.1', String(masterPort)]);
    const conf = join(dir, 'sentinel.conf');
    await writeFile(
      conf,
      [
        `port ${sentinelPort}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor mymaster 127.0.0.1 ${masterPort} 1`,
        'sentinel down-after-milliseconds mymaster 1000',
        'sentinel failover-timeout mymaster 3000',
        '',
      ].join('\n'),
    );
    start([conf, '--sentinel']);
    await untilDefined('the sentinel knowing the master', masterAddress, 10_000, 100);
    // Sentinel learns of replicas from the master's INFO (every 10 s): no replica known, no failover.
    await untilDefined('the sentinel discovering the replica', async () => {
      const sentinel = new Redis({ port: sentinelPort, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null });
      sentinel.on('error', () => undefined);
      try {
        await sentinel.connect();
        const replicas = (await sentinel.call('SENTINEL', 'replicas', 'mymaster')) as unknown[];
        return replicas.length > 0 ? true : undefined;
      } finally {
        sentinel.disconnect();
      }
    }, 20_000, 100);
    // The replica must be in sync before the failover test kills the master.
    await untilDefined('the replica syncing', async () => {
      const replica = new Redis({ port: replicaPort, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null });
      replica.on('error', () => undefined);
      try {
        await replica.connect();
        return /master_link_status:up/.test(await replica.info('replication')) ? true : undefined;
      } finally {
        replica.disconnect();
      }
    }, 10_000, 100);
  }, 45_000);

  afterAll(async () => {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        child.kill('SIGKILL');
        await exited;
      }
    }
  });

  registryContract('RedisRegistry via Sentinel', async () => {
    const prefix = `sentinel-test:${Math.random().toString(36).slice(2)}:`;
    const registry = open(prefix);
    const peer = open(prefix);
    await registry.ready(5_000);
    await peer.ready(5_000);
    return {
      registry,
      peer: () => peer,
      cleanup: async () => {
        await registry.close();
        await peer.close();
      },
    };
  });

  it('follows a failover to the promoted replica', async () => {
    const registry = open('failover:');
    await registry.ready(5_000);
    await registry.setOverrides('fra', { drained: true, weight: 2 });
    const before = await masterAddress();
    // The write must be on the replica before the master dies: WAIT returns once a replica has it.
    const [masterHost, masterPort] = before!.split(':');
    const direct = new Redis({ host: masterHost!, port: Number(masterPort) });
    try {
      expect(await direct.call('WAIT', '1', '5000')).toBe(1);
    } finally {
      direct.disconnect();
    }
    const exited = once(master!, 'exit');
    master!.kill('SIGKILL');
    await exited;
    const after = await untilDefined('the sentinel promoting the replica', async () => {
      const now = await masterAddress();
      return now !== undefined && now !== before ? now : undefined;
    }, 15_000, 100);
    expect(after).not.toBe(before);
    // Writes and reads go to the new master once ioredis has asked the Sentinel again.
    await untilDefined('a write after the failover', async () => {
      await registry.setOverrides('atl', { drained: false, weight: 3 });
      return true;
    }, 15_000, 100);
    const overrides = await registry.readOverrides();
    expect(overrides.get('atl')).toEqual({ drained: false, weight: 3 });
    expect(overrides.get('fra')).toEqual({ drained: true, weight: 2 });
    await registry.close();
  }, 40_000);
});
