/**
 * `npm run bench:hostile`: does a mixed attack from one address hurt everyone else? A normal
 * client sends requests at a fixed rate through the router (a child process, `--workers 1`) to
 * its nearest region, first alone, then while one attacker address runs a few hundred hostile
 * connections at the same region: slowloris heads, slow POST bodies, slow readers of a large
 * response, pipelined requests abandoned unread and a loop of TLS handshakes; and a second address
 * HTTP/2 rapid resets, written frame by frame (bench/raw-h2.ts).
 * Or, when asked for (HOSTILE_ATTACKS=idleFlood), an idle flood from eight more addresses: more
 * idle connections than the router's `--max-connections` (HOSTILE_MAX_CONNECTIONS for the run),
 * each opened again when the router closes it. Beside the normal client (keep-alive connections),
 * a newcomer client opens a new TLS connection for every request, which is what a full listener
 * takes away from everyone else.
 * Compares the normal client's p99 latency between the two phases, counts the failed requests of
 * both clients, samples the router's RSS, and checks the router holds nothing for the attacker afterwards.
 * The last line is exactly `hostile: normal p99 ratio R, errors E, router RSS M MB`.
 * Every loop is bounded in count and time; all traffic stays on loopback.
 *
 * Run as root with iproute2, the whole benchmark runs in a network namespace of its own, with the
 * kernel setting docs/hostile-clients.md asks deployments for (net.ipv4.tcp_notsent_lowat=131072:
 * without it, every client that stops reading makes the router encrypt up to 4 MB into its socket).
 * HOSTILE_NETNS=off runs it on the host's network stack as it is configured.
 *
 * Env: HOSTILE_SECONDS (per phase, default 10), HOSTILE_RATE (normal req/s, default 100),
 * HOSTILE_ATTACKS (comma-separated from slowloris,slowPost,slowRead,pipelined,resetStreams,handshakes,idleFlood; default all but idleFlood),
 * HOSTILE_MAX_CONNECTIONS (the router's --max-connections, default 1024), HOSTILE_NEWCOMER_RATE
 * (new connections a second, default 10), HOSTILE_SLOWEST (print the n slowest normal requests
 * under attack), HOSTILE_NETNS (on/off).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { packageRoot } from '../src/cli/package-root.js';
import { envInt } from './env-int.js';
import { freePort } from '../src/sim/free-port.js';
import { cpuSeconds, residentBytes } from './proc-stats.js';
import { openRawH2, rapidResetFrames, requestsThenResets } from './raw-h2.js';

const HOST = 'echo-demo.telnyxcompute.com';
const NORMAL_CLIENT = '127.8.0.1'; // London: nearest region fra
const ATTACKER = '127.8.66.6'; // also London, one address
/**
 * The rapid resets' own address (London). Their flood earns an address the penalty box, which
 * would otherwise close the door on the rest of the mix and measure it at a refused connect.
 */
const RESET_ATTACKER = '127.8.66.7';
const NEWCOMER_CLIENT = '127.8.0.2'; // London too: a new connection for every request
/** The idle flood's addresses (London): each holds what --max-conns-per-ip (256) lets it, 200. */
const IDLE_FLOOD_ADDRESSES = Array.from({ length: 8 }, (_, i) => `127.8.70.${i + 1}`);
const IDLE_PER_ADDRESS = 200;
const ADMIN_TOKEN = 'bench-hostile-token-0123456789';
const SECONDS = envInt('HOSTILE_SECONDS', 10, 2, 300);
const RATE = envInt('HOSTILE_RATE', 100, 1, 5_000);
const NEWCOMER_RATE = envInt('HOSTILE_NEWCOMER_RATE', 10, 1, 200);
/**
 * The router's --max-connections for the run: well above what the mixed attack and the clients hold
 * (about 250), below what the idle flood opens (1,600), so the flood meets the cap.
 */
const MAX_CONNECTIONS = envInt('HOSTILE_MAX_CONNECTIONS', 1024, 64, 100_000);
/**
 * The attacks run. The idle flood only when asked for: at the cap it turns the mix's own attacker
 * address away (that address holds far more than its share), so the other attacks would be
 * measured at a closed door.
 */
const ATTACKS = process.env.HOSTILE_ATTACKS?.split(',') ?? ['slowloris', 'slowPost', 'slowRead', 'pipelined', 'resetStreams', 'handshakes'];
/**
 * From the attack's start to the measured phase. The idle flood's first 1,600 connections are
 * full TLS handshakes, 1.6–2.5 s of the router's core on the development machine: its phase
 * measures the flood held, not its opening burst (the handshake loop is the attack on handshakes).
 */
const BUILD_UP_SECONDS = ATTACKS.includes('idleFlood') ? 5 : 2;
const BIG_BYTES = 8 * 1024 * 1024;
/** The router gets a core of its own; the normal client, the origins and the attacker share the other. */
const ROUTER_CPU = 1;
const CLIENT_CPU = 0;

/** `taskset -c cpu …` when the machine has two cores and taskset; otherwise the command as it is. */
function pinned(cpu: number, command: readonly string[]): [string, string[]] {
  const canPin = availableParallelism() >= 2 && existsSync('/usr/bin/taskset');
  return canPin ? ['/usr/bin/taskset', ['-c', String(cpu), ...command]] : [command[0]!, command.slice(1)];
}


// --- the regions: two in-process orchestrator stand-ins -------------------------------------------

/** Answers `/big` with 8 MiB, anything else with 1 KiB after 2 ms. */
async function startOrigin(): Promise<Server> {
  const small = Buffer.alloc(1024, 0x62);
  // One shared 8 MiB buffer written in one call: the socket holds a reference and the kernel takes
  // it as the router reads, so an origin serving many large answers costs its core almost nothing
  // (a JS pump loop per answer made the origin, not the router, the bottleneck under attack).
  const big = Buffer.alloc(BIG_BYTES, 0x61);
  const server = createServer((req, res) => {
    if (req.url === '/healthz') return void res.end('ok');
    req.resume();
    if (req.url?.startsWith('/big')) {
      res.writeHead(200, { 'content-length': BIG_BYTES });
      return void res.end(big);
    }
    setTimeout(() => res.end(small), 2);
  });
  server.keepAliveTimeout = 5_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

const portOf = (server: Server) => (server.address() as { port: number }).port;

/**
 * Both regions' stand-ins in a child process of their own (on the clients' core): the attack's
 * large answers cost the origins CPU, which must not delay the normal client's clock.
 */
async function startOrigins(): Promise<{ child: ChildProcess; fra: number; nyc: number }> {
  const [command, argv] = pinned(CLIENT_CPU, [process.execPath, process.argv[1]!, '--origins']);
  const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  const ports = JSON.parse(line.toString()) as { fra: number; nyc: number };
  return { child, ...ports };
}

async function serveOrigins(): Promise<void> {
  const fra = await startOrigin();
  const nyc = await startOrigin();
  process.stdout.write(`${JSON.stringify({ fra: portOf(fra), nyc: portOf(nyc) })}\n`);
  await once(process, 'SIGTERM');
}

// --- the router ----------------------------------------------------------------------------------

interface RouterProcess {
  readonly child: ChildProcess;
  readonly https: number;
  readonly admin: number;
}

async function startRouter(dir: string, fraPort: number, nycPort: number): Promise<RouterProcess> {
  const closed = `http://127.0.0.1:${await freePort()}`;
  const coords: Record<string, [string, number, number]> = { atl: ['Atlanta', 33.749, -84.388], nyc: ['New York', 40.7128, -74.006], lax: ['Los Angeles', 34.0522, -118.2437], fra: ['Frankfurt', 50.1109, 8.6821], syd: ['Sydney', -33.8688, 151.2093] };
  const origins: Record<string, string> = { fra: `http://127.0.0.1:${fraPort}`, nyc: `http://127.0.0.1:${nycPort}` };
  const regionsFile = join(dir, 'regions.json');
  writeFileSync(
    regionsFile,
    JSON.stringify({
      defaultRegion: 'nyc',
      countryRegions: {},
      regions: Object.entries(coords).map(([id, [name, lat, lon]]) => ({ id, name, lat, lon, orchestrators: [origins[id] ?? closed], capacity: { soft: 512, hard: 1024 } })),
    }),
  );
  const https = await freePort();
  const http = await freePort();
  const admin = await freePort();
  const args = [
    join(packageRoot(), 'dist', 'src', 'main.js'), 'router', '--workers', '1', '--dev-cert', '--regions', regionsFile,
    '--https-port', String(https), '--http-port', String(http), '--admin-port', String(admin), '--bind', '127.0.0.1',
    '--unknown-functions', 'forward', '--probe', 'on', '--probe-interval', '500', '--access-log', 'off', '--log-level', 'warn',
    '--max-connections', String(MAX_CONNECTIONS),
  ];
  // HOSTILE_ROUTER_FLAGS: extra node flags for the router alone (e.g. --trace-gc, --cpu-prof), its output shown.
  const flags = process.env.HOSTILE_ROUTER_FLAGS?.split(' ').filter((f) => f !== '') ?? [];
  const [command, argv] = pinned(ROUTER_CPU, [process.execPath, ...flags, ...args]);
  const child = spawn(command, argv, { stdio: ['ignore', flags.length > 0 ? 'inherit' : 'ignore', 'inherit'], env: { ...process.env, EDGE_ADMIN_TOKEN: ADMIN_TOKEN } });
  // Killed on every exit path from here: a router that never became ready (or a Ctrl-C while it
  // started) was left running, pinned to its core and holding its ports.
  leftBehind.push(() => child.kill('SIGKILL'));
  child.once('exit', (code, signal) => {
    if (!stopping) console.error(`the router exited during the run (code ${code}, signal ${signal})`);
  });
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the router exited with ${child.exitCode}`);
    const up = await request(`http://127.0.0.1:${admin}/api/regions`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
      .then(async (r) => ((await r.body.json()) as { regions: Array<{ id: string; status: string }> }).regions.find((x) => x.id === 'fra')?.status === 'up')
      .catch(() => false);
    if (up) return { child, https, admin };
    if (Date.now() > deadline) throw new Error('the router did not become ready');
    await sleep(100);
  }
}

let stopping = false;

/** CPU time the process has used (user + system), ms; NaN once it is gone. */
const cpuMs = (pid: number): number => cpuSeconds(pid) * 1_000;

/** Resident memory, MiB; 0 once the process is gone (the exit handler says so). */
function rssMb(pid: number): number {
  const bytes = residentBytes(pid);
  return Number.isNaN(bytes) ? 0 : bytes / 1048576;
}

async function outstandingAtFra(router: RouterProcess): Promise<{ routerActive: number; routerQueued: number }> {
  const res = await request(`http://127.0.0.1:${router.admin}/api/regions`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  const body = (await res.body.json()) as { regions: Array<{ id: string; routerActive: number; routerQueued: number }> };
  return body.regions.find((r) => r.id === 'fra')!;
}

async function routerMetrics(router: RouterProcess): Promise<string> {
  return (await request(`http://127.0.0.1:${router.admin}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body.text();
}

/** The router's own view of its stalls since the previous scrape (prom-client's default metrics). */
function eventLoopDelay(metrics: string): string {
  const read = (name: string) => Number(new RegExp(`^nodejs_eventloop_lag_${name}_seconds (\\S+)`, 'm').exec(metrics)?.[1] ?? Number.NaN) * 1000;
  return `p50 ${read('p50').toFixed(1)} ms, p99 ${read('p99').toFixed(1)} ms, max ${read('max').toFixed(1)} ms`;
}

// --- the normal client ---------------------------------------------------------------------------

interface Sample {
  readonly at: number;
  readonly latency: number;
  readonly timing: string;
}

/** Set HOSTILE_SLOWEST=n to see the n slowest normal requests under attack: when, how long, and the router's own timing. */
const SHOW_SLOWEST = envInt('HOSTILE_SLOWEST', 0, 0, 1_000);

async function normalTraffic(port: number, seconds: number, slowest?: Sample[]): Promise<{ latencies: number[]; errors: number }> {
  const agent = new Agent({
    localAddress: NORMAL_CLIENT,
    connections: 16,
    connect: { host: '127.0.0.1', port, rejectUnauthorized: false, servername: HOST, lookup: (_h: string, o: { all?: boolean }, cb: (e: Error | null, a: unknown, f?: number) => void) => (o.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4)) } as never,
  });
  const latencies: number[] = [];
  let errors = 0;
  // Latency from when the request was due, so a stalled client loop counts against the router too.
  await paced(seconds * RATE, RATE, (i, due, started) =>
    request(`https://${HOST}:${port}/normal/${i}`, { dispatcher: agent, headersTimeout: 10_000, bodyTimeout: 10_000 })
      .then(async (res) => {
        await res.body.dump();
        const latency = performance.now() - due;
        if (res.statusCode === 200) latencies.push(latency);
        else errors++;
        if (slowest !== undefined) slowest.push({ at: (due - started) / 1000, latency, timing: String(res.headers['server-timing'] ?? '') });
      })
      .catch(() => void errors++),
  );
  await agent.close();
  return { latencies, errors };
}

/**
 * Starts `count` requests `perSecond` apart, each when it is due (`send(i, due, started)`, on
 * performance.now()'s clock), whether the earlier ones have ended or not; resolves once all have.
 */
async function paced(count: number, perSecond: number, send: (i: number, due: number, started: number) => Promise<void>): Promise<void> {
  const pending: Array<Promise<void>> = [];
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const due = started + (i * 1000) / perSecond;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    pending.push(send(i, due, started));
  }
  await Promise.all(pending);
}

/**
 * The newcomer: a client with no connection open, as most visitors arrive. Every request opens a
 * new TLS connection from NEWCOMER_CLIENT and closes it (`Connection: close`); a connection closed
 * or refused before a 200 counts as an error. Latency, from when the request was due, includes the
 * connect and the full handshake.
 */
async function newcomerTraffic(port: number, seconds: number): Promise<{ latencies: number[]; errors: number }> {
  const latencies: number[] = [];
  let errors = 0;
  const visit = (i: number, due: number) =>
    new Promise<void>((resolve) => {
      const socket = tlsConnect({ port, host: '127.0.0.1', servername: HOST, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'], localAddress: NEWCOMER_CLIENT } as never);
      let head = '';
      const giveUp = setTimeout(() => socket.destroy(), 10_000);
      socket.setEncoding('latin1');
      socket.on('error', () => undefined);
      socket.once('secureConnect', () => socket.write(`GET /newcomer/${i} HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`));
      socket.on('data', (chunk: string) => {
        if (head.length < 16) head += chunk;
      });
      socket.once('close', () => {
        clearTimeout(giveUp);
        if (head.startsWith('HTTP/1.1 200')) latencies.push(performance.now() - due);
        else errors++;
        resolve();
      });
    });
  await paced(seconds * NEWCOMER_RATE, NEWCOMER_RATE, visit);
  return { latencies, errors };
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

// --- the attacker --------------------------------------------------------------------------------

function tlsTo(port: number, from = ATTACKER): Promise<TLSSocket | null> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ port, host: '127.0.0.1', servername: HOST, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'], localAddress: from } as never);
    socket.on('error', () => resolve(null));
    socket.once('close', () => resolve(null));
    socket.once('secureConnect', () => resolve(socket));
  });
}

/** Runs the attack mix until `stopAt`; returns counts of what it managed to open. */
async function attack(port: number, stopAt: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = { slowloris: 0, slowPost: 0, slowRead: 0, pipelined: 0, resetStreamsWritten: 0, resetClosed: 0, resetConnectFailed: 0, handshakes: 0, refused: 0, idleHeld: 0, idleRefused: 0 };
  const sockets = new Set<TLSSocket>();
  const hold = async (kind: string, open: (s: TLSSocket) => void, trickle?: (s: TLSSocket, i: number) => void) => {
    const socket = await tlsTo(port);
    if (socket === null) return void counts.refused!++;
    counts[kind]!++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    open(socket);
    for (let i = 0; trickle !== undefined && !socket.destroyed && Date.now() < stopAt; i++) {
      await sleep(1_000);
      if (!socket.destroyed) trickle(socket, i);
    }
  };
  const jobs: Array<Promise<unknown>> = [];
  const on = (kind: string) => ATTACKS.includes(kind);
  // 80 slowloris heads: one header line a second, never finished.
  for (let i = 0; i < (on('slowloris') ? 80 : 0); i++) jobs.push(hold('slowloris', (s) => s.write(`GET /loris HTTP/1.1\r\nHost: ${HOST}\r\n`), (s, n) => s.write(`x-slow-${n}: 1\r\n`)));
  // 80 slow POSTs: 100,000 bytes announced, 10 bytes a second.
  for (let i = 0; i < (on('slowPost') ? 80 : 0); i++) jobs.push(hold('slowPost', (s) => s.write(`POST /upload HTTP/1.1\r\nHost: ${HOST}\r\ncontent-length: 100000\r\n\r\n`), (s) => s.write('0123456789')));
  // 40 slow readers: ask for 8 MiB and read nothing.
  for (let i = 0; i < (on('slowRead') ? 40 : 0); i++) jobs.push(hold('slowRead', (s) => { s.pause(); s.write(`GET /big/read HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`); }));
  /** One attacker connection after another until the end, `retryMs` after a refused one; `use` gets each that opened. */
  const connectionAfterConnection = async (retryMs: number, use: (s: TLSSocket) => Promise<void> | void) => {
    while (Date.now() < stopAt) {
      const s = await tlsTo(port);
      if (s === null) {
        counts.refused!++;
        await sleep(retryMs);
        continue;
      }
      await use(s);
    }
  };
  // 20 at a time: three pipelined 8 MiB GETs, unread, abandoned after a second; again until the end.
  for (let i = 0; i < (on('pipelined') ? 20 : 0); i++) {
    jobs.push(
      connectionAfterConnection(200, async (s) => {
        s.pause();
        s.on('error', () => undefined);
        s.write(['a', 'b', 'c'].map((p) => `GET /big/${p} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`).join(''));
        counts.pipelined!++;
        await sleep(1_000);
        s.destroy();
      }),
    );
  }
  // 2 HTTP/2 connections at a time, written frame by frame as a rapid-reset tool writes them
  // (CVE-2023-44487; Node's client is too polite to be one): streams in batches of 100 a millisecond
  // apart, each cancelled as soon as it is opened, up to 1,000 a connection. One connection packs each
  // stream's reset beside its request; the other writes a batch's resets a millisecond after its
  // requests, so the router reads them later. Again 2 s after the router closed the connection or it
  // sent its 1,000; a refused connect (the penalty box) is tried again 2 s later.
  for (let c = 0; c < (on('resetStreams') ? 2 : 0); c++) {
    const resetsLater = c === 1;
    jobs.push(
      (async () => {
        while (Date.now() < stopAt) {
          const connection = await openRawH2(port, { reading: false, servername: HOST, localAddress: RESET_ATTACKER }).catch(() => null);
          if (connection === null) {
            counts.resetConnectFailed!++;
            await sleep(2_000);
            continue;
          }
          connection.socket.resume(); // read and drop what the router says
          for (let first = 1; first < 2_000 && Date.now() < stopAt; first += 200) {
            let sent: boolean;
            if (resetsLater) {
              const { requests, resets } = requestsThenResets(first, 100, '/reset', HOST);
              sent = await connection.send(requests);
              if (sent) {
                await sleep(1);
                sent = await connection.send(resets);
              }
            } else sent = await connection.send(rapidResetFrames(first, 100, '/reset', HOST));
            if (!sent) break;
            counts.resetStreamsWritten! += 100;
            await sleep(1);
          }
          if (await connection.closed(2_000)) counts.resetClosed!++;
          connection.socket.destroy();
          await sleep(2_000);
        }
      })(),
    );
  }
  // 4 handshake loops: connect, complete TLS, close, again at once; each full handshake costs the
  // router a signature. A refused connect is retried after a millisecond, as a determined client would.
  for (let c = 0; c < (on('handshakes') ? 4 : 0); c++) {
    jobs.push(
      connectionAfterConnection(1, (s) => {
        counts.handshakes!++;
        s.destroy();
      }),
    );
  }
  // The idle flood: IDLE_PER_ADDRESS connections from each of the flood's addresses (more than the
  // router's cap in all), each opened again half a second after the router closes it, as a patient
  // attacker keeps its place. Half are HTTP/1.1 connections that send a request every 4 s (inside the
  // router's 5 s keep-alive timeout), a quarter HTTP/2 sessions idle after one request, a quarter TCP
  // connections that never send a ClientHello (the handshake timeout cuts them after 10 s).
  // Until the router closes it (an error, a reset as the router cut it, comes before the close) or the attack ends.
  const idleSince = (connection: { once(event: 'close', listener: () => void): unknown }) =>
    Promise.race([new Promise<void>((resolve) => connection.once('close', resolve)), sleep(Math.max(0, stopAt - Date.now()))]);
  /** Counts a flood connection by how long the router kept it: a second or more, held; less, turned away. */
  const tally = (openedAt: number) => void (Date.now() - openedAt >= 1_000 ? counts.idleHeld!++ : counts.idleRefused!++);
  const holdIdle = async (from: string, kind: number) => {
    while (Date.now() < stopAt) {
      const openedAt = Date.now();
      if (kind === 0 || kind === 1) {
        const s = await tlsTo(port, from);
        if (s !== null) {
          s.resume();
          const ask = () => s.write(`GET /idle HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
          ask();
          // Each on its own beat: 800 connections asking in the same millisecond would be a burst
          // of requests, another attack.
          let refresh: NodeJS.Timeout | undefined;
          const firstRefresh = setTimeout(() => {
            ask();
            refresh = setInterval(ask, 4_000);
          }, 1_000 + Math.random() * 3_000);
          await idleSince(s);
          clearTimeout(firstRefresh);
          clearInterval(refresh);
          s.destroy();
        }
      } else if (kind === 2) {
        const session = http2Connect(`https://${HOST}:${port}`, { rejectUnauthorized: false, host: '127.0.0.1', servername: HOST, localAddress: from } as never);
        session.on('error', () => undefined);
        const opened = await Promise.race([once(session, 'connect').then(() => true), once(session, 'close').then(() => false), sleep(10_000).then(() => false)]).catch(() => false);
        if (opened) {
          const stream = session.request({ ':path': '/idle-h2', ':method': 'GET', ':authority': HOST });
          stream.on('error', () => undefined);
          stream.resume();
          await idleSince(session);
        }
        session.destroy();
      } else {
        const s = netConnect({ port, host: '127.0.0.1', localAddress: from });
        s.on('error', () => undefined);
        s.resume();
        await idleSince(s);
        s.destroy();
      }
      tally(openedAt);
      await sleep(500);
    }
  };
  for (const from of on('idleFlood') ? IDLE_FLOOD_ADDRESSES : []) {
    for (let i = 0; i < IDLE_PER_ADDRESS; i++) jobs.push(holdIdle(from, i % 4));
  }
  while (Date.now() < stopAt) await sleep(100);
  for (const s of sockets) s.destroy();
  await Promise.race([Promise.all(jobs), sleep(3_000)]);
  return counts;
}

// --- the run -------------------------------------------------------------------------------------

/**
 * What must not outlive this process however it ends (a signal, a crash), undone synchronously in
 * reverse order on exit: a signal skipped main's `finally`, and left the router and the origins
 * running (the origins wait for a SIGTERM of their own) and the temporary directory behind.
 */
const leftBehind: Array<() => void> = [];
process.on('exit', () => {
  for (const undo of leftBehind.splice(0).reverse()) {
    try {
      undo();
    } catch {
      // gone already
    }
  }
});

async function main(): Promise<void> {
  // This process (normal client and origins) stays off the router's core.
  if (existsSync('/usr/bin/taskset') && availableParallelism() >= 2) spawnSync('/usr/bin/taskset', ['-pc', String(CLIENT_CPU), String(process.pid)], { stdio: 'ignore' });
  const dir = mkdtempSync(join(tmpdir(), 'edge-hostile-'));
  leftBehind.push(() => rmSync(dir, { recursive: true, force: true }));
  const origins = await startOrigins();
  leftBehind.push(() => origins.child.kill('SIGTERM'));
  let router: RouterProcess | undefined;
  try {
    router = await startRouter(dir, origins.fra, origins.nyc);
    const pid = router.child.pid!;
    const network = process.env.HOSTILE_IN_NETNS === '1' ? 'own network namespace' : 'host network stack';
    console.log(`hostile benchmark: ${SECONDS} s per phase, normal client at ${RATE} req/s, newcomers at ${NEWCOMER_RATE} new connections/s, --max-connections ${MAX_CONNECTIONS}, ${network} (tcp_notsent_lowat ${notsentLowat()}), load average ${loadavg().map((n) => n.toFixed(2)).join(' / ')}`);
    await normalTraffic(router.https, 2); // warm-up
    let cpuAt = cpuMs(pid);
    const [calm, calmNewcomers] = await Promise.all([normalTraffic(router.https, SECONDS), newcomerTraffic(router.https, SECONDS)]);
    const calmCpu = (cpuMs(pid) - cpuAt) / SECONDS;
    const calmRss = rssMb(pid);

    // The attacker runs in its own process, so its work never stalls the normal client's clock.
    // At the lowest priority on the clients' core: it must not take the router's core, nor starve the normal client.
    const [command, argv] = pinned(CLIENT_CPU, ['nice', '-n', '19', process.execPath, process.argv[1]!, '--attacker', String(router.https), String(SECONDS + BUILD_UP_SECONDS + 1)]);
    const attacker = spawn(command, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    leftBehind.push(() => attacker.kill('SIGKILL'));
    const attackOutput: Buffer[] = [];
    attacker.stdout!.on('data', (c: Buffer) => attackOutput.push(c));
    const attacking = once(attacker, 'exit').then(() => JSON.parse(Buffer.concat(attackOutput).toString() || '{}') as Record<string, number>);
    let peakRss = calmRss;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssMb(pid))), 250);
    await sleep(BUILD_UP_SECONDS * 1_000); // let the attack build up before measuring
    await routerMetrics(router); // prom-client restarts its event-loop delay histogram at each scrape
    const samples: Sample[] = [];
    cpuAt = cpuMs(pid);
    const [underAttack, newcomersUnderAttack] = await Promise.all([normalTraffic(router.https, SECONDS, samples), newcomerTraffic(router.https, SECONDS)]);
    const attackCpu = (cpuMs(pid) - cpuAt) / SECONDS;
    const loopDelay = eventLoopDelay(await routerMetrics(router));
    const counts = await attacking;
    clearInterval(sampler);

    // Nothing may stay held for the attacker once it is gone.
    let left = await outstandingAtFra(router);
    const settleBy = Date.now() + 5_000;
    while (left.routerActive + left.routerQueued > 0 && Date.now() < settleBy) {
      await sleep(100);
      left = await outstandingAtFra(router);
    }

    const metrics = await routerMetrics(router);
    const refusedLines = [...metrics.matchAll(/^edge_router_connections_refused_total\{reason="(\w+)"\} (\d+)/gm)].map((m) => `${m[1]} ${m[2]}`);
    console.log(`router refused or closed: ${refusedLines.join(', ')}`);
    const calmSorted = calm.latencies.sort((a, b) => a - b);
    const attackSorted = underAttack.latencies.sort((a, b) => a - b);
    const row = (name: string, s: number[], errors: number) =>
      `${name.padEnd(14)} ${String(s.length).padStart(6)} ok ${String(errors).padStart(4)} errors   p50 ${percentile(s, 50).toFixed(2).padStart(7)} ms   p99 ${percentile(s, 99).toFixed(2).padStart(7)} ms   max ${(s.at(-1) ?? Number.NaN).toFixed(2).padStart(8)} ms`;
    console.log(row('calm', calmSorted, calm.errors));
    console.log(row('under attack', attackSorted, underAttack.errors));
    console.log(row('newcomers calm', calmNewcomers.latencies.sort((a, b) => a - b), calmNewcomers.errors));
    console.log(row('  under attack', newcomersUnderAttack.latencies.sort((a, b) => a - b), newcomersUnderAttack.errors));
    console.log(`router CPU: calm ${calmCpu.toFixed(0)} ms/s, under attack ${attackCpu.toFixed(0)} ms/s; event-loop delay under attack: ${loopDelay}`);
    for (const sample of samples.sort((a, b) => b.latency - a.latency).slice(0, SHOW_SLOWEST)) {
      console.log(`  slow: due at ${sample.at.toFixed(2)} s, ${sample.latency.toFixed(1)} ms, router ${sample.timing}`);
    }
    console.log(`attack counts: ${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    console.log(`router RSS: calm ${calmRss.toFixed(0)} MB, peak under attack ${peakRss.toFixed(0)} MB; held at fra afterwards: ${left.routerActive} active, ${left.routerQueued} queued`);
    const ratio = percentile(attackSorted, 99) / percentile(calmSorted, 99);
    const errors = calm.errors + underAttack.errors + calmNewcomers.errors + newcomersUnderAttack.errors + (left.routerActive + left.routerQueued > 0 ? 1 : 0);
    console.log(`hostile: normal p99 ratio ${ratio.toFixed(2)}, errors ${errors}, router RSS ${peakRss.toFixed(0)} MB`);
  } finally {
    stopping = true;
    router?.child.kill('SIGTERM');
    if (router !== undefined && router.child.exitCode === null) await Promise.race([once(router.child, 'exit'), sleep(15_000)]);
    router?.child.kill('SIGKILL');
    origins.child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The run, which a SIGINT or SIGTERM ends through the exit hook above (what it started is stopped). */
function mainStoppedBySignals(): Promise<void> {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: stopping the router, the origins and the attacker`);
      process.exit(130);
    });
  }
  return main();
}

/** The deployment's recommended value (docs/hostile-clients.md). */
const NOTSENT_LOWAT = 131_072;

function notsentLowat(): string {
  try {
    return readFileSync('/proc/sys/net/ipv4/tcp_notsent_lowat', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

/**
 * Re-runs this benchmark inside a new network namespace (its own loopback and TCP settings) when
 * it can; returns the exit code, or null when it cannot (not root, no `ip`) or was told not to.
 */
async function inOwnNetworkNamespace(): Promise<number | null> {
  if (process.env.HOSTILE_NETNS === 'off' || process.env.HOSTILE_IN_NETNS === '1') return null;
  if (process.getuid?.() !== 0 || !existsSync('/usr/sbin/ip') && !existsSync('/sbin/ip') && !existsSync('/usr/bin/ip')) {
    console.log(`bench:hostile: not root or no iproute2: running on the host's network stack (tcp_notsent_lowat ${notsentLowat()})`);
    return null;
  }
  const ns = `edge-hostile-${process.pid}`;
  const ip = (...args: string[]) => spawnSync('ip', args, { stdio: ['ignore', 'ignore', 'inherit'] }).status === 0;
  if (!ip('netns', 'add', ns)) return null;
  try {
    if (!ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up') || !ip('netns', 'exec', ns, 'sysctl', '-qw', `net.ipv4.tcp_notsent_lowat=${NOTSENT_LOWAT}`)) {
      throw new Error(`could not set up network namespace ${ns}`);
    }
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, ...process.execArgv, process.argv[1]!], { stdio: 'inherit', env: { ...process.env, HOSTILE_IN_NETNS: '1' } });
    // A signal is the run's to handle (it stops what it started); this process waits for it to
    // end, then deletes the namespace: ended by the signal itself, the namespace stayed.
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    const [code] = (await once(child, 'exit')) as [number | null];
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
    return code ?? 1;
  } finally {
    ip('netns', 'del', ns);
  }
}

const role = process.argv[2];
(role === '--attacker'
  ? attack(Number(process.argv[3]), Date.now() + Number(process.argv[4]) * 1000).then((counts) => void process.stdout.write(JSON.stringify(counts)))
  : role === '--origins'
    ? serveOrigins()
    : inOwnNetworkNamespace().then((code) => (code === null ? mainStoppedBySignals() : process.exit(code)))
).then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`bench:hostile failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
