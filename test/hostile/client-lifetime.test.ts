/**
 * Every upstream request lives only as long as its client (issue #9, defects 1, 4 and 5): a
 * client that leaves — a dead pipelined connection, a queued request abandoned, an HTTP/2 stream
 * reset — frees its upstream connection and queue place, is never delivered later, and leaves
 * one access-log line (499).
 */
import { once } from 'node:events';
import { connect as http2Connect, constants as h2constants } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { agentFor, get, getH2, HOST } from '../support/clients.js';
import { ADMIN_TOKEN, Cleanup, connectionsRefusedAt, getLine, hostileSetup, largeBody, LONDON, openSilentTls, packedResetBurst, pipelineAndLeave, rapidReset, refusedAtConnect } from '../support/hostile.js';
import { echo } from '../support/origin.js';
import { until } from '../support/until.js';

const cleanup = new Cleanup();
afterEach(cleanup.run);
const setup = (flags: string[]) => hostileSetup(cleanup, flags);

/**
 * One connection from LONDON: `streams` requests, reset once the router has had them long enough
 * to send them on (not in the same read as their HEADERS, which nghttp2 drops before any work),
 * then the connection closed. Returns the GOAWAYs the router sent (1 when it judged a flood).
 */
async function resetOnceDispatched(port: number, streams: number, path: string): Promise<number> {
  const session = http2Connect(`https://${HOST}:${port}`, { rejectUnauthorized: false, host: '127.0.0.1', servername: HOST, localAddress: LONDON } as never);
  session.on('error', () => undefined);
  let goaways = 0;
  session.on('goaway', () => goaways++);
  await new Promise<void>((resolve) => {
    session.once('connect', () => resolve());
    session.once('close', () => resolve());
  });
  const open = [];
  for (let i = 0; i < streams && !session.closed && !session.destroyed; i++) {
    try {
      const stream = session.request({ ':path': `${path}/${i}`, ':method': 'GET', ':authority': HOST });
      stream.on('error', () => undefined);
      open.push(stream);
    } catch {
      break; // the router ended the session
    }
  }
  await new Promise((r) => setTimeout(r, 50));
  for (const stream of open) if (!stream.destroyed) stream.close(h2constants.NGHTTP2_CANCEL);
  await new Promise((r) => setTimeout(r, 50));
  session.close();
  await new Promise<void>((resolve) => {
    if (session.destroyed) resolve();
    else session.once('close', () => resolve());
    setTimeout(resolve, 3_000).unref();
  });
  session.destroy();
  return goaways;
}

describe('hostile clients: upstream resources follow the client', () => {
  it('frees every upstream connection of pipelined requests whose client disconnected without reading', async () => {
    const { fra, router, agent, idleAt } = await setup(['--pool-connections', '8']);
    fra.handler = largeBody();
    fra.recordBodies = false;
    // Ten clients, three pipelined large GETs each: 30 requests for 8 connections.
    await Promise.all(Array.from({ length: 10 }, (_, i) => pipelineAndLeave(router.httpsPort, [`/big/${i}/a`, `/big/${i}/b`, `/big/${i}/c`], 300, LONDON)));
    await until('the router lets go of fra', () => idleAt('fra') && fra.openRequests === 0);
    // One access-log line per request, each a client that left.
    await until('30 access-log lines', () => router.access.filter((a) => a.path.startsWith('/big/')).length === 30);
    const lines = router.access.filter((a) => a.path.startsWith('/big/'));
    expect(lines.filter((a) => a.status !== 499 || a.error !== 'client_closed')).toEqual([]);
    // The region serves others at once.
    fra.handler = echo;
    const res = await get(agent, router.httpsPort, '/after');
    expect(res.status).toBe(200);
    expect(res.headers['x-edge-region']).toBe('fra');
  });

  it('never delivers a queued request whose client left, and logs it as 499', async () => {
    const { fra, router, agent, idleAt } = await setup(['--pool-connections', '1']);
    const held: Array<() => void> = [];
    fra.handler = (_req, res) => held.push(() => res.end('done'));
    // One request holds fra's only connection.
    const holder = get(agent, router.httpsPort, '/hold');
    await until('fra holds /hold', () => held.length === 1);
    // Another client's request waits for that connection, then the client leaves.
    const waiting = await openSilentTls(router.httpsPort, LONDON);
    waiting.write(getLine('/abandoned'));
    await until('/abandoned is queued', () => router.router.outstanding('fra').queued === 1);
    waiting.destroy();
    await until('/abandoned logged', () => router.access.some((a) => a.path === '/abandoned'));
    expect(router.access.find((a) => a.path === '/abandoned')).toMatchObject({ status: 499, error: 'client_closed', tried: ['fra'] });
    expect(router.router.outstanding('fra')).toMatchObject({ active: 1, queued: 0 });
    held.shift()!();
    expect((await holder).status).toBe(200);
    await until('fra idle', () => idleAt('fra'));
    expect(fra.requests.map((r) => r.url)).toEqual(['/hold']);
  });

  it('never delivers a pipelined request queued behind one whose connection died', async () => {
    const { fra, router, idleAt } = await setup(['--pool-connections', '1']);
    fra.handler = () => undefined; // never answers
    await pipelineAndLeave(router.httpsPort, ['/first', '/second'], 300, LONDON);
    await until('both logged', () => router.access.filter((a) => a.path === '/first' || a.path === '/second').length === 2);
    await until('fra idle', () => idleAt('fra') && fra.openRequests === 0);
    expect(fra.requests.map((r) => r.url)).toEqual(['/first']);
    expect(router.access.filter((a) => a.path === '/first' || a.path === '/second').map((a) => a.status)).toEqual([499, 499]);
  });

  it('survives an HTTP/2 rapid reset: reset streams free their upstream requests, and everyone else is served', async () => {
    // No penalty box here: each of the five connections is to be judged by the guard itself.
    const { fra, router, agent, idleAt } = await setup(['--flood-penalty', '0']);
    fra.handler = (_req, res) => setTimeout(() => res.end('late'), 200).unref();
    const attack = await rapidReset(router.httpsPort, 5, 1_000);
    expect(attack.opened).toBeGreaterThan(0);
    // Every connection resets all its streams: once 100 streams were opened, each is closed as a flood.
    const metrics = await (await request(`http://127.0.0.1:${router.adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body.text();
    expect(metrics).toMatch(/^edge_router_connections_refused_total\{reason="reset_flood"\} 5$/m);
    // Within the origin's own answer time (200 ms) plus the time to work through the backlog; not the
    // 10 s body timeout, the 30 s send timeout or the upstream keep-alive, which would free them too.
    await until('fra idle after the resets', () => idleAt('fra') && fra.openRequests === 0, 5_000);
    fra.handler = echo;
    const h1 = await get(agent, router.httpsPort, '/h1-after');
    expect(h1.status).toBe(200);
    const h2res = await getH2(router.httpsPort, '/h2-after');
    expect(h2res.headers[':status']).toBe(200);
    const reached = fra.requests.filter((r) => r.url.startsWith('/reset/')).length;
    console.log(`rapid reset: ${attack.opened} streams opened and reset, ${attack.goaways} GOAWAYs, ${reached} reached the origin`);
  }, 30_000);

  it('does no request work for HTTP/2 streams reset in the same read as their HEADERS, and closes the connection', async () => {
    const { fra, router, agent } = await setup(['--flood-penalty', '0']);
    const burst = await packedResetBurst(router.httpsPort, 150, '/packed');
    expect(burst.closed).toBe(true); // judged a flood: every stream reset
    const packed = () => router.access.filter((a) => a.path.startsWith('/packed/'));
    // nghttp2 refuses what follows the GOAWAY; every stream the router did take is logged once.
    await until('the streams taken are logged', () => packed().length >= 100);
    expect(new Set(packed().map((a) => `${a.status} ${a.error} ${a.fn}`))).toEqual(new Set(['499 client_closed null']));
    expect(fra.requests.filter((r) => r.url.startsWith('/packed/'))).toEqual([]);
    expect((await get(agent, router.httpsPort, '/after-burst')).status).toBe(200);
  });

  it('serves pipelined requests one at a time: the next goes to the region when the one before it is answered', async () => {
    const { fra, router } = await setup([]);
    const held: Array<() => void> = [];
    fra.handler = (_req, res) => held.push(() => res.end('done'));
    const socket = await openSilentTls(router.httpsPort, LONDON);
    cleanup.add(() => socket.destroy());
    socket.resume();
    let received = '';
    socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
    socket.write(getLine('/one') + getLine('/two') + getLine('/three'));
    await until('/one reaches fra', () => held.length === 1);
    // The other two wait at the router, not at the region.
    await new Promise((r) => setTimeout(r, 100));
    expect(fra.requests.map((r) => r.url)).toEqual(['/one']);
    held.shift()!();
    await until('/two reaches fra once /one is answered', () => held.length === 1 && fra.requests.length === 2);
    held.shift()!();
    await until('/three', () => held.length === 1);
    held.shift()!();
    await until('three answers', () => (received.match(/HTTP\/1\.1 200/g) ?? []).length === 3);
    expect(fra.requests.map((r) => r.url)).toEqual(['/one', '/two', '/three']);
  });

  it('judges an address whose connections each reset fewer streams than one connection is judged by', async () => {
    // Seen in review: 99 streams reset, then a new connection, was never judged (the guard needs
    // 100 streams of one connection), bounded only by the connect rate. Each connection here
    // resets 60: the address's second or third is closed as a flood, and the address refused. The
    // penalty outlasts the test (a 1.5 s one ran out on a loaded host before '/again' was asked).
    const { fra, router } = await setup(['--flood-penalty', '30000']);
    fra.handler = (_req, res) => setTimeout(() => res.end('late'), 200).unref();
    let goaways = 0;
    for (let i = 0; i < 4; i++) goaways += await resetOnceDispatched(router.httpsPort, 60, `/spread-${i}`);
    expect(goaways).toBe(1);
    // The streams did reach the router (and fra): not refused by nghttp2 as reset in their HEADERS' read.
    await until('the streams taken are logged', () => router.access.filter((a) => a.path.startsWith('/spread-')).length >= 100);
    const metrics = await (await request(`http://127.0.0.1:${router.adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body.text();
    expect(metrics).toMatch(/^edge_router_connections_refused_total\{reason="reset_flood"\} 1$/m);
    const again = agentFor(router.httpsPort, { localAddress: LONDON });
    cleanup.add(() => again.destroy());
    expect(await get(again, router.httpsPort, '/again').then((r) => r.status, (e: Error & { code?: string }) => e.code ?? e.message)).not.toBe(200);
    const other = agentFor(router.httpsPort, { localAddress: '127.8.0.9' });
    cleanup.add(() => other.destroy());
    expect((await get(other, router.httpsPort, '/someone-else')).status).toBe(200);
  });

  it('refuses an address that floods again soon after its penalty for twice as long', async () => {
    const { router } = await setup(['--flood-penalty', '3000']);
    expect((await packedResetBurst(router.httpsPort, 150, '/first', { localAddress: LONDON })).closed).toBe(true);
    expect(await refusedAtConnect(router.httpsPort, LONDON)).toBe(true);
    // Asked every 200 ms: faster, the asking itself would meet the per-address connect rate.
    const letIn = async () => {
      await new Promise((r) => setTimeout(r, 200));
      return !(await refusedAtConnect(router.httpsPort, LONDON));
    };
    await until('the first penalty is over', letIn, 10_000);
    // Back the moment it is let in, and flooding again: 6 s this time. Asked 4 s after, a second
    // past the base penalty, with 2 s to spare for a slow host.
    expect((await packedResetBurst(router.httpsPort, 150, '/second', { localAddress: LONDON })).closed).toBe(true);
    const floodedAt = Date.now();
    const refusedBefore = await connectionsRefusedAt(router.adminPort, 'penalty');
    await new Promise((r) => setTimeout(r, 4_000 - (Date.now() - floodedAt)));
    expect(await refusedAtConnect(router.httpsPort, LONDON)).toBe(true);
    expect(await connectionsRefusedAt(router.adminPort, 'penalty')).toBe(refusedBefore + 1); // refused by the penalty box, not by anything else
    expect(await refusedAtConnect(router.httpsPort, '127.8.0.9')).toBe(false); // no one else
    // Twice the base, not more: let in again after 6 s (asked by 12 s, for a slow host).
    await until('the second penalty is over', letIn, 8_000);
    expect(Date.now() - floodedAt).toBeGreaterThan(5_000); // its trip came a little before floodedAt
  }, 40_000);

  it('refuses connections from an address that flooded, for the penalty time only, and from no one else', async () => {
    const { router, agent } = await setup(['--flood-penalty', '1500']);
    await rapidReset(router.httpsPort, 1, 300, { path: '/flood', localAddress: LONDON });
    const refusedAt = Date.now();
    const again = await get(agent, router.httpsPort, '/again').then((r) => r.status, (e: Error & { code?: string }) => e.code ?? e.message);
    expect(again).not.toBe(200); // the same address (127.8.0.1) is refused at connect
    const other = agentFor(router.httpsPort, { localAddress: '127.8.0.9' });
    cleanup.add(() => other.destroy());
    expect((await get(other, router.httpsPort, '/someone-else')).status).toBe(200);
    // Once the penalty is over the address may connect again.
    await until('the penalty is over', () => Date.now() - refusedAt > 1_600);
    const fresh = agentFor(router.httpsPort, { localAddress: LONDON });
    cleanup.add(() => fresh.destroy());
    expect((await get(fresh, router.httpsPort, '/after-penalty')).status).toBe(200);
    const metrics = await (await request(`http://127.0.0.1:${router.adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body.text();
    expect(metrics).toMatch(/^edge_router_connections_refused_total\{reason="penalty"\} [1-9]/m);
  });

  it('judges a connection whose streams are mostly refused for its address quota (429) as a flood, like resets', async () => {
    const { fra, router } = await setup(['--max-requests-per-ip', '4', '--flood-penalty', '0']);
    fra.handler = () => undefined; // holds every request: four in progress, the rest refused
    const session = http2Connect(`https://${HOST}:${router.httpsPort}`, { rejectUnauthorized: false, host: '127.0.0.1', servername: HOST, localAddress: LONDON } as never);
    session.on('error', () => undefined);
    cleanup.add(() => session.destroy());
    await once(session, 'connect');
    const statuses: number[] = [];
    for (let i = 0; i < 150 && !session.closed && !session.destroyed; i++) {
      try {
        const stream = session.request({ ':method': 'GET', ':path': `/many/${i}`, ':authority': HOST });
        stream.on('error', () => undefined);
        stream.on('response', (h) => statuses.push(Number(h[':status'])));
        stream.resume();
      } catch {
        break;
      }
      if (i % 20 === 19) await new Promise((r) => setTimeout(r, 5));
    }
    await until('the router closes the connection', () => session.closed || session.destroyed, 5_000);
    // The client resets nothing and the origin answers nothing: only the refusals can have tripped
    // the guard. (How many 429s reach the client before the connection goes varies with load.)
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    expect(statuses.filter((s) => s !== 429)).toEqual([]);
    const metrics = await (await request(`http://127.0.0.1:${router.adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body.text();
    expect(metrics).toMatch(/^edge_router_connections_refused_total\{reason="reset_flood"\} 1$/m);
  });

  it('does not judge a connection refused because another connection of its address holds the allowance (hosts behind one NAT address or in one /64)', async () => {
    const { fra, router } = await setup(['--max-requests-per-ip', '4', '--flood-penalty', '0']);
    fra.handler = () => undefined; // holds every request
    const connect = async () => {
      const session = http2Connect(`https://${HOST}:${router.httpsPort}`, { rejectUnauthorized: false, host: '127.0.0.1', servername: HOST, localAddress: LONDON } as never);
      session.on('error', () => undefined);
      cleanup.add(() => session.destroy());
      await once(session, 'connect');
      return session;
    };
    const open = (session: ReturnType<typeof http2Connect>, path: string, statuses: number[]) => {
      const stream = session.request({ ':method': 'GET', ':path': path, ':authority': HOST });
      stream.on('error', () => undefined);
      stream.on('response', (h) => statuses.push(Number(h[':status'])));
      stream.resume();
    };
    // One host's connection takes the address's four.
    const holder = await connect();
    for (let i = 0; i < 4; i++) open(holder, `/held/${i}`, []);
    await until('four requests held at the region', () => fra.requests.filter((r) => r.url.startsWith('/held/')).length === 4, 5_000);
    // Another host of the same address: each of its requests is refused, none of them its own doing.
    const other = await connect();
    const statuses: number[] = [];
    for (let i = 0; i < 150; i++) {
      open(other, `/other/${i}`, statuses);
      if (i % 20 === 19) await new Promise((r) => setTimeout(r, 5));
    }
    await until('every request answered', () => statuses.length === 150, 10_000);
    expect(statuses.filter((s) => s !== 429)).toEqual([]);
    expect(other.closed || other.destroyed).toBe(false);
    const metrics = await (await request(`http://127.0.0.1:${router.adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body.text();
    expect(metrics).toMatch(/^edge_router_connections_refused_total\{reason="reset_flood"\} 0$/m);
  });

  it('does not judge a trusted proxy\'s connection for the 429s of one client behind it (its streams are many clients\')', async () => {
    // One client behind the proxy past its own allowance: the connection holds its four and the
    // refusals look like half its streams. The guard's GOAWAY cut every other client's requests on
    // the proxy's connection, again and again (no penalty for a trusted peer; seen in review).
    const { fra, router } = await setup(['--max-requests-per-ip', '4', '--flood-penalty', '0', '--trusted-proxies', LONDON]);
    fra.handler = () => undefined; // holds every request
    const proxy = http2Connect(`https://${HOST}:${router.httpsPort}`, { rejectUnauthorized: false, host: '127.0.0.1', servername: HOST, localAddress: LONDON } as never);
    proxy.on('error', () => undefined);
    cleanup.add(() => proxy.destroy());
    await once(proxy, 'connect');
    const statuses: number[] = [];
    for (let i = 0; i < 150; i++) {
      const stream = proxy.request({ ':method': 'GET', ':path': `/behind/${i}`, ':authority': HOST, 'x-forwarded-for': '127.8.0.2' });
      stream.on('error', () => undefined);
      stream.on('response', (h) => statuses.push(Number(h[':status'])));
      stream.resume();
      if (i % 20 === 19) await new Promise((r) => setTimeout(r, 5));
    }
    await until('every refusal answered', () => statuses.length === 146, 10_000);
    expect(statuses.filter((s) => s !== 429)).toEqual([]);
    expect(fra.requests.filter((r) => r.url.startsWith('/behind/'))).toHaveLength(4);
    expect(proxy.closed || proxy.destroyed).toBe(false);
    const metrics = await (await request(`http://127.0.0.1:${router.adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body.text();
    expect(metrics).toMatch(/^edge_router_connections_refused_total\{reason="reset_flood"\} 0$/m);
  });

  it("closes the flooding address's other HTTP/2 connections too, and no one else's", async () => {
    const { router } = await setup(['--flood-penalty', '2000']);
    const connectFrom = async (localAddress: string) => {
      const session = http2Connect(`https://${HOST}:${router.httpsPort}`, { rejectUnauthorized: false, host: '127.0.0.1', servername: HOST, localAddress } as never);
      session.on('error', () => undefined);
      cleanup.add(() => session.destroy());
      await once(session, 'connect');
      return session;
    };
    const sameAddress = await connectFrom(LONDON);
    const otherAddress = await connectFrom('127.8.0.9');
    await rapidReset(router.httpsPort, 1, 300, { path: '/flood', localAddress: LONDON });
    await until("the same address's idle connection is closed", () => sameAddress.closed || sameAddress.destroyed, 5_000);
    expect(otherAddress.closed || otherAddress.destroyed).toBe(false);
    const ping = otherAddress.request({ ':method': 'GET', ':path': '/still-served', ':authority': HOST });
    ping.resume();
    const [headers] = (await once(ping, 'response')) as [Record<string, unknown>];
    expect(headers[':status']).toBe(200);
  });

  it.each([
    ['NO_ERROR', h2constants.NGHTTP2_NO_ERROR],
    // The code of the router's own cuts, once skipped by it: a client that reset with it was never counted.
    ['INTERNAL_ERROR', h2constants.NGHTTP2_INTERNAL_ERROR],
  ])('counts resets a client sends with %s as resets too', async (_name, code) => {
    const { router } = await setup([]);
    await rapidReset(router.httpsPort, 1, 500, { path: '/quiet-reset', code });
    const metrics = await (await request(`http://127.0.0.1:${router.adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body.text();
    expect(metrics).toMatch(/^edge_router_connections_refused_total\{reason="reset_flood"\} 1$/m);
  });

  it('survives a connection that drops with 120 streams open (every stream aborts at once)', async () => {
    // Enough open streams to be judged by the reset-flood guard, none of them a client reset.
    const { fra, router, agent } = await setup(['--max-requests-per-ip', '1000']);
    const session = http2Connect(`https://${HOST}:${router.httpsPort}`, { rejectUnauthorized: false, host: '127.0.0.1', servername: HOST, localAddress: LONDON } as never);
    session.on('error', () => undefined);
    await once(session, 'connect');
    for (let i = 0; i < 120; i++) {
      const stream = session.request({ ':method': 'POST', ':path': `/open/${i}`, ':authority': HOST }, { endStream: false });
      stream.on('error', () => undefined);
      stream.write('partial body');
    }
    // An answer on a later stream means the router has taken every stream before it.
    const ping = session.request({ ':method': 'GET', ':path': '/ping', ':authority': HOST });
    ping.on('error', () => undefined);
    ping.resume();
    await once(ping, 'response');
    session.destroy(); // the TCP connection goes: every open stream aborts at once
    await until('every stream is logged', () => router.access.filter((a) => a.path.startsWith('/open/')).length === 120, 10_000);
    expect(fra.requests.map((r) => r.url)).toEqual(['/ping']); // no partial body went anywhere
    expect(new Set(router.access.filter((a) => a.path.startsWith('/open/')).map((a) => `${a.status} ${a.error}`))).toEqual(new Set(['499 client_closed']));
    expect((await get(agent, router.httpsPort, '/still-alive')).status).toBe(200);
    const metrics = await (await request(`http://127.0.0.1:${router.adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body.text();
    expect(metrics).toMatch(/^edge_router_connections_refused_total\{reason="reset_flood"\} 0$/m);
  });

  it('survives a connection that dies while some of its streams still wait their turn (their socket is gone when they are looked at)', async () => {
    const { router, agent } = await setup(['--max-requests-per-ip', '1000']);
    for (let round = 0; round < 5; round++) {
      const tls = tlsConnect({ port: router.httpsPort, host: '127.0.0.1', servername: HOST, ALPNProtocols: ['h2'], rejectUnauthorized: false, localAddress: LONDON } as never);
      tls.on('error', () => undefined);
      const session = http2Connect(`https://${HOST}`, { createConnection: () => tls });
      session.on('error', () => undefined);
      await once(session, 'remoteSettings');
      // More than one turn's worth (8 per connection): the rest wait for the next turn, by which
      // time the connection is gone.
      for (let i = 0; i < 40; i++) session.request({ ':path': `/waiting/${round}/${i}`, ':authority': HOST }).on('error', () => undefined);
      setImmediate(() => tls.destroy());
      await once(session, 'close');
    }
    await until('every stream is logged', () => router.access.filter((a) => a.path.startsWith('/waiting/')).length === 200, 10_000);
    expect((await get(agent, router.httpsPort, '/still-alive')).status).toBe(200);
  });

  it('ends an HTTP/2 upload its function answered early: a client still sending is reset NO_ERROR after the whole answer, not kept', async () => {
    // Seen in review: the exchange was over (access line, quota and slot given back), and the
    // stream stayed open for as long as its client kept the upload going, up to a window of body
    // held in the router for each, none of it counted as a request in progress.
    const { fra, router } = await setup(['--body-buffer', '1KiB']);
    fra.recordBodies = false;
    fra.handler = (_req, res) => res.writeHead(401, { 'content-type': 'text/plain' }).end('not you');
    const session = http2Connect(`https://${HOST}:${router.httpsPort}`, { rejectUnauthorized: false, host: '127.0.0.1', servername: HOST, localAddress: LONDON } as never);
    session.on('error', () => undefined);
    cleanup.add(() => session.destroy());
    await once(session, 'connect');
    const stream = session.request({ ':method': 'POST', ':path': '/early-answer', ':authority': HOST });
    stream.on('error', () => undefined);
    let body = '';
    stream.on('data', (chunk: Buffer) => (body += chunk.toString()));
    stream.write(Buffer.alloc(8 * 1024, 0x61)); // past the body buffer: it streams; never ended
    await until('the router closed the stream', () => stream.closed, 5_000);
    expect({ body, rstCode: stream.rstCode }).toEqual({ body: 'not you', rstCode: h2constants.NGHTTP2_NO_ERROR });
    expect(router.access.find((a) => a.path === '/early-answer')).toMatchObject({ status: 401, error: null });
  });

  it('closes an HTTP/1.1 connection whose upload its function answered early, rather than promising keep-alive on a body nobody reads', async () => {
    // Seen in review: the answer said `Connection: keep-alive`, but the rest of the body was
    // nobody's (the exchange was over, Node does not discard a body someone began to read): the
    // connection sat with it until --client-request-timeout (5 min), and a keep-alive client's next
    // request on it was never answered.
    const { fra, router } = await setup(['--body-buffer', '1KiB']);
    fra.recordBodies = false;
    fra.handler = (_req, res) => res.writeHead(401, { 'content-type': 'text/plain', 'content-length': '7' }).end('not you');
    const client = await openSilentTls(router.httpsPort, LONDON);
    client.on('error', () => undefined);
    cleanup.add(() => client.destroy());
    let received = '';
    client.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    client.resume();
    const size = 64 * 1024;
    client.write(`POST /early-answer-h1 HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: ${size}\r\n\r\n`);
    client.write(Buffer.alloc(8 * 1024, 0x61)); // past the body buffer: it streams
    await until('the answer', () => received.includes('not you'), 5_000);
    // The rest of the body, then the client's next request on the connection it was told it could keep.
    client.write(Buffer.alloc(size - 8 * 1024, 0x61));
    client.write(getLine('/after-early-answer'));
    await until('the connection answered or closed', () => client.destroyed || client.readableEnded || received.includes('/after-early-answer') || /HTTP\/1\.1 200/.test(received), 5_000);
    // Either is honest: the next request answered, or the connection closed having said it would.
    const head = received.slice(0, received.indexOf('\r\n\r\n'));
    if (!/HTTP\/1\.1 200/.test(received)) expect(head).toMatch(/\r\nConnection: close/i);
    expect(router.access.find((a) => a.path === '/early-answer-h1')).toMatchObject({ status: 401, error: null });
  });

  it('cuts a client that stops reading a response after the send timeout, freeing the upstream connection', async () => {
    const { fra, router, idleAt } = await setup(['--send-timeout', '1000']);
    fra.handler = largeBody();
    const reader = await openSilentTls(router.httpsPort, LONDON);
    reader.on('error', () => undefined);
    cleanup.add(() => reader.destroy());
    reader.write(getLine('/never-read'));
    await until('/never-read logged', () => router.access.some((a) => a.path === '/never-read'), 10_000);
    expect(router.access.find((a) => a.path === '/never-read')).toMatchObject({ status: 200, error: 'send_timeout' });
    await until('fra idle', () => idleAt('fra') && fra.openRequests === 0);
  });
});
