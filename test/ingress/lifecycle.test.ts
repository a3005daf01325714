import { mkdtemp, writeFile } from 'node:fs/promises';
import type { IncomingMessage, Server } from 'node:http';
import { connect as http2Connect, constants as h2constants } from 'node:http2';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { request } from 'undici';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { agentFor, get, getH2, HOST } from '../support/clients.js';
import { echo, TestOrigin } from '../support/origin.js';
import { CLUSTER_START_TIMEOUT_MS, outputLinesWith, readyPidsOf, runEdgeRouter, type RunningProcess } from '../support/process.js';
import { freePort } from '../support/redis-server.js';
import { uploadThenRead } from '../support/raw.js';
import { H2_FLAG, H2_FRAME, h2Frame, openRawH2 } from '../support/hostile.js';
import { hpackGet as rawHpackGet } from '../../bench/raw-h2.js';
import { regionsFileFor, startTestRouter } from '../support/router.js';
import { until } from '../support/until.js';
import { webSocketAccept } from '../support/websocket-origin.js';

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

describe('shutdown and workers', () => {
  it('drains on close: readiness turns false, in-flight requests finish, new connections are refused', async () => {
    const origin = await TestOrigin.start('nyc');
    cleanup.push(() => origin.kill());
    origin.handler = (req, res, seen) => setTimeout(() => echo(req, res, seen), 600);
    const router = await startTestRouter({ nyc: origin.url });
    const agent = agentFor(router.httpsPort);
    cleanup.push(() => agent.close());
    const inFlight = get(agent, router.httpsPort, '/slow');
    await until('the slow request reached the region', () => origin.requests.length === 1);
    const closing = router.close(); // readiness off and listeners closed before it first yields
    const ready = await request(`http://127.0.0.1:${router.adminPort}/readyz`).then((r) => r.statusCode, () => 'refused');
    expect([503, 'refused']).toContain(ready);
    const fresh = await get(agentFor(router.httpsPort), router.httpsPort, '/new').then((r) => r.status, (e: Error & { code?: string }) => e.code);
    expect(fresh).toBe('ECONNREFUSED');
    expect((await inFlight).status).toBe(200);
    await closing;
  });

  it('answers a request already waiting for its function when the drain begins with Connection: close', async () => {
    // Seen in review: only requests that arrived during the drain were told; one waiting at SIGTERM
    // was answered keep-alive, its client sent its next request on that connection, and the end of
    // the drain cut it (ECONNRESET on a POST nobody can tell was served or not).
    const origin = await TestOrigin.start('nyc');
    cleanup.push(() => origin.kill());
    origin.handler = (req, res, seen) => setTimeout(() => echo(req, res, seen), 600);
    const router = await startTestRouter({ nyc: origin.url });
    const agent = agentFor(router.httpsPort);
    cleanup.push(() => agent.close());
    expect((await get(agent, router.httpsPort, '/warm')).headers.connection).toBe('keep-alive');
    const inFlight = get(agent, router.httpsPort, '/slow');
    await until('the slow request reached the region', () => origin.requests.length === 2);
    const closing = router.close();
    const answer = await inFlight;
    expect(answer.status).toBe(200);
    expect(answer.headers.connection).toBe('close');
    await closing;
  });

  it('waits, within the drain, for a connection lingering after an early answer: its client still gets its 413', async () => {
    // The 413 goes out as the head arrives and the connection lingers while the upload comes. The
    // drain found nothing in progress and cut every connection at once: the client's unread bytes
    // turned that close into a reset, and a client reading only after sending lost its answer.
    const origin = await TestOrigin.start('nyc');
    cleanup.push(() => origin.kill());
    const router = await startTestRouter({ nyc: origin.url }, ['--max-body-standard', '1MiB']);
    const head = ['POST /too-big HTTP/1.1', `Host: ${HOST}`, `Content-Length: ${8 * 1024 * 1024}`, '', ''].join('\r\n');
    const upload = uploadThenRead(router.httpsPort, head, { tls: true, bodyBytes: 512 * 1024, pauseMs: 20, timeoutMs: 10_000 });
    // The head answered (logged as it is), the body still coming: a fixed 200 ms assumed the answer was quicker.
    await until('the 413 answered', () => router.access.some((a) => a.path === '/too-big' && a.status === 413), 10_000);
    const closing = router.close();
    const res = await upload;
    expect({ error: res.error, status: res.status }).toEqual({ error: null, status: 413 });
    await closing;
  });

  it('closes an HTTP/1.1 connection whose answer was streaming when the drain began once that answer ends, not at the end of the drain', async () => {
    const origin = await TestOrigin.start('nyc');
    cleanup.push(() => origin.kill());
    // `/stream` sends its head and half its body at once, the rest 400 ms later; `/slow` holds the drain.
    origin.handler = (req, res, seen) => {
      if (req.url !== '/stream') return void setTimeout(() => echo(req, res, seen), 2_000);
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '10' });
      res.write('01234');
      setTimeout(() => res.end('56789'), 400);
    };
    const router = await startTestRouter({ nyc: origin.url }, ['--drain-timeout', '5000']);
    const agent = agentFor(router.httpsPort);
    cleanup.push(() => agent.close());
    const slow = get(agent, router.httpsPort, '/slow');
    const socket = tlsConnect({ port: router.httpsPort, host: '127.0.0.1', servername: HOST, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
    cleanup.push(async () => socket.destroy());
    socket.on('error', () => undefined);
    let received = '';
    socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
    socket.write(`GET /stream HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
    await until('the stream began', () => received.includes('01234'));
    const drainStartedAt = Date.now();
    const closing = router.close();
    const closedAt = await closed;
    expect(received).toMatch(/56789$/);
    expect(closedAt - drainStartedAt).toBeLessThan(1_500); // the slow request holds the drain 2 s
    expect((await slow).status).toBe(200);
    await closing;
  });

  it('lets an HTTP/2 answer the router has ended reach a client that reads slowly before the drain ends its connection', async () => {
    // A client with a large flow-control window (browsers open 6-15 MiB) behind a slow network: the
    // exchange ends once the body is in the kernel's buffers, megabytes short of the client. The
    // drain then destroyed the connection, and the WINDOW_UPDATE the client sent as it read on met a
    // closed socket: the kernel answered with a reset, and the rest of the body was lost.
    await expectSlowHttp2ReaderServedThroughDrain();
  }, 30_000);

  it('keeps to the drain\'s time when the wall clock steps an hour forward as the drain begins: the slow reader still gets its answer', async () => {
    // The drain counted its time on Date.now(): an NTP step forward left it no time at all, and the
    // answer still leaving was cut at once (found by review).
    await expectSlowHttp2ReaderServedThroughDrain(() => {
      const wallClock = Date.now.bind(Date);
      const stepped = vi.spyOn(Date, 'now').mockImplementation(() => wallClock() + 3_600_000);
      cleanup.push(async () => stepped.mockRestore());
    });
  }, 30_000);

  it('serves every HTTP/2 stream its GOAWAY covered, also those still queued behind a burst answered at once', async () => {
    // Seen in review: 40 streams for another host (421 at once) and 4 real ones in one read; the
    // drain began once 8 were answered, found nothing in flight between two turns, and cut the
    // connection: the real ones, still queued for their turn (http2-after-read.ts), were logged 499.
    const fra = await TestOrigin.start('fra');
    cleanup.push(() => fra.kill());
    fra.handler = (_req, res) => void setTimeout(() => res.end('ok'), 100).unref();
    const router = await startTestRouter({ fra: fra.url }, ['--drain-timeout', '5000']);
    cleanup.push(() => router.close());
    const connection = await openRawH2(router.httpsPort, { reading: true });
    cleanup.push(async () => void connection.socket.destroy());
    const elsewhere = HOST.replace(/^[^.]+/, 'someone-else');
    const frames: Buffer[] = [];
    const realIds: number[] = [];
    for (let i = 0, id = 1; i < 44; i++, id += 2) {
      const real = i >= 40;
      if (real) realIds.push(id);
      frames.push(h2Frame(H2_FRAME.HEADERS, H2_FLAG.END_STREAM | H2_FLAG.END_HEADERS, id, rawHpackGet(real ? `/real/${i}` : `/elsewhere/${i}`, real ? HOST : elsewhere)));
    }
    const before = router.access.length;
    let closing: Promise<void> | undefined;
    const startDrainAfterEight = () => {
      if (router.access.length - before >= 8) closing = router.router.close();
      else setImmediate(startDrainAfterEight);
    };
    setImmediate(startDrainAfterEight);
    await connection.send(Buffer.concat(frames));
    await until('the drain began', () => closing !== undefined, 5_000);
    await closing;
    const answered = new Set(connection.frames.filter((f) => f.type === H2_FRAME.HEADERS).map((f) => f.streamId));
    expect(realIds.filter((id) => !answered.has(id))).toEqual([]);
    expect(router.access.filter((a) => a.path.startsWith('/real/')).map((a) => a.status)).toEqual([200, 200, 200, 200]);
  }, 30_000);

  it('at the drain deadline answers a request still waiting 503 shutting_down, cuts one mid-response, and logs both as shutdown', async () => {
    const origin = await TestOrigin.start('nyc');
    cleanup.push(() => origin.kill());
    // `/stream` starts its answer and never finishes it; anything else is never answered.
    origin.handler = (req, res) => {
      if (req.url !== '/stream') return;
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first part');
    };
    const router = await startTestRouter({ nyc: origin.url }, ['--drain-timeout', '500']);
    const agent = agentFor(router.httpsPort);
    cleanup.push(() => agent.close());
    const waiting = get(agent, router.httpsPort, '/waiting');
    const h2 = http2Connect(`https://${HOST}:${router.httpsPort}`, { rejectUnauthorized: false, host: '127.0.0.1', servername: HOST } as never);
    cleanup.push(async () => h2.destroy());
    h2.on('error', () => undefined);
    const h2Waiting = h2.request({ ':path': '/waiting-h2', ':authority': HOST });
    h2Waiting.on('error', () => undefined);
    const h2Status = new Promise((resolve) => h2Waiting.once('response', (h) => resolve(h[':status'])));
    const streaming = await request(`https://${HOST}:${router.httpsPort}/stream`, { dispatcher: agent });
    // Over HTTP/2 too: reset with an error. Reset NO_ERROR, Node's client ended the body as if whole.
    const h2Streaming = h2.request({ ':path': '/stream', ':authority': HOST });
    h2Streaming.on('error', () => undefined);
    h2Streaming.resume();
    const h2Cut = new Promise<number>((resolve) => h2Streaming.once('close', () => resolve(h2Streaming.rstCode ?? -1)));
    await until('every request reached the region', () => origin.requests.length === 4);
    const closing = router.close();
    const answer = await waiting;
    expect(answer.status).toBe(503);
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'shutting_down' } });
    expect(answer.headers['retry-after']).toBe('1');
    expect(await h2Status).toBe(503);
    await expect(streaming.body.text()).rejects.toThrow();
    expect(await h2Cut).toBe(h2constants.NGHTTP2_INTERNAL_ERROR);
    await closing;
    const lineOf = (path: string) => router.access.find((a) => a.path === path);
    expect(lineOf('/waiting')).toMatchObject({ status: 503, error: 'shutdown' });
    expect(lineOf('/waiting-h2')).toMatchObject({ status: 503, error: 'shutdown' });
    expect(router.access.filter((a) => a.path === '/stream')).toEqual([expect.objectContaining({ status: 200, error: 'shutdown' }), expect.objectContaining({ status: 200, error: 'shutdown' })]);
  });

  it('answers a request that waits for its function longer than the HTTPS idle timeout, over HTTP/2 and HTTP/1.1', async () => {
    // Seen in review: the idle timeout of HTTPS connections (60 s with the defaults, 600 ms here)
    // cut a request still waiting for its region, which is as quiet as an idle connection: a tier
    // deadline above 60 s was 60 s for HTTPS clients, and the line blamed the client (499).
    const origin = await TestOrigin.start('nyc');
    cleanup.push(() => origin.kill());
    origin.handler = (req, res, seen) => setTimeout(() => echo(req, res, seen), req.url === '/slow' ? 1_500 : 0);
    const router = await startTestRouter({ nyc: origin.url }, [], {}, undefined, (r) => ({ ...r, config: { ...r.config, limits: { ...r.config.limits, keepAliveTimeoutMs: 50, headersTimeoutMs: 100, http2IdleTimeoutMs: 600 } } }));
    cleanup.push(() => router.close());
    const agent = agentFor(router.httpsPort);
    cleanup.push(() => agent.close());
    const [h2, h1] = await Promise.all([getH2(router.httpsPort, '/slow'), get(agent, router.httpsPort, '/slow')]);
    expect(h2.headers[':status']).toBe(200);
    expect(h2.alpn).toBe('h2');
    expect(h1.status).toBe(200);
    expect(router.access.filter((a) => a.path === '/slow').map((a) => a.status)).toEqual([200, 200]);
    // An idle HTTP/2 connection is still closed at its timeout.
    const idle = http2Connect(`https://${HOST}:${router.httpsPort}`, { rejectUnauthorized: false, host: '127.0.0.1', servername: HOST } as never);
    cleanup.push(async () => idle.destroy());
    idle.on('error', () => undefined);
    const startedAt = Date.now();
    await new Promise((resolve) => idle.once('close', resolve));
    expect(Date.now() - startedAt).toBeLessThan(5_000);
  });

  it('drains on a fault outside every handler (other clients\' requests in flight finish), then exits 70; a first SIGTERM during that drain does not cut it', async () => {
    const origin = await TestOrigin.start('nyc');
    cleanup.push(() => origin.kill());
    origin.handler = (req, res, seen) => setTimeout(() => echo(req, res, seen), 1_000);
    // A throw from a timer, as a bug outside any request handler would: on SIGUSR2 in this test.
    const fault = join(await mkdtemp(join(tmpdir(), 'edge-fault-')), 'fault.mjs');
    await writeFile(fault, "process.on('SIGUSR2', () => setTimeout(() => { throw new Error('injected fault'); }, 0));\n");
    const regions = await regionsFileFor({ nyc: origin.url });
    const [https, http, admin] = [await freePort(), await freePort(), await freePort()];
    const proc = runEdgeRouter(
      ['router', '--workers', '1', '--dev-cert', '--regions', regions, '--https-port', String(https), '--http-port', String(http), '--admin-port', String(admin), '--unknown-functions', 'forward', '--drain-timeout', '5000'],
      { NODE_OPTIONS: `--import=${pathToFileURL(fault).href}` },
    );
    cleanup.push(() => proc.stop('SIGKILL'));
    await proc.waitFor(/edge router ready/, CLUSTER_START_TIMEOUT_MS);
    const agent = agentFor(https);
    cleanup.push(() => agent.close());
    const inFlight = get(agent, https, '/slow');
    await until('the slow request reached the region', () => origin.requests.length === 1);
    const exited = new Promise<number | null>((resolve) => proc.child.once('exit', resolve));
    proc.child.kill('SIGUSR2');
    await proc.waitFor(/"event":"fault".*injected fault/);
    // A service manager's stop, or a deploy, during the fault's drain is its first signal, not a
    // second one: it drains on (it had been taken as the forcing signal, exit 130 at once).
    proc.child.kill('SIGTERM');
    const fresh = await get(agentFor(https), https, '/new').then((r) => r.status, (e: Error & { code?: string }) => e.code);
    expect(fresh).toBe('ECONNREFUSED');
    expect((await inFlight).status).toBe(200);
    expect(await exited).toBe(70);
    expect(proc.output()).not.toMatch(/forced_exit/);
  }, CLUSTER_START_TIMEOUT_MS + 30_000);

  it('exits a few seconds after its drain even when something it forgot still holds the event loop, and says so', async () => {
    // A leak the router did not make: an interval no one clears, as a forgotten timer would be.
    const leak = join(await mkdtemp(join(tmpdir(), 'edge-leak-')), 'leak.mjs');
    await writeFile(leak, 'setInterval(() => undefined, 1_000);\n');
    const regions = await regionsFileFor({});
    const [https, http, admin] = [await freePort(), await freePort(), await freePort()];
    const proc = runEdgeRouter(
      ['router', '--workers', '1', '--dev-cert', '--regions', regions, '--https-port', String(https), '--http-port', String(http), '--admin-port', String(admin), '--drain-timeout', '1000'],
      { NODE_OPTIONS: `--import=${pathToFileURL(leak).href}` },
    );
    cleanup.push(() => proc.stop('SIGKILL'));
    await proc.waitFor(/edge router ready/, CLUSTER_START_TIMEOUT_MS);
    const exited = new Promise<number | null>((resolve) => proc.child.once('exit', resolve));
    const stoppedAt = Date.now();
    proc.child.kill('SIGTERM');
    expect(await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running'), 15_000))])).toBe(0);
    expect(Date.now() - stoppedAt).toBeLessThan(12_000);
    // Naming what held it: the interval, a ref'd timer.
    expect(proc.output()).toMatch(/"event":"exit_backstop","holding":\{[^}]*"Timeout":[1-9]/);
  }, CLUSTER_START_TIMEOUT_MS + 30_000);

  it('runs as a cluster of workers, replaces a worker that dies, and exits 0 on SIGTERM', async () => {
    const origin = await TestOrigin.start('nyc');
    cleanup.push(() => origin.kill());
    const regions = await regionsFileFor({ nyc: origin.url });
    const [https, http, admin] = [await freePort(), await freePort(), await freePort()];
    const proc: RunningProcess = runEdgeRouter([
      'router', '--workers', '2', '--dev-cert', '--regions', regions, '--https-port', String(https), '--http-port', String(http),
      '--admin-port', String(admin), '--unknown-functions', 'forward', '--probe-interval', '200', '--log-level', 'info',
    ]);
    cleanup.push(() => proc.stop('SIGKILL'));
    // Every wait below is bounded for a loaded machine, where starting a worker takes 10–20 s
    // (CLUSTER_START_TIMEOUT_MS), and ends as soon as its condition holds.
    await proc.waitFor(/started 2 router workers/, CLUSTER_START_TIMEOUT_MS);
    // Both workers listen on the shared port.
    const pids = new Set<string>();
    await until('both workers ready', () => {
      const lines = outputLinesWith(proc, '"edge router ready"');
      lines.forEach((l) => pids.add(String((JSON.parse(l) as { pid: number }).pid)));
      return pids.size >= 2;
    }, CLUSTER_START_TIMEOUT_MS);
    const agent = agentFor(https);
    cleanup.push(() => agent.close());
    let served = 0;
    await until('5 requests served', async () => {
      const res = await get(agent, https, '/').catch(() => ({ status: 0 }));
      if (res.status === 200) served++;
      return served >= 5;
    }, 30_000);

    process.kill(Number([...pids][0]), 'SIGKILL');
    await proc.waitFor(/router worker died; starting a new one/, 30_000);
    await until('the replacement worker is ready', () => readyPidsOf(proc).length === 3, CLUSTER_START_TIMEOUT_MS);
    expect((await get(agent, https, '/')).status).toBe(200);
    expect(await proc.stop('SIGTERM', 30_000)).toBe(0);
  }, 3 * CLUSTER_START_TIMEOUT_MS);

  it('exits at the drain timeout when it cut an open WebSocket, not a send timeout later', async () => {
    // Seen in review: cutting a tunnel paused the region's side after the tunnel had closed, which
    // armed its send-timeout timer: the process lived --send-timeout (30 s) past the drain, beyond
    // the termination grace a deployment gives it.
    const origin = await TestOrigin.start('nyc');
    cleanup.push(() => origin.kill());
    (origin as unknown as { server: Server }).server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
      const accept = webSocketAccept(req.headers['sec-websocket-key']);
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      socket.on('error', () => undefined);
    });
    const regions = await regionsFileFor({ nyc: origin.url });
    const [https, http, admin] = [await freePort(), await freePort(), await freePort()];
    const proc = runEdgeRouter([
      'router', '--workers', '1', '--dev-cert', '--regions', regions, '--https-port', String(https), '--http-port', String(http), '--admin-port', String(admin),
      '--unknown-functions', 'forward', '--drain-timeout', '1000', '--send-timeout', '20000',
    ]);
    cleanup.push(() => proc.stop('SIGKILL'));
    await proc.waitFor(/edge router ready/, CLUSTER_START_TIMEOUT_MS);
    const socket = tlsConnect({ port: https, host: '127.0.0.1', servername: HOST, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
    cleanup.push(async () => socket.destroy());
    socket.on('error', () => undefined);
    let received = '';
    socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
    socket.write(`GET /ws HTTP/1.1\r\nHost: ${HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
    await until('the WebSocket is open', () => received.startsWith('HTTP/1.1 101 '), 10_000);
    const stoppedAt = Date.now();
    expect(await proc.stop('SIGTERM', 25_000)).toBe(0);
    expect(Date.now() - stoppedAt).toBeLessThan(6_000);
    expect(proc.output()).toContain('"event":"drain_timeout"');
  }, CLUSTER_START_TIMEOUT_MS + 40_000);

  it('exits 130 at once on a second signal during the drain, and says so in its log', async () => {
    const origin = await TestOrigin.start('nyc');
    cleanup.push(() => origin.kill());
    origin.handler = (req, res, seen) => setTimeout(() => echo(req, res, seen), 10_000);
    const regions = await regionsFileFor({ nyc: origin.url });
    const [https, http, admin] = [await freePort(), await freePort(), await freePort()];
    const proc = runEdgeRouter(['router', '--workers', '1', '--dev-cert', '--regions', regions, '--https-port', String(https), '--http-port', String(http), '--admin-port', String(admin), '--unknown-functions', 'forward']);
    cleanup.push(() => proc.stop('SIGKILL'));
    await proc.waitFor(/edge router ready/, CLUSTER_START_TIMEOUT_MS);
    const agent = agentFor(https);
    cleanup.push(() => agent.close());
    const inFlight = get(agent, https, '/slow').then(() => 'answered', () => 'cut');
    await until('the slow request reached the region', () => origin.requests.length === 1, 10_000);
    const exited = new Promise<number | null>((resolve) => proc.child.once('exit', resolve));
    proc.child.kill('SIGTERM');
    await proc.waitFor(/"event":"shutdown"/);
    const forcedAt = Date.now();
    proc.child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(Date.now() - forcedAt).toBeLessThan(3_000);
    expect(await inFlight).toBe('cut');
    expect(proc.output()).toMatch(/"event":"forced_exit","signal":"SIGINT"/);
  }, CLUSTER_START_TIMEOUT_MS + 30_000);

  it('refuses to start without a certificate unless --dev-cert, exit 2', async () => {
    const proc = runEdgeRouter(['router', '--workers', '1', '--https-port', '0']);
    expect(await new Promise((r) => proc.child.once('exit', r))).toBe(2);
    expect(proc.output()).toContain('no certificate: give --tls-cert and --tls-key (or --tls-dir), or --dev-cert');
  });

});

describe('registry trouble in the log', () => {
  it('logs what the registry watcher refused or failed to read (once a minute at most), not only what it routes by', async () => {
    const origin = await TestOrigin.start('nyc');
    cleanup.push(() => origin.kill());
    const router = await startTestRouter({ nyc: origin.url });
    cleanup.push(() => router.close());
    const future = { region: 'nyc', status: 'up' as const, reportedAt: Date.now() + 3_600_000, source: 'reporter' as const, inFlight: 0, warmContainers: 0, latencyMs: { p50: 1, p99: 1 }, errorRate: 0, warmFunctions: [] };
    router.router.watcher.applyHeartbeat(future);
    router.router.watcher.applyHeartbeat({ ...future, reportedAt: future.reportedAt + 1 });
    const errors = router.logs.filter((l) => l.event === 'registry_error');
    expect(errors).toEqual([expect.objectContaining({ level: 40, error: expect.stringMatching(/heartbeat of nyc dated \d+ ms ahead/) })]);
  });
});

/**
 * A client reading an ended 2 MiB HTTP/2 answer slowly, with a large flow-control window, as the
 * drain begins: it gets the whole body before the drain closes its connection. `whenDrainBegins`
 * runs just after close() was called.
 */
async function expectSlowHttp2ReaderServedThroughDrain(whenDrainBegins: () => void = () => undefined): Promise<void> {
  const BODY = 2 * 1024 * 1024; // within what the loopback's buffers hold, so that the exchange ends
  const origin = await TestOrigin.start('nyc');
  cleanup.push(() => origin.kill());
  origin.handler = (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(BODY) });
    res.end(Buffer.alloc(BODY, 0x61));
  };
  const router = await startTestRouter({ nyc: origin.url }, ['--drain-timeout', '20000']);
  const connection = await openRawH2(router.httpsPort, { reading: true });
  cleanup.push(async () => void connection.socket.destroy());
  connection.socket.pause(); // the slow network: nothing read until the drain has begun
  const MAX_WINDOW = 2 ** 31 - 1;
  const settings = Buffer.alloc(6);
  settings.writeUInt16BE(0x4, 0); // SETTINGS_INITIAL_WINDOW_SIZE
  settings.writeUInt32BE(MAX_WINDOW, 2);
  const windowUpdate = (increment: number) => {
    const payload = Buffer.alloc(4);
    payload.writeUInt32BE(increment, 0);
    return h2Frame(H2_FRAME.WINDOW_UPDATE, 0, 0, payload);
  };
  await connection.send(Buffer.concat([
    h2Frame(H2_FRAME.SETTINGS, 0, 0, settings),
    windowUpdate(MAX_WINDOW - 65_535),
    h2Frame(H2_FRAME.HEADERS, H2_FLAG.END_STREAM | H2_FLAG.END_HEADERS, 1, rawHpackGet('/big', HOST)),
  ]));
  await until('the router has ended the answer', () => router.access.some((a) => a.path === '/big' && a.status === 200), 15_000);
  const closing = router.router.close();
  whenDrainBegins();
  await new Promise((resolve) => setTimeout(resolve, 300));
  // Reading on, as a client does: with a WINDOW_UPDATE (a reader's own pace; the window is not short).
  await connection.send(windowUpdate(1));
  connection.socket.resume();
  expect(await connection.closed(10_000)).toBe(true);
  const data = connection.frames.filter((f) => f.type === H2_FRAME.DATA && f.streamId === 1);
  expect(data.reduce((sum, f) => sum + f.payload.length, 0)).toBe(BODY);
  expect(data.at(-1)!.flags & H2_FLAG.END_STREAM).toBe(H2_FLAG.END_STREAM);
  await closing;
}
