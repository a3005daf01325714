/**
 * `npm run bench:instructions`: user-space instructions per request of the router and of the bare
 * Node proxy (bench/bare-proxy.ts), counted by valgrind's callgrind over a fixed number of
 * requests (plain HTTP/1.1 by default; HTTPS/1.1 or HTTP/2 with BENCH_INSTR_PROTOCOL) after a warm-up. Requests per second and CPU time move with whatever else the
 * machine runs (the same build measured 94–211 µs of CPU per request within minutes here); an
 * instruction count does not, so two builds, or the router and the bare proxy, can be compared on
 * a shared machine. It is not the whole cost: the kernel's share (the same reads and writes for
 * both proxies: two reads, one writev and one write per request, counted with strace) and cache
 * misses are left out, so the instruction ratio is the stricter one.
 *
 * Counted on the main thread, where requests are handled; the other threads (V8's optimising
 * compiler, GC helpers) are reported beside it. Counted over the whole process, the same build
 * read 239,000 in one run and 315,000 in the next: TurboFan was still recompiling in the dearer one
 * (bench/callgrind.ts). The main thread's count moves about ±3.5 % from run to run.
 *
 * Net of the clock's work: after the counted requests, the proxy is counted for as long again with
 * none, and that is taken off. Health probes, timed log flushes and sweeps run by the clock, and
 * under valgrind a request takes some fifty times longer than at full speed, so their share of a
 * count was fifty times their real one: 12,600 of the router's 219,800 instructions per request,
 * while at full speed the idle router uses about 2 % of a core (mostly wake-ups), next to nothing
 * beside thousands of requests a second. The bare proxy does nothing by the clock.
 *
 * Subjects, one at a time, each under callgrind with instrumentation off until the warm-up is over:
 * the bare proxy, the router with every feature on (as `npm run bench` runs it), and the router
 * with its access log off (the log's share). The origin is a node:http server in this process
 * (`200 ok\n`): its speed does not change the proxies' counts. The last line reads
 * `router/bare instructions: R` (`router/bare instructions (tls): R` for another protocol; main
 * threads, net of the clock's work).
 *
 * Env: BENCH_INSTR_PROTOCOL (`plain` HTTP/1.1, the default; `tls`, HTTPS/1.1 on connections kept
 * alive, so the handshakes are in the warm-up and the count is the per-request cost of TLS records;
 * `h2`, HTTP/2 over TLS, 10 connections of 5 streams each, as `npm run bench`: 50 in flight, under the
 * router's 64 per client address), BENCH_INSTR_REQUESTS (counted requests per subject, default 5000), BENCH_INSTR_WARMUP
 * (requests before counting, default 60000: at 30000 V8 was often still compiling), BENCH_INSTR_WARMUP_RUNS
 * (h2load runs the warm-up is split into, each on new connections, default 1), BENCH_INSTR_SUBJECTS
 * (comma-separated names, default all three; the ratio line needs node-bare and router),
 * BENCH_INSTR_TOP (print each subject's N dearest functions on the main thread, JavaScript named
 * through V8's perf map; default 0), BENCH_INSTR_KEEP (a folder: each subject's main-thread dump and
 * V8 perf map are copied there, for `callgrind_annotate --inclusive=yes` or kcachegrind).
 * Installs valgrind and h2load with apt-get when they are missing.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'undici';
import { packageRoot } from '../src/cli/package-root.js';
import { freePort } from '../src/sim/free-port.js';
import { netCosts, PerfMap, selfCosts, splitThreads, type FunctionCost } from './callgrind.js';
import { envInt } from './env-int.js';
import { BenchError, capture, cleanup, ensureTool, expectOk, killGroup, makeTempDir, writeBenchCertificate, regionsFileFor, startService, tail, waitForPort, type Managed } from './services.js';

const HOST = 'echo-demo.telnyxcompute.com';
type Protocol = 'plain' | 'tls' | 'h2';
const PROTOCOL = process.env.BENCH_INSTR_PROTOCOL || 'plain';
if (PROTOCOL !== 'plain' && PROTOCOL !== 'tls' && PROTOCOL !== 'h2') {
  console.error(`bench: BENCH_INSTR_PROTOCOL must be plain, tls or h2, not ${JSON.stringify(PROTOCOL)}`);
  process.exit(2);
}
const protocol: Protocol = PROTOCOL;
/** h2load's arguments for the protocol: HTTP/1.1 (one request at a time per connection) or HTTP/2 (5 streams each). */
const LOAD_SHAPE: Readonly<Record<Protocol, readonly string[]>> = { plain: ['--h1', '-c', '20'], tls: ['--h1', '-c', '20'], h2: ['-c', '10', '-m', '5'] };
const REQUESTS = envInt('BENCH_INSTR_REQUESTS', 5_000, 100, 1_000_000);
const WARMUP = envInt('BENCH_INSTR_WARMUP', 60_000, 0, 10_000_000);
/**
 * The warm-up as this many h2load runs, each on new connections (default one). The counted run
 * opens new connections too, and code that only a connection's start or end exercises can change
 * the shape of objects the request path was compiled for; splitting the warm-up was meant to get
 * that over with before counting. It did not show: plain counts of the same request path read
 * 192,832 with one run and 186,827 and 191,615 with three (the count's own spread), and neither three
 * nor eight runs settled the router's HTTP/2 count (docs/performance-notes.md, thirteenth session).
 */
const WARMUP_RUNS = envInt('BENCH_INSTR_WARMUP_RUNS', 1, 1, 100);
/**
 * Other threads above this share of the main thread's count: V8's compiler was still at work. In
 * settled runs they did 4–11 % of the main thread's count; in unsettled ones 19–29 %, and the main
 * thread's own count read 5–10 % high.
 */
const JIT_BUSY_SHARE = 0.15;
/** Print each subject's dearest functions on the main thread (JIT code named from V8's perf map). */
const TOP = envInt('BENCH_INSTR_TOP', 0, 0, 1_000);
/** Left uncounted between the load and the idle count: the load's own tail (undici's keep-alive timeout is 4 s). */
const IDLE_SETTLE_MS = 5_000;
/** Where to keep each subject's main-thread dump and perf map (unset: nothing kept). */
const KEEP = process.env.BENCH_INSTR_KEEP || undefined;
/** A Node process under valgrind starts some twenty times slower. */
const START_TIMEOUT_MS = 180_000;
const LOAD_TIMEOUT_MS = 30 * 60_000;

interface Subject {
  readonly name: string;
  /** Node's arguments; the proxy listens on `port` for the benchmark's protocol (plain HTTP, or TLS with h2 and http/1.1). */
  readonly args: (port: number) => readonly string[];
}

interface Tools {
  readonly valgrind: string;
  readonly control: string;
  readonly annotate: string;
  readonly h2load: string;
}

async function load(tools: Tools, url: string, requests: number): Promise<void> {
  const out = await capture(tools.h2load, [...LOAD_SHAPE[protocol], '-n', String(requests), '-t', '1', '-H', `:authority: ${HOST}`, url], LOAD_TIMEOUT_MS);
  const ok = /status codes: (\d+) 2xx/.exec(out.stdout);
  if (out.code !== 0 || ok === null || Number(ok[1]) !== requests) throw new BenchError(`h2load against ${url}: expected ${requests} 2xx answers (${out.exit}):\n${tail(out.stdout || out.stderr, 8)}`);
}

interface Count {
  /** Per request, main thread. */
  readonly main: number;
  /** Per request, every other thread (JIT compiler, GC helpers). */
  readonly others: number;
  /** The main thread's count over as long again with no requests, divided by the same number of requests. */
  readonly idle: number;
  readonly idleSeconds: number;
  /** The main thread's dearest functions, per request, net of the clock's work (BENCH_INSTR_TOP > 0). */
  readonly top: readonly FunctionCost[];
}

async function measure(tools: Tools, dir: string, subject: Subject, checkAgent: Agent): Promise<Count> {
  const port = await freePort('0.0.0.0');
  const outFile = join(dir, `${subject.name}.callgrind`);
  // Both subjects start with a 16 MB young generation. Under valgrind a request takes some fifty
  // times longer, V8 sees a low allocation rate and keeps the young generation small: the router
  // was scavenged every 42–72 requests (8,400–18,600 instructions a request) where at full speed it
  // is every ~650, as the bare proxy is; with this flag 7 scavenges in 5,000 requests (thirty-third
  // session, docs/performance-notes.md). Given to both, it takes the artefact out of the ratio.
  const nodeFlags = ['--min-semi-space-size=16', ...(TOP > 0 || KEEP !== undefined ? ['--perf-basic-prof'] : [])];
  const proxy: Managed = startService(subject.name, 0, tools.valgrind, [
    '--tool=callgrind',
    '--instr-atstart=no',
    '--separate-threads=yes',
    `--callgrind-out-file=${outFile}`,
    process.execPath,
    ...nodeFlags,
    ...subject.args(port),
  ]);
  const pid = String(proxy.child.pid);
  // V8 writes its map of compiled code under the process's pid (valgrind runs node in its own process).
  const perfMapFile = join(tmpdir(), `perf-${pid}.map`);
  try {
    await waitForPort(proxy, port, START_TIMEOUT_MS);
    const url = `${protocol === 'plain' ? 'http' : 'https'}://127.0.0.1:${port}/`;
    await expectOk(proxy, url, checkAgent, HOST);
    for (let run = 0; run < WARMUP_RUNS && WARMUP > 0; run++) await load(tools, url, Math.ceil(WARMUP / WARMUP_RUNS));
    const control = async (...args: string[]) => {
      const out = await capture(tools.control, [...args, pid], 60_000);
      if (out.code !== 0) throw new BenchError(`callgrind_control ${args.join(' ')} failed (${out.exit}): ${tail(out.stderr || out.stdout, 5)}`);
    };
    await control('-i', 'on');
    const loadStartedAt = performance.now();
    await load(tools, url, REQUESTS);
    const loadMs = performance.now() - loadStartedAt;
    // Dumped while still instrumented: switching instrumentation off first leaves the dump empty.
    // callgrind numbers its dumps from 1: this is dump 1, the idle one below dump 2.
    await control('-d');
    // As long again with no requests: what the proxy does by the clock (health probes, timed log
    // flushes) rather than per request. Under valgrind a request takes some fifty times longer, so
    // the clock's share of the count above is fifty times what it is at full speed. The load's own
    // tail (connections closing after h2load, undici's keep-alive timeouts at 4 s, a collection)
    // is let pass uncounted first, so that it is not taken off as the clock's.
    await new Promise((resolve) => setTimeout(resolve, IDLE_SETTLE_MS));
    await control('-z');
    await new Promise((resolve) => setTimeout(resolve, loadMs));
    await control('-d');
    await control('-i', 'off');
    const names = readdirSync(dir).filter((f) => f.startsWith(`${subject.name}.callgrind.`));
    const files = names.map((name) => ({ name: join(dir, name), text: readFileSync(join(dir, name), 'utf8') }));
    const split = splitThreads(outFile, files, 1);
    const idle = splitThreads(outFile, files, 2);
    const missing = (which: string) => new BenchError(`${subject.name}: callgrind wrote no dump of the main thread for ${which} (files: ${names.join(', ') || 'none'})`);
    if (split === undefined) throw missing('the counted load (dump 1)');
    if (idle === undefined) throw missing('the idle time after it (dump 2)');
    if (KEEP !== undefined) {
      mkdirSync(KEEP, { recursive: true });
      copyFileSync(split.mainFile, join(KEEP, `${subject.name}.callgrind`));
      copyFileSync(idle.mainFile, join(KEEP, `${subject.name}.idle.callgrind`));
      if (existsSync(perfMapFile)) copyFileSync(perfMapFile, join(KEEP, `${subject.name}.perf.map`));
    }
    let top: FunctionCost[] = [];
    if (TOP > 0) {
      const map = existsSync(perfMapFile) ? new PerfMap(readFileSync(perfMapFile, 'utf8')) : undefined;
      const costs = async (file: string) => selfCosts((await capture(tools.annotate, ['--inclusive=no', '--threshold=100', file], 120_000)).stdout, map);
      top = netCosts(await costs(split.mainFile), await costs(idle.mainFile))
        .slice(0, TOP)
        .map((f) => ({ name: f.name, instructions: f.instructions / REQUESTS }));
    }
    return { main: split.main / REQUESTS, others: split.others / REQUESTS, idle: idle.main / REQUESTS, idleSeconds: loadMs / 1000, top };
  } finally {
    killGroup(proxy, 'SIGKILL');
    await proxy.exited;
    rmSync(perfMapFile, { force: true });
  }
}

async function main(): Promise<void> {
  const root = packageRoot();
  const valgrind = await ensureTool('valgrind', ['valgrind']);
  const control = await ensureTool('callgrind_control', ['valgrind']);
  const annotate = await ensureTool('callgrind_annotate', ['valgrind']);
  const h2load = await ensureTool('h2load', ['nghttp2-client']);
  if (valgrind === undefined || control === undefined || annotate === undefined || h2load === undefined) {
    throw new BenchError('valgrind and h2load are needed (apt-get install -y valgrind nghttp2-client)');
  }
  const tools = { valgrind, control, annotate, h2load };

  const dir = makeTempDir('edge-instructions-');
  const origin = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n'));
  origin.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  const originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;

  const { certFile, keyFile } = await writeBenchCertificate(dir);
  const regionsFile = regionsFileFor(root, dir, originUrl);

  // A listener gets the measured port when it serves the benchmark's protocol, else 0 (any free
  // one). The router serves h2 and http/1.1 on its HTTPS port; the bare proxy has one listener for
  // HTTPS/1.1 and another for h2.
  const portIf = (serves: readonly Protocol[], port: number) => (serves.includes(protocol) ? String(port) : '0');
  const router = (extra: readonly string[]) => (port: number) => [
    join(root, 'dist', 'src', 'main.js'), 'router', '--workers', '1', '--plain-http', 'serve', '--http-port', portIf(['plain'], port), '--https-port', portIf(['tls', 'h2'], port), '--admin-port', '0',
    '--tls-cert', certFile, '--tls-key', keyFile, '--regions', regionsFile, '--unknown-functions', 'forward', '--log-level', 'info', ...extra,
  ];
  const subjects: Subject[] = [
    {
      name: 'node-bare',
      args: (port) => [join(root, 'dist', 'bench', 'bare-proxy.js'), originUrl, portIf(['plain'], port), portIf(['tls'], port), certFile, keyFile, portIf(['h2'], port)],
    },
    { name: 'router', args: router([]) },
    { name: 'router-no-access-log', args: router(['--access-log', 'off']) },
  ];
  const wanted = process.env.BENCH_INSTR_SUBJECTS?.split(',').map((name) => name.trim());
  const unknown = wanted?.filter((name) => !subjects.some((s) => s.name === name)) ?? [];
  if (unknown.length > 0) throw new BenchError(`BENCH_INSTR_SUBJECTS: unknown ${unknown.join(', ')} (known: ${subjects.map((s) => s.name).join(', ')})`);
  const chosen = wanted === undefined ? subjects : subjects.filter((s) => wanted.includes(s.name));
  console.log(`date: ${new Date().toISOString()}; node ${process.version}; ${(await capture(valgrind, ['--version'], 10_000)).stdout.trim()}`);
  const what = { plain: 'plain HTTP/1.1', tls: 'HTTPS/1.1 (kept-alive connections)', h2: 'HTTP/2 over TLS' }[protocol];
  console.log(`${what} GET / through each proxy to a node:http origin; h2load ${LOAD_SHAPE[protocol].join(' ')}; ${WARMUP} requests of warm-up in ${WARMUP_RUNS} run(s), then ${REQUESTS} counted`);
  // The bare proxy's HTTP/2 listener offers h2 alone (ALPN): the check must speak it.
  const checkAgent = new Agent({ connect: { rejectUnauthorized: false }, allowH2: protocol === 'h2' });
  const counts = new Map<string, number>();
  const count = (n: number) => Math.round(n).toLocaleString('en-US').padStart(9);
  try {
    for (const subject of chosen) {
      const measured = await measure(tools, dir, subject, checkAgent);
      const net = measured.main - measured.idle;
      counts.set(subject.name, net);
      console.log(`${subject.name.padEnd(22)} ${count(net)} instructions/request on the main thread, net of the clock's work`);
      console.log(
        `    counted ${count(measured.main).trim()}, of which ${count(measured.idle).trim()} the clock's (the same ${measured.idleSeconds.toFixed(1)} s idle); ` +
          `other threads ${count(measured.others).trim()} (JIT compiler, GC helpers)`,
      );
      // The compiler's threads still busy means the main thread ran code not yet (re)optimised too.
      if (measured.others > JIT_BUSY_SHARE * measured.main) {
        console.log(`    (V8 was still compiling while this was counted: the other threads did ${Math.round((100 * measured.others) / measured.main)} % of the main thread's count; this one reads high. A longer BENCH_INSTR_WARMUP, or another run, settles it)`);
      }
      for (const f of measured.top) console.log(`    ${count(f.instructions)}  ${f.name.length > 150 ? `${f.name.slice(0, 150)}…` : f.name}`);
    }
  } finally {
    await checkAgent.close();
    origin.closeAllConnections();
    origin.close();
  }
  const bare = counts.get('node-bare');
  const routerCount = counts.get('router');
  if (bare === undefined) return;
  console.log('');
  for (const [name, perRequest] of counts) console.log(`${name.padEnd(22)} ×bare ${(perRequest / bare).toFixed(2)}  (bare/${name} ${(bare / perRequest).toFixed(2)})`);
  const label = protocol === 'plain' ? '' : ` (${protocol})`;
  if (routerCount !== undefined) console.log(`router/bare instructions${label}: ${(bare / routerCount).toFixed(2)} (main threads, net of the clock's work)`);
}

main()
  .catch((err: unknown) => {
    console.error(err instanceof BenchError ? `bench: ${err.message}` : err);
    process.exitCode = 1;
  })
  .finally(() => cleanup());
