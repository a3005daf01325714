/**
 * Cold-start hedging end to end: a real router, real HTTP to stand-in orchestrators. A London
 * client's nearest region (Frankfurt) is cold for the function and answers late, as a cold start
 * does; New York reports an idle warm container. Under nearest routing, which picks Frankfurt
 * whatever its warmth: latency routing (the default) would send the request to New York's warm
 * container in the first place, and hedges there only when its estimate was wrong.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect as http2Connect, constants as h2constants } from 'node:http2';
import { connect } from 'node:net';
import { request, type Agent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { agentFor, get } from '../support/clients.js';
import { echo, TestOrigin, type OriginHandler } from '../support/origin.js';
import { PROBE_ONCE_FLAGS, startTestRouter, type TestRouter } from '../support/router.js';
import { until } from '../support/until.js';
import { reportIdleContainers } from '../support/warm-reports.js';
import { freePort } from '../../src/sim/free-port.js';

const LONDON = '127.8.0.1';
const ADMIN_TOKEN = 'hedging-test-token-0123456789';
const HOST = 'api-acme.telnyxcompute.com';

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const after = (ms: number, then: OriginHandler = echo): OriginHandler => (req, res, seen) => {
  const timer = setTimeout(() => then(req, res, seen), ms);
  res.on('close', () => clearTimeout(timer));
};
const failing: OriginHandler = (_req, res) => {
  res.writeHead(503, { 'content-type': 'text/plain' });
  res.end('busy');
};
/**
 * Answers (with `then`) once `other` holds, or has answered, the request for the same path: which
 * of a pick and its hedge answers first is then the test's choice, not a race between timers and
 * a loaded machine's connection set-up. After `other` answered, 100 ms more: its answer is written
 * by then, and the router reads it before this one (it reads ready sockets within a turn of its loop).
 */
const afterOther = (other: TestOrigin, state: 'holds' | 'answered', then: OriginHandler = echo): OriginHandler => (req, res, seen) => {
  const ready = () => other.requests.some((r) => r.url === req.url && (state === 'holds' || r.done));
  void until(`${other.name} ${state} ${req.url}`, ready, 10_000).then(() => {
    if (res.destroyed) return;
    if (state === 'holds') then(req, res, seen);
    else after(100, then)(req, res, seen);
  }, () => res.destroy());
};

/** `third`: Atlanta (the third nearest from London, nothing warm) has an orchestrator too. */
async function setup(hedge = true, flags: string[] = [], third = false) {
  const fra = await TestOrigin.start('fra');
  const nyc = await TestOrigin.start('nyc');
  const atl = third ? await TestOrigin.start('atl') : undefined;
  if (atl !== undefined) cleanup.push(() => atl.kill());
  // Health comes from the one start probe (PROBE_ONCE_FLAGS: a slow probe on a loaded machine does
  // not leave a region unknown); no test here needs a probe after it.
  const router = await startTestRouter({ fra: fra.url, nyc: nyc.url, ...(atl === undefined ? {} : { atl: atl.url }) }, ['--routing', 'nearest', ...PROBE_ONCE_FLAGS, '--hedge-delay', '40', '--admin-token', ADMIN_TOKEN, ...flags]);
  const agent = agentFor(router.httpsPort, { localAddress: LONDON });
  cleanup.push(() => fra.kill(), () => nyc.kill(), () => router.close(), () => agent.close());
  const { registry, watcher } = router.router;
  await registry.putFunction({ org: 'acme', fn: 'api', regions: null, tier: 'standard', enabled: true, ...(hedge ? { hedge: true } : {}) });
  await registry.writeHeartbeat(
    { region: 'nyc', status: 'up', reportedAt: Date.now(), source: 'reporter', inFlight: 0, warmContainers: 4, latencyMs: { p50: 5, p99: 9 }, errorRate: 0, warmFunctions: ['acme/api'], functions: [{ fn: 'acme/api', idle: 4, busy: 0, coldStartMs: 250 }] },
    60_000,
  );
  await until('the router sees the directory and the warm report', () => watcher.snapshot.functions.get('acme')?.get('api') !== undefined && watcher.snapshot.regions.get('nyc')?.functionLoads.has('acme/api') === true, 5_000);
  const send = (path: string, method = 'GET', body?: string) => get(agent, router.httpsPort, path, { host: HOST, method, ...(body === undefined ? {} : { body }) });
  return { fra, nyc, atl, router, send, agent };
}

const metricsOf = async (router: TestRouter) =>
  (await request(`http://127.0.0.1:${router.adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body.text();
const lastAccess = (router: TestRouter, path: string) => router.access.findLast((a) => a.path === path)!;

describe('cold-start hedging', () => {
  it('races a slow cold pick from the warm region: the first answer wins and the other request is cut', async () => {
    const { fra, nyc, router, send } = await setup();
    fra.handler = after(10_000); // a slow cold start (cut long before it would answer)
    const res = await send('/cold');
    expect(res.status).toBe(200);
    expect(res.headers['x-edge-region']).toBe('nyc');
    expect(res.headers['x-edge-route']).toBe('hedged:fra>nyc');
    // Frankfurt got the request first, and the router cut it once New York answered.
    await until('the losing request is cut', () => fra.requests.at(-1)?.done === true, 5_000);
    expect(fra.requests.at(-1)).toMatchObject({ url: '/cold', aborted: true });
    expect(nyc.requests.at(-1)).toMatchObject({ url: '/cold', aborted: false });
    await until('logged', () => router.access.some((a) => a.path === '/cold'), 5_000);
    expect(lastAccess(router, '/cold')).toMatchObject({ region: 'nyc', tried: ['fra', 'nyc'], hedgedTo: 'nyc', reason: 'hedged:fra>nyc', status: 200 });
    const metrics = await metricsOf(router);
    expect(metrics).toMatch(/^edge_router_hedges_total\{region="nyc",result="won"\} 1$/m);
    expect(metrics).not.toMatch(/^edge_router_failovers_total\{region="fra"\}/m);
  });

  it('sends no hedge when the pick answers within the wait, and the pick wins when it answers first', async () => {
    // A wait of ~1 s, not ~46 ms: the quick answer must come within it even on a loaded machine.
    const { fra, nyc, router, send } = await setup(true, ['--hedge-delay', '1000']);
    expect((await send('/quick')).headers['x-edge-region']).toBe('fra');
    expect(nyc.requests).toHaveLength(0);
    // The hedge goes out after ~1 s; Frankfurt answers once it has reached New York, which answers later.
    fra.handler = afterOther(nyc, 'holds');
    nyc.handler = after(5_000);
    const res = await send('/race');
    expect(res.headers['x-edge-region']).toBe('fra');
    expect(res.headers['x-edge-route']).toBe('nearest');
    await until('the hedge is cut', () => nyc.requests.at(-1)?.done === true, 3_000);
    expect(nyc.requests.at(-1)).toMatchObject({ url: '/race', aborted: true });
    await until('logged', () => router.access.some((a) => a.path === '/race'), 5_000);
    expect(lastAccess(router, '/race')).toMatchObject({ region: 'fra', tried: ['fra'], hedgedTo: 'nyc' });
    expect(await metricsOf(router)).toMatch(/^edge_router_hedges_total\{region="nyc",result="lost"\} 1$/m);
  });

  it('waits for the pick when the hedge fails, and for the hedge when the pick fails', async () => {
    const { fra, nyc, send } = await setup();
    // The hedge (sent after ~46 ms) answers 503 at once, before Frankfurt answers: Frankfurt's own answer is still taken.
    fra.handler = afterOther(nyc, 'answered');
    nyc.handler = failing;
    const first = await send('/hedge-fails');
    expect([first.status, first.headers['x-edge-region'], first.headers['x-edge-route']]).toEqual([200, 'fra', 'nearest']);
    expect(nyc.requests.map((r) => r.url)).toEqual(['/hedge-fails']);
    // Frankfurt fails while the hedge is on its way: no third attempt, the hedge's answer is taken.
    fra.handler = afterOther(nyc, 'holds', failing);
    nyc.handler = afterOther(fra, 'answered');
    const second = await send('/pick-fails');
    expect([second.status, second.headers['x-edge-region'], second.headers['x-edge-route']]).toEqual([200, 'nyc', 'hedged:fra>nyc']);
    expect(fra.requests.map((r) => r.url)).toEqual(['/hedge-fails', '/pick-fails']);
  });

  it('does not ask a failed hedge\'s region again when the pick fails too, and frees both when the client leaves', async () => {
    const { fra, nyc, router, send, agent } = await setup();
    // The hedge fails first; Frankfurt fails once it has.
    fra.handler = afterOther(nyc, 'answered', failing);
    nyc.handler = after(100, failing);
    // atl, lax and syd have no orchestrator here (probed down): once both fail, nothing is left,
    // and the hedge's region is not asked a second time. Frankfurt's own 503 is relayed.
    const both = await send('/both-fail');
    expect([both.status, both.headers['x-edge-region']]).toEqual([503, 'fra']);
    expect(fra.requests.map((r) => r.url)).toEqual(['/both-fail']);
    expect(nyc.requests.map((r) => r.url)).toEqual(['/both-fail']);

    // A client that gives up while both are in flight: both upstream requests are cut, both slots freed.
    fra.handler = after(5_000);
    nyc.handler = after(5_000);
    const leaving = new AbortController();
    const pending = (agent as Agent).request({ origin: `https://${HOST}:${router.httpsPort}`, path: '/gone', method: 'GET', signal: leaving.signal }).catch(() => 'aborted');
    await until('both regions hold the request', () => fra.requests.at(-1)?.url === '/gone' && nyc.requests.at(-1)?.url === '/gone', 3_000);
    leaving.abort();
    expect(await pending).toBe('aborted');
    await until('both upstream requests are cut', () => fra.openRequests === 0 && nyc.openRequests === 0, 3_000);
    const metrics = await metricsOf(router);
    expect(metrics).toMatch(/^edge_router_region_outstanding\{region="fra",state="active"\} 0$/m);
    expect(metrics).toMatch(/^edge_router_region_outstanding\{region="nyc",state="active"\} 0$/m);
  });

  it.each(['stream reset', 'connection closed'] as const)('cuts both the pick and its hedge, and frees both slots, when an HTTP/2 client leaves mid-race (%s)', async (how) => {
    const { fra, nyc, router } = await setup();
    fra.handler = after(5_000);
    nyc.handler = after(5_000);
    const session = http2Connect(`https://${HOST}:${router.httpsPort}`, { rejectUnauthorized: false, host: '127.0.0.1', servername: HOST, localAddress: LONDON } as never);
    session.on('error', () => undefined);
    cleanup.push(async () => session.destroy());
    await once(session, 'connect');
    const stream = session.request({ ':method': 'GET', ':path': '/h2-gone', ':authority': HOST });
    stream.on('error', () => undefined);
    await until('both regions hold the request', () => fra.requests.at(-1)?.url === '/h2-gone' && nyc.requests.at(-1)?.url === '/h2-gone', 3_000);
    if (how === 'stream reset') stream.close(h2constants.NGHTTP2_CANCEL);
    else session.destroy();
    await until('both upstream requests are cut', () => fra.openRequests === 0 && nyc.openRequests === 0, 3_000);
    expect([fra.requests.at(-1)!.aborted, nyc.requests.at(-1)!.aborted]).toEqual([true, true]);
    await until('logged', () => router.access.some((a) => a.path === '/h2-gone'), 2_000);
    expect(lastAccess(router, '/h2-gone')).toMatchObject({ status: 499, error: 'client_closed', hedgedTo: 'nyc' });
    for (const region of ['fra', 'nyc']) expect(router.router.outstanding(region)).toMatchObject({ active: 0, queued: 0 });
    const metrics = await metricsOf(router);
    expect(metrics).toMatch(/^edge_router_region_outstanding\{region="fra",state="active"\} 0$/m);
    expect(metrics).toMatch(/^edge_router_region_outstanding\{region="nyc",state="active"\} 0$/m);
  });

  it('answers both failures alike whichever comes first: the last region\'s own answer', async () => {
    // Frankfurt fails once the hedge (sent at ~46 ms) has reached New York, then the hedge
    // fails too: its own 503 is relayed, as Frankfurt's is when the order is the other way round
    // (above). It was the router's 502 (seen in review).
    const { fra, nyc, send } = await setup();
    fra.handler = afterOther(nyc, 'holds', failing);
    nyc.handler = afterOther(fra, 'answered', failing);
    const both = await send('/pick-then-hedge-fail');
    expect([both.status, both.body, both.headers['x-edge-region']]).toEqual([503, 'busy', 'nyc']);
    expect(fra.requests.map((r) => r.url)).toEqual(['/pick-then-hedge-fail']);
    expect(nyc.requests.map((r) => r.url)).toEqual(['/pick-then-hedge-fail']);
  });

  it.each([
    ['the pick answers 503, then the hedge is refused', 'first'],
    ['the hedge is refused, then the pick answers 503', 'second'],
  ] as const)('relays the pick\'s own 503 whichever of its failure and the hedge\'s comes first (%s), and frees both slots', async (_order, pickFails) => {
    // A refusal (the connection dropped without an answer) is not an answer: the one region that
    // answered is relayed, whatever the order. With the pick first, it was the router's 502 `no
    // region could serve the request`, the 503 cut while the hedge raced (seen in review).
    const { fra, nyc, router, send } = await setup();
    const refusing: OriginHandler = (_req, res) => res.socket?.destroy();
    if (pickFails === 'first') {
      fra.handler = afterOther(nyc, 'holds', failing);
      nyc.handler = afterOther(fra, 'answered', refusing);
    } else {
      fra.handler = afterOther(nyc, 'answered', failing);
      nyc.handler = after(100, refusing);
    }
    const both = await send('/pick-503-hedge-refused');
    expect([both.status, both.body, both.headers['x-edge-region']]).toEqual([503, 'busy', 'fra']);
    expect(nyc.requests.map((r) => r.url)).toEqual(['/pick-503-hedge-refused']);
    await until('logged', () => router.access.some((a) => a.path === '/pick-503-hedge-refused'), 5_000);
    expect(lastAccess(router, '/pick-503-hedge-refused')).toMatchObject({ region: 'fra', tried: ['fra'], hedgedTo: 'nyc', status: 503 });
    for (const region of ['fra', 'nyc']) expect(router.router.outstanding(region)).toMatchObject({ active: 0, queued: 0 });
  });

  it('gives the pick\'s slot back as soon as its 503 is read, and takes the hedge\'s answer over it', async () => {
    // The refusal's few bytes are kept in memory: Frankfurt's connection and slot are free while
    // the hedge races on. New York answers only once they are (or fails after 5 s, and the client
    // gets Frankfurt's 503).
    const { fra, nyc, router, send } = await setup();
    fra.handler = afterOther(nyc, 'holds', failing);
    nyc.handler = afterOther(fra, 'answered', (req, res, seen) => {
      void until('fra\'s slot is free while the hedge races', () => router.router.outstanding('fra').active === 0, 5_000).then(() => echo(req, res, seen), () => res.destroy());
    });
    const res = await send('/held-then-hedge-answers');
    expect([res.status, res.headers['x-edge-region'], res.headers['x-edge-route']]).toEqual([200, 'nyc', 'hedged:fra>nyc']);
    await until('logged', () => router.access.some((a) => a.path === '/held-then-hedge-answers'), 5_000);
    expect(lastAccess(router, '/held-then-hedge-answers')).toMatchObject({ region: 'nyc', tried: ['fra', 'nyc'], status: 200 });
    for (const region of ['fra', 'nyc']) expect(router.router.outstanding(region)).toMatchObject({ active: 0, queued: 0 });
  });

  it('fails over to a third region when the pick and then the hedge it adopted both fail, and that region gets its slot back', async () => {
    // Frankfurt fails while the hedge is on its way; the hedge then answers 503 too. A third
    // attempt is allowed (--max-attempts 3): it must reach Atlanta. It was cut by the router as
    // it connected (taken for the first attempt's late callback once the hedge had been
    // adopted), so Atlanta never saw it, the client waited for its deadline, and the slot it
    // held at Atlanta was never given back (seen in review).
    const { fra, nyc, atl, router, send } = await setup(true, ['--timeout-standard', '8000'], true);
    fra.handler = afterOther(nyc, 'holds', failing);
    nyc.handler = afterOther(fra, 'answered', failing);
    const res = await send('/third');
    expect([res.status, res.headers['x-edge-region'], res.headers['x-edge-route']]).toEqual([200, 'atl', 'failover:nyc-error']);
    expect(atl!.requests.map((r) => r.url)).toEqual(['/third']);
    await until('logged', () => router.access.some((a) => a.path === '/third'), 5_000);
    expect(lastAccess(router, '/third')).toMatchObject({ region: 'atl', tried: ['fra', 'nyc', 'atl'], status: 200 });
    await until('every slot is back', async () => /^edge_router_region_outstanding\{region="atl",state="active"\} 0$/m.test(await metricsOf(router)), 5_000);
  });

  it('sends no hedge with --max-attempts 1: a hedge is a second attempt', async () => {
    const { fra, nyc, send } = await setup(true, ['--max-attempts', '1']);
    fra.handler = after(300);
    const res = await send('/one-attempt');
    expect([res.status, res.headers['x-edge-region'], res.headers['x-edge-route']]).toEqual([200, 'fra', 'nearest']);
    expect(nyc.requests).toHaveLength(0);
  });

  it('never hedges a request that could not be sent twice, nor a function that has not opted in', async () => {
    const { fra, nyc, send } = await setup();
    fra.handler = after(200);
    expect((await send('/order', 'POST', 'item=1')).headers['x-edge-region']).toBe('fra');
    expect(nyc.requests).toHaveLength(0);
    const plain = await setup(false);
    plain.fra.handler = after(200);
    expect((await plain.send('/read')).headers['x-edge-region']).toBe('fra');
    expect(plain.nyc.requests).toHaveLength(0);
  });
});

describe('cold-start hedging, first attempt still connecting', () => {
  it('keeps the hedge\'s answer whole when the first attempt fails to connect after losing, and frees its slot', async () => {
    // Frankfurt's orchestrator address accepts no connection: a listener whose one-place accept
    // queue is already full, so the router's connect hangs until its 1 s connect timeout.
    const port = await freePort();
    const blackhole = spawn('python3', ['-c', `import socket,time\ns=socket.socket()\ns.bind(("127.0.0.1",${port}))\ns.listen(0)\nprint("ready",flush=True)\ntime.sleep(60)`], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanup.push(async () => blackhole.kill('SIGKILL'));
    await once(blackhole.stdout!, 'data');
    const fillers = [connect(port, '127.0.0.1'), connect(port, '127.0.0.1')];
    cleanup.push(async () => fillers.forEach((f) => f.destroy()));
    await until('the accept queue is full', () => fillers[0]!.readyState === 'open', 3_000);

    const nyc = await TestOrigin.start('nyc');
    // No prober: its own connection to the black hole would hold the router's shutdown for seconds.
    // Both regions' health comes from the reports below.
    const router = await startTestRouter({ fra: `http://127.0.0.1:${port}`, nyc: nyc.url }, ['--routing', 'nearest', '--probe', 'off', '--hedge-delay', '20', '--admin-token', ADMIN_TOKEN], {}, []);
    const agent = agentFor(router.httpsPort, { localAddress: LONDON });
    cleanup.push(() => nyc.kill(), () => router.close(), () => agent.close());
    const { registry, watcher } = router.router;
    await registry.putFunction({ org: 'acme', fn: 'api', regions: null, tier: 'standard', enabled: true, hedge: true });
    const up = (region: string, functions: Array<{ fn: string; idle: number; busy: number; coldStartMs: number | null }>) =>
      registry.writeHeartbeat({ region, status: 'up', reportedAt: Date.now(), source: 'reporter', inFlight: 0, warmContainers: 4, latencyMs: { p50: 5, p99: 9 }, errorRate: 0, warmFunctions: functions.map((f) => f.fn), functions }, 60_000);
    await up('fra', []);
    await up('nyc', [{ fn: 'acme/api', idle: 4, busy: 0, coldStartMs: 250 }]);
    await until('fra up and nyc warm', () => watcher.snapshot.regions.get('fra')?.status === 'up' && watcher.snapshot.regions.get('nyc')?.status === 'up' && watcher.snapshot.regions.get('nyc')?.functionLoads.has('acme/api') === true && watcher.snapshot.functions.get('acme')?.get('api') !== undefined, 5_000);

    // New York answers at once but streams its body over 2 s: the first attempt's connect timeout
    // (1 s) lands in the middle of the hedge's response.
    nyc.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      let n = 0;
      const timer = setInterval(() => {
        res.write(`part ${n}\n`);
        if (++n === 10) {
          clearInterval(timer);
          res.end();
        }
      }, 200);
      res.on('close', () => clearInterval(timer));
    };
    const res = await get(agent, router.httpsPort, '/stream', { host: HOST });
    expect([res.status, res.headers['x-edge-route']]).toEqual([200, 'hedged:fra>nyc']);
    expect(res.body.split('\n').filter(Boolean)).toHaveLength(10);
    await until('both slots free again', async () => /edge_router_region_outstanding\{region="fra",state="active"\} 0$/m.test(await metricsOf(router)), 5_000);
    expect(await metricsOf(router)).toMatch(/^edge_router_region_outstanding\{region="nyc",state="active"\} 0$/m);
  }, 40_000);
});

describe('cold-start hedging under latency routing', () => {
  it('under latency routing, counts a racing hedge against its region\'s idle containers, and gives the count back when the hedge loses', async () => {
    // fra starts the function so fast (10 ms) that latency routing picks it, cold, before nyc's
    // idle container an ocean away; the hedge goes to nyc's, which holds what it is sent.
    const fra = await TestOrigin.start('fra');
    const nyc = await TestOrigin.start('nyc');
    const router = await startTestRouter({ fra: fra.url, nyc: nyc.url }, ['--routing', 'latency', ...PROBE_ONCE_FLAGS, '--hedge-delay', '40']);
    const agent = agentFor(router.httpsPort, { localAddress: LONDON });
    cleanup.push(() => fra.kill(), () => nyc.kill(), () => router.close(), () => agent.close());
    await reportIdleContainers(router, { nyc: 1, fra: 0 }, { coldStartMs: 10, hedge: true });
    const held: Array<() => void> = [];
    nyc.handler = (req, res, seen) => void held.push(() => echo(req, res, seen));
    const send = (path: string) => get(agent, router.httpsPort, path, { host: HOST });

    // A hedge that loses (fra answers first, once the hedge reached nyc) gives nyc's container back:
    // the next request hedges there again.
    fra.handler = afterOther(nyc, 'holds');
    expect((await send('/lost')).headers['x-edge-region']).toBe('fra');
    expect(nyc.requests.map((r) => r.url)).toEqual(['/lost']);
    await until('the losing hedge is cut', () => nyc.requests.at(-1)?.done === true, 5_000);
    expect((await send('/lost-again')).headers['x-edge-region']).toBe('fra');
    expect(nyc.requests.map((r) => r.url)).toEqual(['/lost', '/lost-again']);
    await until('the losing hedge is cut', () => nyc.requests.at(-1)?.done === true, 5_000);

    // While a hedge races, it holds nyc's one container: a request meanwhile is not hedged there.
    held.splice(0);
    fra.handler = (req, res, seen) => after(req.url === '/racing' ? 5_000 : 400)(req, res, seen);
    const racing = send('/racing');
    await until('the hedge reaches nyc', () => nyc.requests.length === 3, 5_000);
    expect((await send('/meanwhile')).headers['x-edge-region']).toBe('fra');
    expect(nyc.requests.map((r) => r.url)).toEqual(['/lost', '/lost-again', '/racing']);
    for (const release of held) release();
    expect((await racing).headers['x-edge-route']).toBe('hedged:fra>nyc');
  });

  it('frees the first region\'s count as soon as its attempt fails while a hedge races (it holds no container there)', async () => {
    const fra = await TestOrigin.start('fra');
    const nyc = await TestOrigin.start('nyc');
    const router = await startTestRouter({ fra: fra.url, nyc: nyc.url }, ['--routing', 'latency', ...PROBE_ONCE_FLAGS, '--hedge-delay', '40', '--admin-token', ADMIN_TOKEN]);
    const agent = agentFor(router.httpsPort, { localAddress: LONDON });
    cleanup.push(() => fra.kill(), () => nyc.kill(), () => router.close(), () => agent.close());
    // fra: one idle container, starts the function in 10 ms; nyc: one idle container, an ocean away.
    await reportIdleContainers(router, { fra: 1, nyc: 1 }, { coldStartMs: 10, hedge: true });
    const idleIn = async (region: string) => {
      const res = await request(`http://127.0.0.1:${router.adminPort}/api/route?host=${HOST}&ip=${LONDON}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      const body = (await res.body.json()) as { estimates: Array<{ region: string; idleWarm: number }> };
      return body.estimates.find((e) => e.region === region)!.idleWarm;
    };
    const send = (path: string) => get(agent, router.httpsPort, path, { host: HOST });
    const held: Record<string, () => void> = {};
    cleanup.push(async () => Object.values(held).forEach((release) => release()));
    const hold: OriginHandler = (req, res, seen) => void (held[req.url!] = () => void (res.headersSent || res.destroyed || echo(req, res, seen)));
    // /hold takes fra's one container and keeps it; /raced goes to fra (cold), is hedged to nyc,
    // and fra refuses it (503) while the hedge still waits at nyc.
    fra.handler = (req, res, seen) => {
      if (req.url === '/hold') return hold(req, res, seen);
      setTimeout(() => {
        res.writeHead(503);
        res.end('busy');
      }, 150);
    };
    nyc.handler = hold;
    const holding = send('/hold');
    await until('/hold waits at fra', () => held['/hold'] !== undefined, 5_000);
    const raced = send('/raced');
    await until('the hedge waits at nyc', () => held['/raced'] !== undefined, 5_000);
    await until('fra refused /raced', () => fra.requests.find((r) => r.url === '/raced')?.done === true, 5_000);
    held['/hold']!();
    expect((await holding).status).toBe(200);
    // fra holds nothing of this router's now: /hold is over and /raced was refused there.
    expect(await idleIn('fra')).toBe(1);
    held['/raced']!();
    expect((await raced).headers['x-edge-route']).toBe('hedged:fra>nyc');
    expect(await idleIn('fra')).toBe(1);
  });
});
