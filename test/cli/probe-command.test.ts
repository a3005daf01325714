import { once } from 'node:events';
import { writeFile, mkdtemp } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from '../support/cli.js';
import { probeHeartbeatTtlMs } from '../../src/registry/prober.js';
import { redisKeyspace, TEST_REDIS_URL } from '../support/redis-keyspace.js';
import { REDIS_MISSING } from '../support/system-program.js';
import { until } from '../support/until.js';

const REDIS = TEST_REDIS_URL;

async function listen(status: number): Promise<Server> {
  const server = createServer((req, res) => {
    res.statusCode = req.url === '/healthz' ? status : 404;
    res.end('ok');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

describe.skipIf(REDIS_MISSING)('edge-router probe', () => {
  const { prefix, raw } = redisKeyspace('probe');

  it('records probe heartbeats in the registry: up for a healthy upstream, down after 3 failures', async () => {
    const healthy = await listen(200);
    const sick = await listen(503);
    const port = (s: Server) => (s.address() as { port: number }).port;
    const dir = await mkdtemp(join(tmpdir(), 'edge-probe-'));
    const regionsFile = join(dir, 'regions.json');
    await writeFile(
      regionsFile,
      JSON.stringify({
        defaultRegion: 'atl',
        regions: [
          { id: 'atl', name: 'Atlanta', lat: 33.7, lon: -84.4, orchestrators: [`http://127.0.0.1:${port(healthy)}`], capacity: { soft: 1, hard: 2 } },
          { id: 'fra', name: 'Frankfurt', lat: 50.1, lon: 8.7, orchestrators: [`http://127.0.0.1:${port(sick)}`], capacity: { soft: 1, hard: 2 } },
        ],
      }),
    );
    const stop = new AbortController();
    const run = cli(['probe', '--regions', regionsFile, '--probe-interval', '30', '--probe-timeout', '1600'], {
      env: { REDIS_URL: REDIS, EDGE_REDIS_PREFIX: prefix },
      signal: stop.signal,
    });
    try {
      let atl: { status?: string; source?: string } = {};
      let fra: { status?: string } = {};
      await until('atl probed up and fra down', async () => {
        atl = JSON.parse((await raw.get(`${prefix}hb:atl`)) ?? '{}');
        fra = JSON.parse((await raw.get(`${prefix}hb:fra`)) ?? '{}');
        return atl.status === 'up' && fra.status === 'down';
      }, 5_000);
      expect(atl).toMatchObject({ status: 'up', source: 'probe' });
      expect(fra).toMatchObject({ status: 'down', source: 'probe' });
      // Stored under the probe key, with the routers' TTL for this pace (it used to be its own
      // max(3 s, 3 intervals): shorter than one probe's budget here), which the routers judge it by.
      expect(JSON.parse((await raw.get(`${prefix}probe:atl`)) ?? '{}')).toMatchObject({ source: 'probe', ttlMs: probeHeartbeatTtlMs(30, 1_600) });
      expect(probeHeartbeatTtlMs(30, 1_600)).toBe(3_260);
    } finally {
      stop.abort();
      healthy.close();
      sick.close();
    }
    expect(await run).toMatchObject({ code: 0, stdout: expect.stringContaining('probing 2 regions every 30 ms (/healthz)') });
  });

  it('refuses bad probe settings with exit 2', async () => {
    const result = await cli(['probe', '--probe-interval', 'soon'], { env: { REDIS_URL: REDIS } });
    expect(result).toMatchObject({ code: 2, stderr: expect.stringContaining('--probe-interval: expected a whole number from 1 to 3600000, got "soon"') });
  });
});
