/**
 * `npm run bench:instructions`: user-space instructions per request of the router and of the bare
 * Node proxy (bench/bare-proxy.ts), counted by valgrind's callgrind over a fixed number of plain
 * HTTP/1.1 requests after a warm-up. Requests per second and CPU time move with whatever else the
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
 * Subjects, one at a time, each under callgrind with instrumentation off until the warm-up is over:
 * the bare proxy, the router with every feature on (as `npm run bench` runs it), and the router
 * with its access log off (the log's share). The origin is a node:http server in this process
 * (`200 ok\n`): its speed does not change the proxies' counts. The last line reads
 * `router/bare instructions: R` (main threads).
 *
 * Env: BENCH_INSTR_REQUESTS (counted requests per subject, default 5000), BENCH_INSTR_WARMUP
 * (requests before counting, default 30000: until the JIT has settled), BENCH_INSTR_SUBJECTS
 * (comma-separated names, default all three; the ratio line needs node-bare and router),
 * BENCH_INSTR_TOP (print each subject's N dearest functions on the main thread, JavaScript named
 * through V8's perf map; default 0).
 * Installs valgrind and h2load with apt-get when they are missing.
 */
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'undici';
import { packageRoot } from '../src/cli/package-root.js';
import { generateSelfSignedCertificate } from '../src/ingress/certificates/dev-certificate.js';
import { freePort } from '../src/sim/free-port.js';
import { PerfMap, selfCosts, splitThreads, type FunctionCost } from './callgrind.js';
import { envInt } from './env-int.js';
import { BenchError, capture, cleanup, ensureTool, expectOk, killGroup, makeTempDir, regionsFileFor, startService, tail, waitForPort, type Managed } from './services.js';

const HOST = 'echo-demo.telnyxcompute.com';
const REQUESTS = envInt('BENCH_INSTR_REQUESTS', 5_000, 100, 1_000_000);
const WARMUP = envInt('BENCH_INSTR_WARMUP', 30_000, 0, 10_000_000);
/**
 * Other threads above this share of the main thread's count: V8's compiler was still at work. In
 * settled runs they did 4–11 % of the main thread's count; in unsettled ones 19–29 %, and the main
 * thread's own count read 5–10 % high.
 */
const JIT_BUSY_SHARE = 0.15;
/** Print each subject's dearest functions on the main thread (JIT code named from V8's perf map). */
const TOP = envInt('BENCH_INSTR_TOP', 0, 0, 1_000);
/** A Node process under valgrind starts some twenty times slower. */
const START_TIMEOUT_MS = 180_000;
const LOAD_TIMEOUT_MS = 30 * 60_000;

interface Subject {
  readonly name: string;
  /** Node's arguments; the proxy listens for plain HTTP on `port`. */
  readonly args: (port: number) => readonly string[];
}

interface Tools {
  readonly valgrind: string;
  readonly control: string;
  readonly annotate: string;
  readonly h2load: string;
}

async function load(tools: Tools, url: string, requests: number): Promise<void> {
  const out = await capture(tools.h2load, ['--h1', '-n', String(requests), '-c', '20', '-t', '1', '-H', `:authority: ${HOST}`, url], LOAD_TIMEOUT_MS);
  const ok = /status codes: (\d+) 2xx/.exec(out.stdout);
  if (out.code !== 0 || ok === null || Number(ok[1]) !== requests) throw new BenchError(`h2load against ${url}: expected ${requests} 2xx answers (${out.exit}):\n${tail(out.stdout || out.stderr, 8)}`);
}

interface Count {
  /** Per request, main thread. */
  readonly main: number;
  /** Per request, every other thread (JIT compiler, GC helpers). */
  readonly others: number;
  /** The main thread's dearest functions, per request (BENCH_INSTR_TOP > 0). */
  readonly top: readonly FunctionCost[];
}

async function measure(tools: Tools, dir: string, subject: Subject, checkAgent: Agent): Promise<Count> {
  const port = await freePort('0.0.0.0');
  const outFile = join(dir, `${subject.name}.callgrind`);
  const nodeFlags = TOP > 0 ? ['--perf-basic-prof'] : [];
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
    await expectOk(proxy, `http://127.0.0.1:${port}/`, checkAgent, HOST);
    const url = `http://127.0.0.1:${port}/`;
    if (WARMUP > 0) await load(tools, url, WARMUP);
    const control = async (...args: string[]) => {
      const out = await capture(tools.control, [...args, pid], 60_000);
      if (out.code !== 0) throw new BenchError(`callgrind_control ${args.join(' ')} failed (${out.exit}): ${tail(out.stderr || out.stdout, 5)}`);
    };
    await control('-i', 'on');
    await load(tools, url, REQUESTS);
    // Dumped while still instrumented: switching instrumentation off first leaves the dump empty.
    await control('-d');
    await control('-i', 'off');
    const names = readdirSync(dir).filter((f) => f.startsWith(`${subject.name}.callgrind.`));
    const files = names.map((name) => ({ name: join(dir, name), text: readFileSync(join(dir, name), 'utf8') }));
    const split = splitThreads(outFile, files);
    if (split === undefined) throw new BenchError(`${subject.name}: callgrind wrote no dump of the main thread (files: ${names.join(', ') || 'none'})`);
    let top: FunctionCost[] = [];
    if (TOP > 0) {
      const annotated = await capture(tools.annotate, ['--inclusive=no', '--threshold=100', split.mainFile], 120_000);
      const map = existsSync(perfMapFile) ? new PerfMap(readFileSync(perfMapFile, 'utf8')) : undefined;
      top = selfCosts(annotated.stdout, map)
        .slice(0, TOP)
        .map((f) => ({ name: f.name, instructions: f.instructions / REQUESTS }));
    }
    return { main: split.main / REQUESTS, others: split.others / REQUESTS, top };
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

  const pem = await generateSelfSignedCertificate({ names: ['*.telnyxcompute.com', 'localhost'] });
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  writeFileSync(certFile, pem.cert);
  writeFileSync(keyFile, pem.key, { mode: 0o600 });
  const regionsFile = regionsFileFor(root, dir, originUrl);

  const router = (extra: readonly string[]) => (port: number) => [
    join(root, 'dist', 'src', 'main.js'), 'router', '--workers', '1', '--plain-http', 'serve', '--http-port', String(port), '--https-port', '0', '--admin-port', '0',
    '--tls-cert', certFile, '--tls-key', keyFile, '--regions', regionsFile, '--unknown-functions', 'forward', '--log-level', 'info', ...extra,
  ];
  const subjects: Subject[] = [
    { name: 'node-bare', args: (port) => [join(root, 'dist', 'bench', 'bare-proxy.js'), originUrl, String(port), '0', certFile, keyFile] },
    { name: 'router', args: router([]) },
    { name: 'router-no-access-log', args: router(['--access-log', 'off']) },
  ];
  const wanted = process.env.BENCH_INSTR_SUBJECTS?.split(',').map((name) => name.trim());
  const unknown = wanted?.filter((name) => !subjects.some((s) => s.name === name)) ?? [];
  if (unknown.length > 0) throw new BenchError(`BENCH_INSTR_SUBJECTS: unknown ${unknown.join(', ')} (known: ${subjects.map((s) => s.name).join(', ')})`);
  const chosen = wanted === undefined ? subjects : subjects.filter((s) => wanted.includes(s.name));
  console.log(`date: ${new Date().toISOString()}; node ${process.version}; ${(await capture(valgrind, ['--version'], 10_000)).stdout.trim()}`);
  console.log(`plain HTTP/1.1 GET / through each proxy to a node:http origin; h2load --h1 -c 20; ${WARMUP} requests of warm-up, then ${REQUESTS} counted`);
  const checkAgent = new Agent();
  const counts = new Map<string, number>();
  const count = (n: number) => Math.round(n).toLocaleString('en-US').padStart(9);
  try {
    for (const subject of chosen) {
      const measured = await measure(tools, dir, subject, checkAgent);
      counts.set(subject.name, measured.main);
      console.log(`${subject.name.padEnd(22)} ${count(measured.main)} instructions/request on the main thread (other threads ${count(measured.others).trim()}: JIT compiler, GC helpers)`);
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
  if (routerCount !== undefined) console.log(`router/bare instructions: ${(bare / routerCount).toFixed(2)}`);
}

main()
  .catch((err: unknown) => {
    console.error(err instanceof BenchError ? `bench: ${err.message}` : err);
    process.exitCode = 1;
  })
  .finally(() => cleanup());
