/**
 * Every wait has a deadline and every queue a bound (issue #9, defects 2, 3 and 6): requests
 * waiting for an upstream connection answer within their tier deadline, move on when their region
 * goes down, and show in the in-flight count; slow uploads hold no upstream connection and get
 * 408; one address cannot take more than its share.
 */
import { connect as http2Connect } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { agentFor, get, HOST, type SimpleResponse } from '../support/clients.js';
import { ADMIN_TOKEN, Cleanup, hostileSetup, LONDON, okAfterBody } from '../support/hostile.js';
import { echo, type TestOrigin } from '../support/origin.js';
import { rawRequest, uploadThenRead } from '../support/raw.js';
import { PROBE_ONCE_FLAGS } from '../support/router.js';
import { until } from '../support/until.js';

const cleanup = new Cleanup();
afterEach(cleanup.run);

async function setup(flags: string[]) {
  const env = await hostileSetup(cleanup, flags);
  const timed = async (path: string, method = 'GET'): Promise<SimpleResponse & { elapsedMs: number }> => {
    const started = Date.now();
    const res = await get(env.agent, env.router.httpsPort, path, { method });
    return { ...res, elapsedMs: Date.now() - started };
  };
  return { ...env, timed };
}

/** Answers held requests as they arrive until every one of `pending` has settled. */
async function releaseUntilSettled<T>(pending: Array<Promise<T>>, holds: Array<Array<() => void>>): Promise<T[]> {
  let settled = false;
  const all = Promise.all(pending).finally(() => (settled = true));
  while (!settled) {
    for (const held of holds) for (const release of held.splice(0)) release();
    await new Promise((r) => setTimeout(r, 10));
  }
  return all;
}

/** Holds every request the origin gets until released. */
function hold(origin: TestOrigin): Array<() => void> {
  const held: Array<() => void> = [];
  origin.handler = (_req, res) => held.push(() => res.end(origin.name));
  return held;
}

describe('hostile clients: bounded waits and queues', () => {
  it('answers requests waiting for a connection within the tier deadline, not after it', async () => {
    const deadlineMs = 2_000;
    // Probed once, at the start: fra is held by requests, not by its health, and probes every
    // 100 ms with the usual 300 ms budget could fail in a row on a loaded machine and take it down.
    const { fra, router, agent, timed } = await setup(['--timeout-standard', String(deadlineMs), '--pool-connections', '4', ...PROBE_ONCE_FLAGS]);
    // The client's 12 connections opened first, so that the 12 requests arrive together: spread
    // over a loaded machine's TLS handshakes, the late ones came after fra's first timeouts and
    // were rightly routed to nyc instead.
    const warming = hold(fra);
    await releaseUntilSettled(Array.from({ length: 12 }, (_, i) => get(agent, router.httpsPort, `/warm/${i}`)), [warming]);
    fra.handler = () => undefined; // never answers
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => timed(`/stuck/${i}`)));
    await until('an access line for each answer', () => router.access.filter((a) => a.path.startsWith('/stuck/')).length === 12);
    const lines = router.access.filter((a) => a.path.startsWith('/stuck/'));
    expect(lines.map((a) => [a.status, a.error])).toEqual(Array(12).fill([504, 'upstream_timeout']));
    expect(answers.map((a) => a.status)).toEqual(Array(12).fill(504));
    // 4 held connections, 8 waiting for one: the wait is part of the deadline, so none takes its
    // deadline twice over (the defect: queued requests got a fresh deadline once dispatched).
    // Timed as the router times a request (its access line, from the request's arrival to its
    // answer), which is what the deadline bounds: the client's own clock also counts the TLS
    // handshakes of the connections its agent opens, seconds on a loaded machine.
    for (const line of lines) {
      expect(line.totalMs).toBeGreaterThanOrEqual(deadlineMs - 50);
      expect(line.totalMs).toBeLessThan(2 * deadlineMs);
    }
    // (How many reached fra depends on how spread out the 12 arrivals were: a waiter admitted when
    // a slot frees is dispatched with what is left of its own deadline.)
  });

  it('moves waiting requests, and idempotent ones awaiting headers, to the next region when theirs goes down; a sent POST stays', async () => {
    // One organisation's requests, so its share is the whole region (the slots are what is tested).
    // Probed every 100 ms, so that fra's going down is seen soon, but each probe with a budget no
    // loaded machine uses up: with 300 ms, three slow probes in a row took a healthy fra (or nyc)
    // down while the GETs arrived, and they went to nyc instead of waiting at fra. An unhealthy fra
    // answers its probes at once, and is down after three of them as before.
    const { fra, nyc, router, agent, timed } = await setup(['--pool-connections', '2', '--tenant-share', '1', '--probe-timeout', '5000']);
    const held = hold(fra);
    const post = get(agent, router.httpsPort, '/order', { method: 'POST' });
    await until('the POST reached fra', () => fra.requests.length === 1);
    const gets = Array.from({ length: 5 }, (_, i) => timed(`/wait/${i}`));
    await until('1 GET dispatched to fra and 4 waiting', () => router.router.outstanding('fra').active === 2 && router.router.outstanding('fra').queued === 4).catch((err: Error) => {
      // Where the GETs went instead says why (a region probed down, a spill).
      const routes = router.access.map((a) => `${a.path} ${a.region} ${a.route}`);
      throw new Error(`${err.message}: fra ${JSON.stringify(router.router.outstanding('fra'))}; answered: ${routes.join(', ') || 'none'}`);
    });
    fra.healthy = false; // probes fail: fra goes down while its data plane still holds the requests
    const answers = await Promise.all(gets);
    expect(answers.map((a) => [a.status, a.headers['x-edge-region'], a.headers['x-edge-route']])).toEqual(
      Array(5).fill([200, 'nyc', 'failover:fra-unavailable']),
    );
    // Nothing was sent twice that should not be: the POST is still at fra, and nyc never saw it.
    expect(nyc.requests.map((r) => r.method)).toEqual(Array(5).fill('GET'));
    expect(router.router.outstanding('fra')).toMatchObject({ active: 1, queued: 0 });
    held[0]!();
    expect(await post).toMatchObject({ status: 200, body: 'fra' });
  });

  it('counts requests dispatched and waiting as the region in flight, for routing and operators', async () => {
    const { fra, router, agent } = await setup(['--pool-connections', '3', '--tenant-share', '1']);
    const held = hold(fra);
    const pending = Array.from({ length: 5 }, (_, i) => get(agent, router.httpsPort, `/busy/${i}`));
    await until('3 dispatched, 2 waiting', () => router.router.outstanding('fra').active === 3 && router.router.outstanding('fra').queued === 2);
    const api = await request(`http://127.0.0.1:${router.adminPort}/api/regions`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const body = (await api.body.json()) as { regions: Array<{ id: string; inFlight: number; routerActive: number; routerQueued: number }> };
    expect(body.regions.find((r) => r.id === 'fra')).toMatchObject({ inFlight: 5, routerActive: 3, routerQueued: 2 });
    const metrics = await (await request(`http://127.0.0.1:${router.adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body.text();
    expect(metrics).toMatch(/^edge_router_region_in_flight\{region="fra"\} 5$/m);
    expect(metrics).toMatch(/^edge_router_region_outstanding\{region="fra",state="queued"\} 2$/m);
    expect((await releaseUntilSettled(pending, [held])).map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
  });

  it("serves another organisation at once while one organisation's hanging function fills a region", async () => {
    // fra has 4 connections. The noisy organisation's function hangs there; it sends 10 requests.
    // With its share (2 connections, the default half) it cannot take the other two, and the quiet
    // organisation's request overtakes its 8 waiting. As one FIFO (--tenant-share 1), the quiet request
    // waited behind them until its queue timeout and went to New York.
    const quietRequest = async (tenantShare: string) => {
      const { fra, router, agent } = await setup(['--pool-connections', '4', '--queue-timeout', '1500', '--tenant-share', tenantShare]);
      const held: Array<() => void> = [];
      fra.handler = (req, res, seen) => (req.headers.host?.startsWith('stuck-noisy.') === true ? held.push(() => res.end('late')) : echo(req, res, seen));
      const noisy = Array.from({ length: 10 }, (_, i) => get(agent, router.httpsPort, `/hang/${i}`, { host: 'stuck-noisy.telnyxcompute.com' }));
      await until('the noisy organisation holds what it may at fra, the rest waiting', () => router.router.outstanding('fra').active + router.router.outstanding('fra').queued === 10);
      const startedAt = Date.now();
      const quiet = await get(agent, router.httpsPort, '/ok', { host: 'api-quiet.telnyxcompute.com' });
      const elapsedMs = Date.now() - startedAt;
      const activeAtFra = router.router.outstanding('fra').active;
      expect((await releaseUntilSettled(noisy, [held])).map((r) => r.status)).toEqual(Array(10).fill(200));
      return { status: quiet.status, region: quiet.headers['x-edge-region'], elapsedMs, activeAtFra };
    };
    const shared = await quietRequest('0.5');
    expect(shared).toMatchObject({ status: 200, region: 'fra', activeAtFra: 2 });
    expect(shared.elapsedMs).toBeLessThan(1_000);
    const fifo = await quietRequest('1');
    expect(fifo).toMatchObject({ status: 200, region: 'nyc', activeAtFra: 4 });
    expect(fifo.elapsedMs).toBeGreaterThanOrEqual(1_400);
  });

  it("spills what one organisation's share of a region's queue cannot hold at once, and says why", async () => {
    // Its share: 1 of fra's 2 connections and 2 of its 4 queue places. The fourth request goes to nyc.
    const { fra, router, agent } = await setup(['--pool-connections', '2', '--queue-max', '4']);
    const held = hold(fra);
    const pending = Array.from({ length: 4 }, (_, i) => get(agent, router.httpsPort, `/share/${i}`));
    await until('1 at fra, 2 waiting there, 1 sent on to nyc', () => router.router.outstanding('fra').active === 1 && router.router.outstanding('fra').queued === 2 && router.access.some((a) => a.region === 'nyc'));
    const spilled = router.access.find((a) => a.region === 'nyc');
    expect(spilled).toMatchObject({ region: 'nyc', tried: ['fra', 'nyc'], reason: 'spill:fra-tenant-share', status: 200 });
    expect((await releaseUntilSettled(pending, [held])).map((r) => r.status)).toEqual([200, 200, 200, 200]);
  });

  it('answers 503 with Retry-After when every region is at capacity, instead of queueing without bound', async () => {
    const { fra, nyc, router, timed } = await setup(['--pool-connections', '1', '--queue-max', '1', '--max-attempts', '2']);
    const heldFra = hold(fra);
    const heldNyc = hold(nyc);
    const first = [timed('/a'), timed('/b'), timed('/c'), timed('/d')]; // fra: 1 + 1 waiting, nyc: 1 + 1 waiting
    await until('both regions full', () => router.router.outstanding('fra').queued === 1 && router.router.outstanding('nyc').queued === 1);
    const refused = await timed('/e');
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    expect(JSON.parse(refused.body).error.code).toBe('capacity_exhausted');
    // It went to nyc (the last region it asked) because fra's queue was full; nyc's was too.
    expect(refused.headers['x-edge-route']).toBe('spill:fra-queue-full');
    expect((await releaseUntilSettled(first, [heldFra, heldNyc])).map((r) => r.status)).toEqual([200, 200, 200, 200]);
  });

  it('holds no upstream connection for slow uploads of small bodies, and answers them 408; others are served meanwhile', async () => {
    // The rate is judged once a body has been arriving for --body-idle-timeout. 3 s rather than
    // 1: the test's clients and the router share one event loop, and when a loaded machine held it
    // up for most of a second, the router's watchdog ran before it had read the bytes sent
    // meanwhile and cut an upload as idle (body_idle_timeout), not as slow.
    const { fra, router, agent } = await setup(['--pool-connections', '2', '--body-idle-timeout', '3000', '--body-min-rate', '1KiB']);
    // Twenty clients each announce 100,000 bytes and send 10 bytes every 200 ms: 50 B/s.
    const slow = Array.from({ length: 20 }, () => {
      const pieces: string[] = [`POST /upload HTTP/1.1\r\nHost: ${HOST}\r\ncontent-type: application/octet-stream\r\ncontent-length: 100000\r\n\r\n`];
      for (let i = 0; i < 40; i++) pieces.push('0123456789');
      return rawRequest(router.httpsPort, pieces, { tls: true, pauseMs: 200, timeoutMs: 8_000, localAddress: `127.8.1.${1 + Math.floor(Math.random() * 200)}` });
    });
    await new Promise((r) => setTimeout(r, 300)); // let the uploads begin (a head start, not a wait for a result)
    const normal = await get(agent, router.httpsPort, '/normal');
    expect(normal.status).toBe(200);
    const results = await Promise.all(slow);
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(408));
    expect(results.every((r) => /"code":"request_timeout"/.test(r.text))).toBe(true);
    expect(fra.requests.map((r) => r.url)).toEqual(['/normal']); // no slow upload reached a region
    const lines = router.access.filter((a) => a.path === '/upload');
    expect(lines.length).toBe(20);
    expect(new Set(lines.map((a) => a.error))).toEqual(new Set(['body_too_slow']));
  });

  it('cuts an upload whose body stops arriving (idle timeout), also after it began streaming to a region', async () => {
    const { fra, router } = await setup(['--body-idle-timeout', '800', '--body-buffer', '1KiB']);
    fra.recordBodies = false;
    fra.handler = okAfterBody;
    const head = `POST /stall HTTP/1.1\r\nHost: ${HOST}\r\ncontent-length: 10000\r\n\r\n`;
    const result = await rawRequest(router.httpsPort, [head + 'x'.repeat(4096)], { tls: true, timeoutMs: 5_000, untilClose: true, localAddress: LONDON });
    expect(result.status).toBe(408);
    expect(result.closedByServer).toBe(true);
    await until('fra let go of the upload', () => fra.openRequests === 0 && router.router.outstanding('fra').active === 0);
    expect(router.access.find((a) => a.path === '/stall')).toMatchObject({ status: 408, error: 'body_idle_timeout' });
  });

  it('does not blame an upload for the time it waited for a connection', async () => {
    // 1 connection at fra, held by a GET; an upload (over the 1 KiB buffer) then waits longer than
    // the body idle timeout for it, although its client sent every byte at once.
    const { fra, router, agent } = await setup(['--pool-connections', '1', '--body-buffer', '1KiB', '--body-idle-timeout', '500', '--body-min-rate', '0']);
    const held = hold(fra);
    const holder = get(agent, router.httpsPort, '/hold');
    await until('fra holds /hold', () => held.length === 1);
    const upload = get(agent, router.httpsPort, '/upload-after-wait', { method: 'PUT', body: Buffer.alloc(8 * 1024, 0x61) });
    await until('the upload waits for the connection', () => router.router.outstanding('fra').queued === 1);
    const waitStarted = Date.now();
    await until('it has waited past the idle timeout', () => Date.now() - waitStarted > 1_000);
    held.shift()!();
    await until('fra has the upload', () => held.length === 1);
    held.shift()!();
    expect((await upload).status).toBe(200);
    expect((await holder).status).toBe(200);
    expect(fra.requests.find((r) => r.url === '/upload-after-wait')!.body.length).toBe(8 * 1024);
  });

  it('does not blame an upload for the time its region took to read it, over HTTP/1.1 and HTTP/2', async () => {
    // The client sends 16 MiB at once; the function reads its body only after 1.5 s (a cold start,
    // a lookup first), three times the body idle timeout. Flow control holds the client back
    // meanwhile: its silence is the region's, and it had been answered 408 body_idle_timeout.
    const { fra, router, agent } = await setup(['--body-buffer', '1KiB', '--body-idle-timeout', '500', '--body-min-rate', '64KiB']);
    fra.recordBodies = false;
    fra.handler = (req, res) => {
      setTimeout(() => {
        let bytes = 0;
        req.on('data', (chunk: Buffer) => (bytes += chunk.length));
        req.on('end', () => res.end(String(bytes)));
      }, 1_500);
    };
    const body = Buffer.alloc(16 * 1024 * 1024, 0x61);
    const http1 = await get(agent, router.httpsPort, '/read-late', { method: 'PUT', body });
    expect(http1).toMatchObject({ status: 200, body: String(body.length) });
    const session = http2Connect(`https://${HOST}:${router.httpsPort}`, { rejectUnauthorized: false, host: '127.0.0.1', servername: HOST, localAddress: LONDON } as never);
    cleanup.add(() => session.destroy());
    const stream = session.request({ ':method': 'PUT', ':path': '/read-late-h2' });
    stream.end(body);
    const [status, text] = await new Promise<[number, string]>((resolve, reject) => {
      let got = '';
      let answer = 0;
      stream.on('response', (headers) => (answer = Number(headers[':status'])));
      stream.on('data', (chunk: Buffer) => (got += chunk.toString()));
      stream.on('end', () => resolve([answer, got]));
      stream.on('error', reject);
    });
    expect([status, text]).toEqual([200, String(body.length)]);
    expect(router.access.filter((a) => a.path.startsWith('/read-late')).map((a) => [a.status, a.error])).toEqual([
      [200, null],
      [200, null],
    ]);
  });

  it('answers 413 to a streamed upload that grows past the body limit, and aborts what reached the region', async () => {
    const { fra, router } = await setup(['--body-buffer', '1KiB', '--max-body-standard', '8KiB']);
    fra.recordBodies = false;
    fra.handler = okAfterBody;
    const chunk = `400\r\n${'x'.repeat(1024)}\r\n`;
    const head = `POST /too-big HTTP/1.1\r\nHost: ${HOST}\r\ntransfer-encoding: chunked\r\n\r\n`;
    const result = await rawRequest(router.httpsPort, [head, ...Array(16).fill(chunk), '0\r\n\r\n'], { tls: true, pauseMs: 20, timeoutMs: 5_000, untilClose: true, localAddress: LONDON });
    expect(result.status).toBe(413);
    await until('fra let go of the upload', () => fra.openRequests === 0 && router.router.outstanding('fra').active === 0);
    expect(fra.requests.map((r) => [r.url, r.aborted])).toEqual([['/too-big', true]]); // it had begun streaming, then was cut
    expect(router.access.find((a) => a.path === '/too-big')).toMatchObject({ status: 413, error: 'payload_too_large' });
  });

  it('lets a client that reads only once it has sent read the 413 for a chunked upload past the limit (the close lingers)', async () => {
    // No Content-Length to refuse at the head: the body grows past the limit while it streams. The
    // 413 went out, and then the socket was destroyed with the client's bytes unread: the kernel's
    // reset reached the client before it read, and it saw ECONNRESET, never the answer.
    const { router } = await setup(['--body-buffer', '1KiB', '--max-body-standard', '256KiB']);
    const head = `POST /chunked-too-big HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked\r\n\r\n`;
    const reply = await uploadThenRead(router.httpsPort, head, { tls: true, localAddress: LONDON, chunked: true, bodyBytes: 1024 * 1024, timeoutMs: 8_000 });
    expect(reply.error).toBeNull();
    expect(reply.status).toBe(413);
    expect(router.access.find((a) => a.path === '/chunked-too-big')).toMatchObject({ status: 413, error: 'payload_too_large' });
  });

  it('limits requests in progress per client address with 429, without affecting other addresses', async () => {
    const { fra, router, agent } = await setup(['--max-requests-per-ip', '3']);
    const held = hold(fra);
    const pending = [0, 1, 2].map((i) => get(agent, router.httpsPort, `/mine/${i}`));
    await until('3 in progress', () => held.length === 3);
    const fourth = await get(agent, router.httpsPort, '/mine/3');
    expect(fourth.status).toBe(429);
    expect(fourth.headers['retry-after']).toBe('1');
    const other = agentFor(router.httpsPort, { localAddress: '127.8.0.2' });
    cleanup.add(() => other.destroy());
    fra.handler = echo;
    expect((await get(other, router.httpsPort, '/other')).status).toBe(200);
    for (const h of held) h();
    expect((await Promise.all(pending)).map((r) => r.status)).toEqual([200, 200, 200]);
    expect((await get(agent, router.httpsPort, '/mine/again')).status).toBe(200); // the quota was given back
  });

  it('counts an open WebSocket as a request in progress for its address, until it closes', async () => {
    const { fra, router, agent } = await setup(['--max-requests-per-ip', '2']);
    const server = (fra as unknown as { server: import('node:http').Server }).server;
    server.on('upgrade', (_req, socket: import('node:stream').Duplex) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n');
      // The router passes a client's FIN on as a FIN (a half-close); a WebSocket server closes then.
      socket.on('end', () => socket.end());
    });
    const openWebSocket = (path: string) =>
      new Promise<{ status: string; close: () => Promise<void> }>((resolve, reject) => {
        const socket = tlsConnect({ port: router.httpsPort, host: '127.0.0.1', servername: HOST, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'], localAddress: LONDON } as never);
        cleanup.add(() => socket.destroy());
        socket.once('secureConnect', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`));
        socket.once('data', (d: Buffer) =>
          resolve({
            status: d.toString('latin1').split('\r\n')[0]!,
            close: () => new Promise((done) => socket.once('close', () => done()).destroy()),
          }),
        );
        socket.once('error', reject);
      });
    const first = await openWebSocket('/ws/1');
    const second = await openWebSocket('/ws/2');
    expect([first.status, second.status]).toEqual(['HTTP/1.1 101 Switching Protocols', 'HTTP/1.1 101 Switching Protocols']);
    expect((await openWebSocket('/ws/3')).status).toMatch(/^HTTP\/1\.1 429/);
    expect((await get(agent, router.httpsPort, '/plain')).status).toBe(429); // the same quota as plain requests
    await first.close();
    await until('the closed WebSocket gives its place back', async () => (await get(agent, router.httpsPort, '/plain-again')).status === 200);
    await second.close();
  });

  it('gives back everything a WebSocket upgrade held when its client leaves before the region answers, by closing or half-closing', async () => {
    // London's nearest region is fra; both regions hold upgrades without answering.
    const { fra, nyc, router } = await setup(['--max-requests-per-ip', '2', '--pool-connections', '2', '--plain-http', 'serve']);
    const held: import('node:stream').Duplex[] = [];
    for (const origin of [fra, nyc]) {
      const server = (origin as unknown as { server: import('node:http').Server }).server;
      server.on('upgrade', (_req, socket: import('node:stream').Duplex) => {
        socket.on('error', () => undefined);
        held.push(socket); // never answered
      });
    }
    // Over TLS, and over plain HTTP, where Node keeps the router's side open after the client's FIN.
    const abandonUpgrade = async (path: string, how: 'end' | 'destroy', tls: boolean) => {
      const socket = tls
        ? tlsConnect({ port: router.httpsPort, host: '127.0.0.1', servername: HOST, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'], localAddress: LONDON } as never)
        : netConnect({ port: router.httpPort, host: '127.0.0.1', localAddress: LONDON });
      cleanup.add(() => socket.destroy());
      socket.on('error', () => undefined);
      await new Promise((resolve) => socket.once(tls ? 'secureConnect' : 'connect', resolve));
      const before = held.length;
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
      await until(`the region holds ${path}`, () => held.length > before);
      // A pending upgrade holds one of its region's slots, as a request does: undici's connection is taken.
      expect(router.router.outstanding('fra').active + router.router.outstanding('nyc').active).toBe(1);
      if (how === 'end') socket.end(); // a FIN: half-closed, the router's side stays open unless it acts
      else socket.destroy();
      await new Promise((resolve) => socket.once('close', resolve));
    };
    for (let i = 0; i < 2; i++) {
      await abandonUpgrade(`/ws/fin-plain-${i}`, 'end', false);
      await abandonUpgrade(`/ws/fin-tls-${i}`, 'end', true);
      await abandonUpgrade(`/ws/gone-${i}`, 'destroy', i === 0);
    }
    // The regions' upstream requests were cut, the gates hold nothing, and the address's slots are back.
    await until('every held upgrade was cut by the router', () => held.every((h) => h.destroyed || h.readableEnded), 5_000);
    await until('the gates are empty', () => router.router.outstanding('fra').active === 0 && router.router.outstanding('nyc').active === 0, 5_000);
    const agent = agentFor(router.httpsPort, { localAddress: LONDON });
    cleanup.add(() => agent.destroy());
    fra.handler = echo;
    const started = Date.now();
    expect((await get(agent, router.httpsPort, '/after-upgrades')).status).toBe(200);
    expect(Date.now() - started).toBeLessThan(2_000); // not queued behind upgrades undici still held
    await until('six 499 lines', () => router.access.filter((a) => a.path.startsWith('/ws/') && a.status === 499).length === 6, 5_000);
  });

  it('notices a client that sent bytes after its upgrade\'s head and then half-closed, before the region answered', async () => {
    // Node reports a FIN only once the bytes before it have been read, and nothing read an
    // upgrade's socket before the tunnel existed: the upgrade held its slot, its upstream request
    // and its address's place until the region answered or the tier deadline (30 s here).
    const { fra, router } = await setup(['--max-requests-per-ip', '1', '--pool-connections', '1', '--plain-http', 'serve']);
    const held: import('node:stream').Duplex[] = [];
    const server = (fra as unknown as { server: import('node:http').Server }).server;
    server.on('upgrade', (_req, socket: import('node:stream').Duplex) => {
      socket.on('error', () => undefined);
      held.push(socket); // never answered
    });
    for (const tls of [false, true]) {
      const socket = tls
        ? tlsConnect({ port: router.httpsPort, host: '127.0.0.1', servername: HOST, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'], localAddress: LONDON } as never)
        : netConnect({ port: router.httpPort, host: '127.0.0.1', localAddress: LONDON });
      cleanup.add(() => socket.destroy());
      socket.on('error', () => undefined);
      await new Promise((resolve) => socket.once(tls ? 'secureConnect' : 'connect', resolve));
      const before = held.length;
      const path = `/ws/early-then-fin-${tls ? 'tls' : 'plain'}`;
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
      await until(`the region holds ${path}`, () => held.length > before);
      // After the router handed the upgrade on: these bytes are not in the head's chunk.
      socket.end('a frame sent too soon');
      await until(`${path} logged as the client leaving`, () => router.access.some((a) => a.path === path && a.status === 499), 5_000);
      await until('the region\'s request was cut', () => held.at(-1)!.destroyed || held.at(-1)!.readableEnded, 5_000);
      await until('the gate is empty', () => router.router.outstanding('fra').active === 0, 5_000);
    }
  });

  it('limits open connections per peer address', async () => {
    const { router } = await setup(['--max-conns-per-ip', '4']);
    const open = (localAddress: string) =>
      new Promise<{ closed: boolean; destroy: () => void }>((resolve) => {
        const socket = tlsConnect({ port: router.httpsPort, host: '127.0.0.1', servername: HOST, rejectUnauthorized: false, localAddress } as never);
        socket.on('error', () => resolve({ closed: true, destroy: () => socket.destroy() }));
        socket.once('secureConnect', () => resolve({ closed: false, destroy: () => socket.destroy() }));
      });
    const mine: Array<{ closed: boolean; destroy: () => void }> = [];
    for (let i = 0; i < 5; i++) mine.push(await open('127.8.2.1'));
    cleanup.add(() => mine.forEach((s) => s.destroy()));
    expect(mine.map((s) => s.closed)).toEqual([false, false, false, false, true]);
    const someoneElse = await open('127.8.2.2');
    someoneElse.destroy();
    expect(someoneElse.closed).toBe(false);
  });

  it('limits how fast one address opens connections, closing the excess before the TLS handshake', async () => {
    const { router, agent } = await setup(['--max-conn-rate-per-ip', '20']); // bursts of 40
    // A handshake loop: connect, finish TLS, close, again, as fast as the router answers.
    const handshake = (localAddress: string) =>
      new Promise<boolean>((resolve) => {
        const socket = tlsConnect({ port: router.httpsPort, host: '127.0.0.1', servername: HOST, rejectUnauthorized: false, localAddress } as never);
        socket.once('error', () => resolve(false));
        socket.once('secureConnect', () => {
          socket.destroy();
          resolve(true);
        });
      });
    const started = Date.now();
    let completed = 0;
    for (let i = 0; i < 150; i++) if (await handshake('127.8.3.1')) completed++;
    const seconds = (Date.now() - started) / 1_000;
    // The burst, and what the address earned meanwhile (20 a second), however fast the loop ran.
    expect(completed).toBeGreaterThanOrEqual(40);
    expect(completed).toBeLessThanOrEqual(40 + Math.ceil(seconds * 20) + 1);
    const metrics = await (await request(`http://127.0.0.1:${router.adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body.text();
    expect(metrics).toMatch(new RegExp(`^edge_router_connections_refused_total\\{reason="rate"\\} ${150 - completed}$`, 'm'));
    // Everyone else is untouched, and the address itself may connect again once it has earned it.
    expect(await handshake('127.8.3.2')).toBe(true);
    expect((await get(agent, router.httpsPort, '/after-loop')).status).toBe(200);
    await new Promise((r) => setTimeout(r, 200));
    expect(await handshake('127.8.3.1')).toBe(true);
  });
});
