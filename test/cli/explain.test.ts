import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { PassThrough, Readable, Writable } from 'node:stream';
import { runCli } from '../../src/cli/run-cli.js';
import { describe, expect, it } from 'vitest';
import { cli, jsonLines } from '../support/cli.js';
import { freePort, TestRedisServer } from '../support/redis-server.js';
import { REDIS_MISSING } from '../support/system-program.js';
import { redisKeyspace } from '../support/redis-keyspace.js';
import { until } from '../support/until.js';
import { packageRoot } from '../../src/cli/package-root.js';

const HOST = 'my-function-abc123.telnyxcompute.com';
const CITY_DB = 'test/fixtures/geo/GeoIP2-City-Test.mmdb';

describe('edge-router explain', () => {
  it('explains one decision as JSON: function, client, region, reason and the full ranking', async () => {
    // 127.8.0.0/16 is London in the simulation database.
    const { code, stdout } = await cli(['explain', '--host', HOST, '--ip', '127.8.1.2']);
    expect(code).toBe(0);
    const out = JSON.parse(stdout);
    expect(out).toMatchObject({
      fn: 'my-function',
      org: 'abc123',
      client: { ip: '127.8.1.2', country: 'GB', city: 'London', source: 'geoip' },
      region: 'fra',
      reason: 'nearest',
    });
    expect(out.client.lat).toBeCloseTo(51.5074, 3);
    expect(out.ranking.map((r: { region: string }) => r.region)).toEqual(['fra', 'nyc', 'atl', 'lax', 'syd']);
    expect(out.ranking[0]).toEqual({ region: 'fra', distanceKm: 638, status: 'up' });
  });

  it('with --routing latency, lists each region\'s expected time to answer and its parts', async () => {
    const { code, stdout } = await cli(['explain', '--host', HOST, '--ip', '127.8.1.2', '--routing', 'latency', '--routing-ms-per-100km', '2']);
    expect(code).toBe(0);
    const body = JSON.parse(stdout);
    // No registry: no region reports its containers, so nothing is known warm (or cold): the
    // nearest region, for readiness's reason.
    expect(body).toMatchObject({ region: 'fra', reason: 'nearest' });
    expect(body.estimates[0]).toEqual({ region: 'fra', expectedMs: expect.closeTo(312.8, 0), rttMs: expect.closeTo(12.8, 0), idleWarm: 0, coldStartMs: 300 });
    expect(body.estimates.map((e: { region: string }) => e.region)).toEqual(['fra', 'nyc', 'atl', 'lax', 'syd']);
    expect(await cli(['explain', '--host', HOST, '--ip', '127.8.1.2', '--routing', 'fastest'])).toMatchObject({ code: 2, stderr: expect.stringContaining('--routing') });
  });

  it('uses a real MaxMind database given with --geoip', async () => {
    const { code, stdout } = await cli(['explain', '--host', HOST, '--ip', '216.160.83.56', '--geoip', CITY_DB, '--json']);
    expect(code).toBe(0);
    expect(stdout.trim().split('\n')).toHaveLength(1);
    expect(JSON.parse(stdout)).toMatchObject({ client: { country: 'US', city: 'Milton', lat: 47.2513, lon: -122.3149 }, region: 'lax' });
  });

  it('says which fallback it used', async () => {
    const countryDb = 'test/fixtures/geo/GeoIP2-Country-Test.mmdb';
    const country = await cli(['explain', '--host', HOST, '--ip', '2001:218::1', '--geoip', countryDb]);
    expect(JSON.parse(country.stdout)).toMatchObject({ client: { country: 'JP', source: 'geoip-country' }, region: 'syd', reason: 'fallback:country' });
    // Bhutan is not in the country table: the default region.
    const unmapped = await cli(['explain', '--host', HOST, '--ip', '67.43.156.1', '--geoip', countryDb]);
    expect(JSON.parse(unmapped.stdout)).toMatchObject({ client: { country: 'BT', source: 'geoip-country' }, region: 'nyc', reason: 'fallback:no-geo' });
    const none = await cli(['explain', '--host', HOST, '--ip', '10.1.2.3', '--geoip', CITY_DB]);
    expect(JSON.parse(none.stdout)).toMatchObject({ client: { source: 'private', country: null }, region: 'nyc', reason: 'fallback:no-geo' });
    const noDb = await cli(['explain', '--host', HOST, '--ip', '81.2.69.160', '--geoip', 'none']);
    expect(JSON.parse(noDb.stdout)).toMatchObject({ client: { source: 'no-database' }, reason: 'fallback:no-geo' });
  });

  it('prints a rejected host as an error object and exits 2', async () => {
    const { code, stdout } = await cli(['explain', '--host', 'a.b-c.telnyxcompute.com', '--ip', '127.8.0.1']);
    expect(code).toBe(2);
    expect(JSON.parse(stdout)).toEqual({ error: { code: 'nested_subdomain', message: expect.any(String) } });
  });

  it('reads a log of addresses from stdin and answers one line each, in order, errors included', async () => {
    const stdin = ['127.8.0.1', '', 'not-an-ip', '127.16.0.9', '::ffff:127.1.0.1'].join('\n');
    const { code, stdout } = await cli(['explain', '--host', HOST, '--ips', '-'], { stdin });
    expect(code).toBe(0);
    const lines = jsonLines(stdout) as Array<Record<string, any>>;
    expect(lines.map((l) => l.region ?? l.error.code)).toEqual(['fra', 'invalid_ip', 'syd', 'atl']);
    expect(lines[1]).toEqual({ ip: 'not-an-ip', error: { code: 'invalid_ip', message: 'not an IPv4 or IPv6 address' } });
  });

  it('stops reading addresses at a signal, keeping what it explained, and exits 130', async () => {
    const stdin = new PassThrough();
    const stop = new AbortController();
    const out: string[] = [];
    const stdout = new PassThrough().on('data', (chunk: Buffer) => out.push(chunk.toString()));
    const running = runCli(['explain', '--host', HOST, '--ips', '-'], { stdout, stderr: new PassThrough(), stdin, env: {}, signal: stop.signal });
    stdin.write('127.8.0.1\n'); // and no end: a terminal, waiting for the next line
    await until('the first answer', () => out.join('').includes('"region":"fra"'));
    stop.abort();
    expect(await running).toBe(130);
    expect(jsonLines(out.join(''))).toHaveLength(1);
  });

  it('reads no further ahead than its reader takes the answers (a stalled `| less` held the whole log in memory)', async () => {
    let produced = 0;
    const addresses = Readable.from(
      (function* () {
        for (; produced < 100_000; produced++) yield `127.8.0.${produced % 250}\n`;
      })(),
    );
    // A reader that never reads: nothing written is ever taken.
    const stalled = new Writable({ highWaterMark: 16 * 1024, write: () => undefined });
    const stop = new AbortController();
    const running = runCli(['explain', '--host', HOST, '--ips', '-'], { stdout: stalled, stderr: new PassThrough(), stdin: addresses, env: {}, signal: stop.signal });
    await until('the reader full', () => stalled.writableNeedDrain);
    // Reading stops (no line taken for half a second) well before the end of the log: without the
    // wait for the reader it went on to the last line, however fast the machine.
    let last = -1;
    let sameSince = performance.now();
    await until(
      'reading stopped',
      () => {
        if (produced !== last) [last, sameSince] = [produced, performance.now()];
        return performance.now() - sameSince >= 500;
      },
      60_000,
    );
    // Lines read but not yet explained wait in readline and the stream (a thousand or so), not the whole log.
    expect(produced).toBeLessThan(50_000);
    stop.abort();
    expect(await running).toBe(130);
  });

  it('answers repeated --ip flags one line each', async () => {
    const { code, stdout } = await cli(['explain', '--host', HOST, '--ip', '127.15.0.1', '--ip', '127.4.0.1']);
    expect(code).toBe(0);
    expect((jsonLines(stdout) as Array<{ client: { city: string }; region: string }>).map((l) => [l.client.city, l.region])).toEqual([
      ['Tokyo', 'syd'],
      ['Seattle', 'lax'],
    ]);
  });

  it('exits 2 for a single unparseable address', async () => {
    const { code, stdout } = await cli(['explain', '--host', HOST, '--ip', '300.1.1.1']);
    expect(code).toBe(2);
    expect(JSON.parse(stdout).error.code).toBe('invalid_ip');
  });

  it('takes settings from env when flags are absent, and flags over env', async () => {
    const env = { EDGE_ZONE: 'edge.test' };
    expect((await cli(['explain', '--host', 'echo-demo.edge.test', '--ip', '127.8.0.1'], { env })).code).toBe(0);
    const flagWins = await cli(['explain', '--host', 'echo-demo.edge.test', '--ip', '127.8.0.1', '--zone', 'other.test'], { env });
    expect(JSON.parse(flagWins.stdout).error.code).toBe('host_outside_zone');
  });

  it('stops with exit 2 and a message naming the file and field for a bad regions file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edge-explain-'));
    const file = join(dir, 'regions.json');
    await writeFile(file, JSON.stringify({ defaultRegion: 'atl', regions: [{ id: 'atl', name: 'A', lat: 100, lon: 0, orchestrators: ['http://x'], capacity: { soft: 1, hard: 1 } }] }));
    const { code, stderr } = await cli(['explain', '--host', HOST, '--ip', '127.8.0.1', '--regions', file]);
    expect(code).toBe(2);
    expect(stderr).toContain(`${file}: regions[0].lat: expected a number in [-90, 90]`);
  });

  it('stops with exit 2 naming a missing or broken GeoIP database', async () => {
    const missing = await cli(['explain', '--host', HOST, '--ip', '1.1.1.1', '--geoip', 'nope.mmdb']);
    expect(missing).toMatchObject({ code: 2, stderr: expect.stringContaining('--geoip: nope.mmdb: file not found') });
    // A path from the regions file's field is named by the file and the field.
    const regionsFile = join(await mkdtemp(join(tmpdir(), 'edge-explain-')), 'regions.json');
    const bundled = JSON.parse(await readFile(join(packageRoot(), 'regions.json'), 'utf8')) as Record<string, unknown>;
    await writeFile(regionsFile, JSON.stringify({ ...bundled, geoip: 'missing.mmdb' }));
    const fromFile = await cli(['explain', '--host', HOST, '--ip', '1.1.1.1', '--regions', regionsFile]);
    expect(fromFile).toMatchObject({ code: 2, stderr: expect.stringContaining(`${regionsFile}: geoip: ${join(regionsFile, '..', 'missing.mmdb')}: file not found`) });
    const broken = await cli(['explain', '--host', HOST, '--ip', '1.1.1.1', '--geoip', 'test/fixtures/geo/GeoIP2-City-Test-Broken-Double-Format.mmdb']);
    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/GeoIP2-City-Test-Broken-Double-Format\.mmdb: record for .*absurdly close to zero/);
  });

  it('explains usage errors with exit 2', async () => {
    expect((await cli(['explain', '--ip', '1.1.1.1'])).code).toBe(2);
    expect((await cli(['explain', '--host', HOST])).stderr).toContain('explain needs --ip <ip> or --ips -');
    expect((await cli(['explain', '--host', HOST, '--ip', '1.1.1.1', '--bogus'])).stderr).toContain("Unknown option '--bogus'");
  });
});

describe('edge-router --help', () => {
  it('lists every command', async () => {
    const { code, stdout } = await cli(['--help']);
    expect(code).toBe(0);
    for (const command of ['explain', 'geo', 'start', 'registry', 'probe', 'router', 'orchestrator', 'sim']) {
      expect(stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
    }
    expect(stdout).not.toContain('Not built yet');
  });

  it('lists every flag of a command with its env variable and default', async () => {
    const { code, stdout } = await cli(['explain', '--help']);
    expect(code).toBe(0);
    for (const line of [
      /--regions <file>.*\[env EDGE_REGIONS; default: the bundled regions.json\]/,
      /--geoip <mmdb>.*\[env EDGE_GEOIP; default: .*sim.mmdb\]/,
      /--zone <domain>.*\[env EDGE_ZONE; default: .*telnyxcompute.com\]/,
      /--trusted-proxies <cidrs>.*\[env EDGE_TRUSTED_PROXIES; default: .*none\]/,
      /--host <host>/,
      /--ip <ip>.*\(repeatable\)/,
      /--ips <->/,
      /--json/,
    ]) {
      expect(stdout).toMatch(line);
    }
  });

  it('answers an unknown command with exit 2', async () => {
    expect(await cli(['frobnicate'])).toMatchObject({ code: 2, stderr: expect.stringContaining('unknown command "frobnicate"') });
  });
});

describe.skipIf(REDIS_MISSING)('edge-router explain with a registry reached through Sentinels only', () => {
  it('rejects a function the registry does not know, as with --redis and as the router does', async () => {
    // The default policy followed --redis alone: with --redis-sentinels the live registry decided,
    // yet every unknown function was answered as deployed everywhere, which the router 404s.
    const master = await TestRedisServer.start();
    const dir = await mkdtemp(join(tmpdir(), 'edge-explain-sentinel-'));
    const sentinelPort = await freePort();
    const conf = join(dir, 'sentinel.conf');
    await writeFile(conf, [`port ${sentinelPort}`, 'bind 127.0.0.1', `dir ${dir}`, `sentinel monitor mymaster 127.0.0.1 ${master.port} 1`, ''].join('\n'));
    const sentinel = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    try {
      const argv = ['explain', '--host', HOST, '--ip', '127.8.1.2', '--json'];
      const viaUrl = await cli([...argv, '--redis', master.url]);
      expect(viaUrl.code).toBe(2);
      expect(JSON.parse(viaUrl.stdout)).toMatchObject({ error: { code: 'function_not_found' } });
      let viaSentinels = { code: -1, stdout: '', stderr: '' };
      await until('the sentinel answering', async () => {
        viaSentinels = await cli([...argv, '--redis-sentinels', `127.0.0.1:${sentinelPort}`]);
        return !viaSentinels.stderr.includes('cannot reach the registry');
      }, 10_000);
      expect({ code: viaSentinels.code, out: JSON.parse(viaSentinels.stdout) }).toMatchObject({ code: 2, out: { error: { code: 'function_not_found' } } });
    } finally {
      sentinel.kill();
      await master.stop();
    }
  }, 30_000);
});

describe.skipIf(REDIS_MISSING)('edge-router explain with a registry key it cannot read', () => {
  const space = redisKeyspace('explain-broken');
  const env = { REDIS_URL: space.url, EDGE_REDIS_PREFIX: space.prefix };

  it.each(['residency', 'functions', 'domains', 'overrides'])('says the %s key cannot be read, exit 2, rather than reason on none of it', async (name) => {
    const keys = await space.raw.keys(`${space.prefix}*`);
    if (keys.length > 0) await space.raw.del(...keys);
    // acme's api deployed everywhere, acme confined to syd: explained, a London client goes to syd (no heartbeats: in panic, within the rule).
    expect((await cli(['registry', 'deploy', '--org', 'acme', '--fn', 'api', '--regions', 'fra,nyc,atl,lax,syd'], { env })).code).toBe(0);
    expect((await cli(['registry', 'residency', 'set', '--org', 'acme', '--regions', 'syd'], { env })).code).toBe(0);
    const argv = ['explain', '--host', 'api-acme.telnyxcompute.com', '--ip', '127.8.1.2', '--json'];
    expect(JSON.parse((await cli(argv, { env })).stdout)).toMatchObject({ region: 'syd' });
    await space.raw.multi().del(`${space.prefix}${name}`).set(`${space.prefix}${name}`, 'not a hash').exec();
    const broken = await cli(argv, { env });
    // Before: residency read as none (London's nearest, fra), functions as none (function_not_found).
    expect(broken.code).toBe(2);
    expect(JSON.parse(broken.stdout)).toEqual({
      error: { code: 'registry_unreachable', message: expect.stringContaining(`the registry's ${name} key ${space.prefix}${name} cannot be read (WRONGTYPE`) },
    });
  });
});
