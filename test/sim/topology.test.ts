import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import { redisPidOn, regionsCopy, SimTopology } from '../../src/sim/topology.js';
import type { ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { TestRedisServer } from '../support/redis-server.js';
import type { RegionConfig } from '../../src/core/types.js';
import { REDIS_MISSING } from '../support/system-program.js';

describe('SimTopology', () => {
  it.each([
    ['malformed JSON', '{"regions": [', /regions\.json: not valid JSON at line 1, column \d+: /],
    ['no regions', '{"defaultRegion": "nyc"}', /regions\.json: regions: /],
  ])('refuses a package regions.json with %s, naming the file and what is wrong, before starting anything', async (_name, text, message) => {
    const root = await mkdtemp(join(tmpdir(), 'sim-topology-'));
    await writeFile(join(root, 'regions.json'), text);
    const started = SimTopology.start({ root });
    await expect(started).rejects.toBeInstanceOf(ConfigError);
    await expect(started).rejects.toThrow(message);
  });

  it('makes a relative GeoIP path of the regions file absolute in its copy, which is written elsewhere', () => {
    const regions = [{ id: 'nyc' }] as unknown as RegionConfig[];
    expect(regionsCopy('/etc/edge/regions.json', { regions: [], geoip: 'geo/sim.mmdb', defaultRegion: 'nyc' } as never, regions)).toEqual({ regions, geoip: '/etc/edge/geo/sim.mmdb', defaultRegion: 'nyc' });
    for (const geoip of ['/srv/geo/city.mmdb', 'none', undefined]) {
      expect(regionsCopy('/etc/edge/regions.json', { regions: [], geoip }, regions)).toEqual({ regions, geoip });
    }
  });

  it.skipIf(REDIS_MISSING)('takes a regions file with a byte-order mark, as the router does (it failed as a raw SyntaxError)', async () => {
    const root = await mkdtemp(join(tmpdir(), 'sim-topology-'));
    await writeFile(join(root, 'regions.json'), '\uFEFF' + (await readFile('regions.json', 'utf8')));
    // No node to start the processes with: the start gets past the file, to the first spawn.
    const execPath = process.execPath;
    process.execPath = join(tmpdir(), 'no-such-node-binary');
    try {
      await expect(SimTopology.start({ root })).rejects.toThrow(/^orchestrator-\w+ could not be started: spawn /);
    } finally {
      process.execPath = execPath;
    }
  });

  it.skipIf(REDIS_MISSING)("tells the Redis it started from another listener on the port by its process id (a run went on against another's)", async () => {
    const redis = await TestRedisServer.start();
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      expect(await redisPidOn(redis.port)).toBe((redis as unknown as { child: ChildProcess }).child.pid);
      expect(await redisPidOn((silent.address() as AddressInfo).port)).toBeUndefined();
    } finally {
      silent.close();
      await redis.stop();
    }
    expect(await redisPidOn(redis.port)).toBeUndefined();
  });

  it('says how to install redis-server when there is none to start, rather than going on without it', async () => {
    // Its spawn failing has no pid, and the pid check took "nothing answers with no pid" for a match.
    const path = process.env.PATH;
    process.env.PATH = await mkdtemp(join(tmpdir(), 'no-programs-'));
    try {
      await expect(SimTopology.start({ root: process.cwd() })).rejects.toThrow(/redis-server did not start .*apt-get install -y redis-server/);
    } finally {
      process.env.PATH = path;
    }
  });

  it.skipIf(REDIS_MISSING)('says which process could not be started, and stops what it started, when a spawn fails', async () => {
    // No node at the path the sim starts its processes with: spawn answers ENOENT through an
    // 'error' event, which had no listener and ended the test process with an uncaught error.
    const execPath = process.execPath;
    process.execPath = join(tmpdir(), 'no-such-node-binary');
    try {
      await expect(SimTopology.start({ root: process.cwd() })).rejects.toThrow(/^orchestrator-\w+ could not be started: spawn .*no-such-node-binary ENOENT/);
    } finally {
      process.execPath = execPath;
    }
    // The redis-server it had started is gone.
    expect(await childCommands()).not.toContain('redis-server');
  });
});

/** The command names of this process's live children, from /proc (field 4 of stat is the parent). */
async function childCommands(): Promise<string[]> {
  const names: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const match = /^\d+ \((.*)\) (\S) (\d+)/.exec(stat);
    if (match !== null && Number(match[3]) === process.pid && match[2] !== 'Z') names.push(match[1]!);
  }
  return names;
}
