/**
 * `edge-router router --workers 2` behaves as one router: exact counts in /metrics and the
 * dashboard's numbers whichever worker answers, a drain seen by every worker before the API
 * answers it, one registry and one prober held by the primary.
 */
import { connect as netConnect } from 'node:net';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { agentFor, get, HOST } from '../support/clients.js';
import { TestOrigin } from '../support/origin.js';
import { outputLinesWith, readyPidsOf, runEdgeRouter } from '../support/process.js';
import { freePort } from '../support/redis-server.js';
import { regionsFileFor } from '../support/router.js';
import { until } from '../support/until.js';
import { redisKeyspace } from '../support/redis-keyspace.js';
import { REDIS_MISSING } from '../support/system-program.js';
import { connectionsRefused, H2_FRAME, h2Frame, openRawH2, openSilentTls, refusedAtConnect } from '../support/hostile.js';
import { openHttps1 } from '../support/https1.js';
import { metricSum } from '../support/metrics-text.js';

const TOKEN = 'cluster-test-token-0123456789';
const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** One admin request on its own connection, so the cluster hands it to either worker. */
async function admin(port: number, path: string, method: 'GET' | 'POST' = 'GET'): Promise<{ status: number; text: string }> {
  const res = await request(`http://127.0.0.1:${port}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}`, connection: 'close' } });
  return { status: res.statusCode, text: await res.body.text() };
}

const requestsTotal = (metrics: string): number => metricSum(metrics, 'edge_router_requests_total');

/** Origins for nyc and fra, and `router --workers 2` in front of them (with `flags`), both workers ready. */
async function startCluster(flags: readonly string[]) {
  const nyc = await TestOrigin.start('nyc');
  const fra = await TestOrigin.start('fra');
  cleanup.push(() => nyc.kill(), () => fra.kill());
  const regions = await regionsFileFor({ nyc: nyc.url, fra: fra.url });
  const [https, http, adminPort] = [await freePort(), await freePort(), await freePort()];
  const proc = runEdgeRouter(
    ['router', '--workers', '2', '--dev-cert', '--regions', regions, '--bind', '127.0.0.1', '--https-port', String(https), '--http-port', String(http),
      '--admin-port', String(adminPort), '--unknown-functions', 'forward', '--probe-interval', '200', '--log-level', 'info', ...flags],
    { EDGE_ADMIN_TOKEN: TOKEN },
  );
  cleanup.push(() => proc.stop('SIGKILL'));
  await until('both workers ready', () => readyPidsOf(proc).length === 2, 30_000);
  return { https, adminPort, proc };
}

describe('a cluster of workers is one router', () => {
  it('counts every worker in /metrics and the dashboard, and applies a drain in every worker before answering', async () => {
    // The token is given by value: a replaced-token overlap does nothing, which is said.
    const { https, adminPort, proc } = await startCluster(['--admin-token-overlap', '1000']);
    await proc.waitFor(/started 2 router workers/);
    // Each worker has its own slot (its share of idle containers under latency routing).
    const slots = outputLinesWith(proc, '"edge router ready"').map((l) => (JSON.parse(l) as { workerSlot?: string }).workerSlot).sort();
    expect(slots).toEqual(['0/2', '1/2']);
    // The primary's prober has reported nyc and fra up to every worker.
    await until('nyc and fra up', async () => {
      const body = JSON.parse((await admin(adminPort, '/api/regions')).text) as { regions: Array<{ id: string; status: string }> };
      return body.regions.filter((r) => (r.id === 'nyc' || r.id === 'fra') && r.status === 'up').length === 2;
    }, 10_000);

    // 100 requests, each on a new connection: the cluster spreads them over both workers.
    for (let i = 0; i < 100; i++) {
      const agent = agentFor(https);
      expect((await get(agent, https, `/n/${i}`, { headers: { 'x-forwarded-for': '1.1.1.1' } })).status).toBe(200);
      await agent.close();
    }
    const servedBy = new Set(
      proc.output().split('\n').filter((l) => l.includes('"log":"access"') && l.includes('/n/')).map((l) => (JSON.parse(l) as { pid: number }).pid),
    );
    expect(servedBy.size).toBe(2);
    // Said once for the router, by the primary, not again by each worker (lines are out by now: they leave in 200 ms batches).
    expect(outputLinesWith(proc, '"event":"setting_ignored"').map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual([expect.stringMatching(/^--admin-token-overlap is ignored: /)]);

    // Every scrape, whichever worker takes it, counts all 100.
    await expect.poll(async () => requestsTotal((await admin(adminPort, '/metrics')).text), { timeout: 5_000 }).toBe(100);
    for (let i = 0; i < 6; i++) {
      const metrics = (await admin(adminPort, '/metrics')).text;
      expect(requestsTotal(metrics)).toBe(100);
      // Node's own metrics keep their standard names, once each, summed over the workers.
      expect(metrics.match(/^process_resident_memory_bytes /gm)).toHaveLength(1);
      const regionsView = JSON.parse((await admin(adminPort, '/api/regions')).text) as { regions: Array<{ requestsTotal: number }> };
      expect(regionsView.regions.reduce((sum, r) => sum + r.requestsTotal, 0)).toBe(100);
    }

    // A drain is answered only once every worker routes by it: no read after it sees fra undrained.
    expect((await admin(adminPort, '/api/regions/fra/drain', 'POST')).status).toBe(200);
    for (let i = 0; i < 8; i++) {
      const view = JSON.parse((await admin(adminPort, '/api/regions')).text) as { regions: Array<{ id: string; drained: boolean }> };
      expect(view.regions.find((r) => r.id === 'fra')?.drained).toBe(true);
    }
    expect((await admin(adminPort, '/api/regions/fra/undrain', 'POST')).status).toBe(200);
    for (let i = 0; i < 8; i++) {
      const view = JSON.parse((await admin(adminPort, '/api/regions')).text) as { regions: Array<{ id: string; drained: boolean }> };
      expect(view.regions.find((r) => r.id === 'fra')?.drained).toBe(false);
    }
    expect(await proc.stop('SIGTERM')).toBe(0);
  }, 60_000);
});

/**
 * A PING flood whose acknowledgements are never read, from `localAddress`: the worker it lands on
 * closes it and penalizes the address. (The attacker reads nothing, so it may not see the close.)
 */
async function pingFlood(port: number, localAddress: string): Promise<void> {
  const attacker = await openRawH2(port, { reading: false, localAddress });
  const pings = Buffer.concat(Array.from({ length: 1_000 }, () => h2Frame(H2_FRAME.PING, 0, 0, Buffer.alloc(8, 7))));
  for (let i = 0; i < 100 && (await attacker.send(pings)); i++) await new Promise((r) => setImmediate(r));
  cleanup.push(async () => attacker.socket.destroy());
}

describe('a cluster of workers has one penalty box', () => {
  it('refuses an address that flooded one worker at every worker, and no one else', async () => {
    const attackerAddress = '127.66.0.9';
    const { https, adminPort, proc } = await startCluster(['--flood-penalty', '60000']);
    const refusedTotal = async (reason: string) => connectionsRefused((await admin(adminPort, '/metrics')).text, reason);
    await pingFlood(https, attackerAddress);
    // Judged by the worker it landed on.
    await until('the flood judged', async () => (await refusedTotal('frame_flood')) === 1, 5_000);
    // Each new connection goes to either worker in turn (node:cluster's round robin): every one
    // is refused before TLS completes, not only the half that reach the worker that saw the flood.
    const refused = () => refusedAtConnect(https, attackerAddress);
    // The penalty travels worker → primary → the other worker: two in a row refused, one by each.
    await until('the penalty reached both workers', async () => (await refused()) && (await refused()), 5_000);
    let refusedBefore = 0;
    for (let i = 0; i < 8; i++) if (await refused()) refusedBefore++;
    expect(refusedBefore).toBe(8);
    expect(await refusedTotal('penalty')).toBeGreaterThanOrEqual(8);
    expect(await refusedTotal('frame_flood')).toBe(1);
    // A worker that dies is replaced; its replacement asks the primary for the penalties still running.
    const readyPids = () => readyPidsOf(proc);
    process.kill(readyPids()[0]!, 'SIGKILL');
    await until('a replacement worker ready', () => readyPids().length === 3, 15_000);
    let refusedAfter = 0;
    for (let i = 0; i < 8; i++) if (await refused()) refusedAfter++;
    expect(refusedAfter).toBe(8);
    // Other clients are served by both workers.
    for (let i = 0; i < 4; i++) {
      const agent = agentFor(https);
      expect((await get(agent, https, `/after/${i}`)).status).toBe(200);
      await agent.close();
    }
  }, 90_000);

  it('doubles the penalty of an address that floods again soon, at a worker that never saw its first flood', async () => {
    const attackerAddress = '127.66.0.10';
    const { https, adminPort, proc } = await startCluster(['--flood-penalty', '4000']);
    // Each worker logs the floods it judges itself (`http2_flood`, with its pid).
    const judges = () => outputLinesWith(proc, '"event":"http2_flood"').map((l) => (JSON.parse(l) as { pid: number }).pid);
    const refused = () => refusedAtConnect(https, attackerAddress);
    // Asked every 200 ms: faster, the asking itself would meet the per-address connect rate.
    const letIn = async () => {
      await new Promise((r) => setTimeout(r, 200));
      return !(await refused());
    };
    await pingFlood(https, attackerAddress);
    await until('the first flood judged', () => judges().length === 1, 5_000);
    // The worker that judged it dies: the second flood can only be judged by one that heard of the
    // first penalty through the primary (the survivor) or was handed it at its start (the replacement).
    const firstJudge = judges()[0]!;
    process.kill(firstJudge, 'SIGKILL');
    await until('a replacement worker ready', () => readyPidsOf(proc).length === 3, 15_000);
    await until('the first penalty is over', letIn, 15_000);
    await pingFlood(https, attackerAddress);
    await until('the second flood judged', () => judges().length === 2, 5_000);
    const judgedAt = Date.now();
    expect(judges()[1]).not.toBe(firstJudge);
    const penaltiesBefore = connectionsRefused((await admin(adminPort, '/metrics')).text, 'penalty');
    // 8 s this time. Asked 5 s after, a second past the base penalty, with 3 s to spare for a slow
    // host; two in a row, one at each worker (node:cluster's round robin).
    await new Promise((r) => setTimeout(r, 5_000 - (Date.now() - judgedAt)));
    expect(await refused()).toBe(true);
    expect(await refused()).toBe(true);
    expect(connectionsRefused((await admin(adminPort, '/metrics')).text, 'penalty')).toBe(penaltiesBefore + 2);
    // Twice the base, not more: let in again after 8 s (asked by 16 s, for a slow host).
    await until('the second penalty is over', letIn, 11_000);
    expect(Date.now() - judgedAt).toBeGreaterThan(7_000);
  }, 90_000);

  it('closes connections past --max-connections in the worker, rather than have the primary pass them between full workers', async () => {
    const { https, adminPort } = await startCluster(['--max-connections', '4', '--client-header-timeout', '60000']);
    // Both workers full of connections in the middle of a request head: nothing idle to close.
    for (let i = 0; i < 8; i++) {
      const socket = (await openSilentTls(https, '127.66.0.8')).resume();
      cleanup.push(async () => void socket.destroy());
      socket.write(`GET /slow HTTP/1.1\r\nHost: ${HOST}\r\n`);
    }
    // Twenty more: each is closed by the worker it is offered to. Refused by Node's own cap, each
    // went back to the primary and round the workers again, for as long as they stayed full
    // (about a core between the three processes for twenty), held open all the while.
    const extra = Array.from({ length: 20 }, () => {
      const socket = netConnect(https, '127.0.0.1');
      socket.on('error', () => undefined);
      cleanup.push(async () => void socket.destroy());
      return new Promise<void>((resolve) => socket.once('close', () => resolve()));
    });
    await Promise.race([Promise.all(extra), new Promise((_, reject) => setTimeout(() => reject(new Error('connections past the cap were not closed within 5 s')), 5_000))]);
    expect(connectionsRefused((await admin(adminPort, '/metrics')).text, 'at_capacity')).toBe(20);
  }, 60_000);

  it('makes room in every worker full of idle connections, each by its own timer', async () => {
    const { https, adminPort } = await startCluster(['--max-connections', '4']);
    // Eight TLS connections that send nothing, handed to the workers in turn: four each, both full.
    const held: Array<{ destroyed: boolean }> = [];
    for (let i = 0; i < 8; i++) {
      const socket = (await openSilentTls(https, '127.66.0.7')).resume();
      cleanup.push(async () => void socket.destroy());
      held.push(socket);
    }
    // Each worker looks by itself once its first connections have been quiet a second: a full
    // worker would otherwise close each new client it is offered until an idle one timed out.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    for (let i = 0; i < 4; i++) {
      const client = await openHttps1(https, '127.0.0.1');
      cleanup.push(async () => void client.socket.destroy());
      expect(await client.get(`/newcomer/${i}`)).toMatch(/^HTTP\/1\.1 200/);
    }
    expect(connectionsRefused((await admin(adminPort, '/metrics')).text, 'idle_reclaimed')).toBeGreaterThanOrEqual(4);
    await until('the closed ones closed on the client side too', () => held.filter((s) => s.destroyed).length >= 4);
  }, 60_000);
});

describe.skipIf(REDIS_MISSING)('a cluster of workers sharing Redis is one router too', () => {
  const { url, prefix } = redisKeyspace('cluster');

  it('counts every worker and applies a drain in every worker before answering', async () => {
    const { https, adminPort, proc } = await startCluster(['--probe', 'on', '--redis', url, '--redis-prefix', prefix]);
    for (let i = 0; i < 40; i++) {
      const agent = agentFor(https);
      expect((await get(agent, https, `/r/${i}`)).status).toBe(200);
      await agent.close();
    }
    await expect.poll(async () => requestsTotal((await admin(adminPort, '/metrics')).text), { timeout: 5_000 }).toBe(40);
    for (let i = 0; i < 4; i++) expect(requestsTotal((await admin(adminPort, '/metrics')).text)).toBe(40);
    const drained = await request(`http://127.0.0.1:${adminPort}/api/regions/fra/drain`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, connection: 'close' } });
    expect(drained.statusCode).toBe(200);
    expect(drained.headers['x-edge-applied']).toBe('everywhere');
    await drained.body.dump();
    for (let i = 0; i < 6; i++) {
      const view = JSON.parse((await admin(adminPort, '/api/regions')).text) as { registry: { kind: string }; regions: Array<{ id: string; drained: boolean }> };
      expect(view.registry.kind).toBe('redis');
      expect(view.regions.find((r) => r.id === 'fra')?.drained).toBe(true);
    }
    expect(await proc.stop('SIGTERM')).toBe(0);
  }, 60_000);
});
