/**
 * `npm run bench`: req/s and latency of four reverse proxies in front of one nginx origin, in one
 * run — this router (access log on), nginx (one worker, upstream keep-alive), the bare Node
 * reference (bench/bare-proxy.ts: node:http + undici `Pool.stream()`) and Caddy (bench/caddy.ts,
 * when Debian's package can be installed). Proxies run on CPU 1, the
 * origin and the load tools on CPU 0; after a warm-up, interleaved rounds (each scenario run for
 * every proxy in turn, the router and the bare proxy back to back, bench/round-order.ts) measure plain HTTP/1.1
 * at 50 connections, TLS at 50 connections, HTTP/2 (h2load, 10 connections × 5 streams), new TLS
 * connections per second (`openssl s_time`, one request per connection: full handshakes, then
 * resumed ones) and plain at 1 connection (added latency against the origin measured directly in the same
 * round). After the rounds, each proxy holds BENCH_IDLE_CONNECTIONS (10,000) idle HTTP/2
 * connections while wrk measures new requests beside them (and, for comparison, the same probe
 * just before opening them), and its resident memory per connection is reported. Installs nginx, caddy, wrk and h2load with apt-get when they are missing.
 *
 * Honest by construction: it refuses to start when the load average is above BENCH_MAX_LOAD
 * (default 0.5: other work would make the numbers noise), records the load average around each
 * round, and measures the origin alone before and after the rounds; if that calibration moved by
 * more than 15 % either way, the machine's other load changed during the run and it reports no
 * ratios (exit 1).
 * Prints a table per round and a summary of medians, each with the proxies' own CPU time per request
 * (their process tree's, from /proc: steadier than req/s on a shared machine); with Caddy present a
 * line reads `router/caddy: plain C, tls T, h2 H`; the line before last reads
 * `router/bare: plain P, tls T, h2 H` and the last line is exactly `router/nginx throughput: <ratio>`.
 * It never touches /etc/nginx and leaves no process behind.
 *
 * Seven rounds of 5 s runs rather than three of 10 s: the host's slow spells (every process on it
 * about 1.8× slower for tens of seconds, docs/performance-notes.md) caught one proxy of a pair in
 * two of three rounds of one run (2026-12-06: the bare proxy's CPU per plain request 74.8, 124.9,
 * 138.6 µs by round); with more, shorter pairs the median of their ratios stands on the calm ones.
 *
 * Env: BENCH_SECONDS (per run, default 5), BENCH_ROUNDS (default 7), BENCH_WARMUP_SECONDS (default 5),
 * BENCH_MAX_LOAD (default 0.5), BENCH_LOAD_WAIT_SECONDS (how long to wait for it, default 120), BENCH_NGINX=off (exercise the fallback: node:http origin, no nginx proxy),
 * BENCH_CADDY=off (leave Caddy out), BENCH_IDLE_CONNECTIONS (default 10000; 0 skips the idle part).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect as tlsConnect } from 'node:tls';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent } from 'undici';
import { packageRoot } from '../src/cli/package-root.js';
import { envInt, envNumber } from './env-int.js';
import { cpuSeconds, residentBytes } from './proc-stats.js';
import { freePort } from '../src/sim/free-port.js';
import { affinity, BenchError, capture, doneWith, runBenchmark, ensureTool, expectOk, killGroup, logTails, makeTempDir, writeBenchCertificate, pinned, regionsFileFor, pinning, startService, STOP_GRACE_MS, tail, track, waitForPort, wasInterrupted, which, type Managed } from './services.js';

/** Ports are checked on every address: the router under test binds 0.0.0.0 by default. */
const ANY_ADDRESS = '0.0.0.0';
import { nginxArgs, originConfig, proxyConfig } from './nginx.js';
import { caddyCommand, caddyfile } from './caddy.js';
import { roundOrder } from './round-order.js';
import { parseH2load, parseWrk, type WrkResult } from './wrk-output.js';
import { waitForQuietMachine } from './quiet-machine.js';
import { median, RunFailures, voidedByDrift } from './verdict.js';

const HOST = 'echo-demo.telnyxcompute.com';
const ORIGIN_CPU = 0;
const PROXY_CPU = 1;


const SECONDS = envInt('BENCH_SECONDS', 5, 1, 600);
const ROUNDS = envInt('BENCH_ROUNDS', 7, 1, 20);
const WARMUP_SECONDS = envInt('BENCH_WARMUP_SECONDS', 5, 1, 120);
const MAX_LOAD = envNumber('BENCH_MAX_LOAD', 0.5, 0, 64);
const CALIBRATION_SECONDS = 3;
const LOAD_WAIT_SECONDS = envInt('BENCH_LOAD_WAIT_SECONDS', 120, 0, 1_800);
/** `openssl s_time` processes run at once for the new-connection scenarios (each is sequential). */
const HANDSHAKE_PROCESSES = 8;
/** Idle HTTP/2 connections held open beside a new-request latency probe (0 = skip that part). */
const IDLE_CONNECTIONS = envInt('BENCH_IDLE_CONNECTIONS', 10_000, 0, 15_000);

// ---------------------------------------------------------------------------------------------
// wrk.

let wrkPath = 'wrk';
const failures = new RunFailures();

/** One wrk run from CPU 0; `target` must still be alive afterwards. */
async function wrk(label: string, target: Managed, url: string, connections: number, seconds: number, extraHeaders: readonly string[] = []): Promise<WrkResult> {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-H', `Host: ${HOST}`, ...extraHeaders.flatMap((h) => ['-H', h]), url];
  const [cmd, argv] = pinned(ORIGIN_CPU, wrkPath, args);
  const cpuBefore = cpuSeconds(target.child.pid!);
  const out = await capture(cmd, argv, seconds * 1_000 + 30_000);
  if (wasInterrupted()) throw new BenchError('wasInterrupted()');
  if (out.code !== 0) throw new BenchError(`${label}: wrk failed (${out.exit}): ${tail(out.stderr || out.stdout)}`);
  if (target.exit !== null) throw new BenchError(`${label}: ${target.name} died during the run (${target.exit})\n${logTails(target)}`);
  const parsed = parseWrk(out.stdout);
  const result = { ...parsed, cpuUs: ((cpuSeconds(target.child.pid!) - cpuBefore) * 1e6) / parsed.requests };
  failures.check(label, result);
  return result;
}

let h2loadPath = '';

async function h2load(label: string, target: Managed, url: string, seconds: number): Promise<WrkResult> {
  if (target.exit !== null) throw new BenchError(`${label}: ${target.name} is not running (${target.exit})\n${logTails(target)}`);
  const args = ['-t1', '-c10', '-m5', '-D', String(seconds), '-H', `:authority: ${HOST}`, url];
  const [cmd, argv] = pinned(ORIGIN_CPU, h2loadPath, args);
  const cpuBefore = cpuSeconds(target.child.pid!);
  const out = await capture(cmd, argv, seconds * 1_000 + 30_000);
  if (wasInterrupted()) throw new BenchError('wasInterrupted()');
  if (out.code !== 0) throw new BenchError(`${label}: h2load failed (${out.exit}): ${tail(out.stderr || out.stdout)}`);
  if (target.exit !== null) throw new BenchError(`${label}: ${target.name} died during the run (${target.exit})\n${logTails(target)}`);
  if (!/Application protocol: h2\b/.test(out.stdout)) throw new BenchError(`${label}: HTTP/2 was not negotiated (ALPN):\n${tail(out.stdout, 8)}`);
  const parsed = parseH2load(out.stdout);
  const result = { ...parsed, cpuUs: ((cpuSeconds(target.child.pid!) - cpuBefore) * 1e6) / parsed.requests };
  failures.check(label, result);
  return result;
}

let idleClientPath = '';
let opensslPath = '';

/**
 * New TLS connections per second, one request each: `openssl s_time` (`-new`: a full handshake
 * every time; `-reuse`: resuming the first connection's session), HANDSHAKE_PROCESSES of them at
 * once, since each runs one connection at a time. s_time sends `GET <page> HTTP/1.0` without a
 * Host header; the page below carries one. It prints `r` for each resumed connection.
 */
/**
 * One `request` over a new TLS connection to `port`, read to its end: the answer's length when it
 * is a 200 with the origin's body (`ok`), else what it was instead.
 */
async function checkedAnswerBytes(port: number, request: string): Promise<number | string> {
  const socket = tlsConnect({ host: '127.0.0.1', port, servername: HOST, rejectUnauthorized: false });
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.once('secureConnect', () => socket.write(request));
  const ended = await Promise.race([
    once(socket, 'close').then(
      () => 'closed' as const,
      (err: Error) => `the check request failed: ${err.message}`,
    ),
    sleep(10_000, undefined, { ref: false }).then(() => 'the check request got no whole answer within 10 s'),
  ]);
  socket.destroy();
  if (ended !== 'closed') return ended;
  const answer = Buffer.concat(chunks);
  const text = answer.toString('latin1');
  if (!/^HTTP\/1\.[01] 200 /.test(text) || !text.endsWith('\r\n\r\nok\n')) return `the check request was answered ${JSON.stringify(text.slice(0, 200))}, not 200 "ok"`;
  return answer.length;
}

async function handshakes(label: string, target: Managed, port: number, kind: 'full' | 'resumed', seconds: number): Promise<WrkResult> {
  if (target.exit !== null) throw new BenchError(`${label}: ${target.name} is not running (${target.exit})\n${logTails(target)}`);
  const page = `/ HTTP/1.0\r\nHost: ${HOST}\r\nX-Pad:`;
  // s_time sees bytes, not statuses: the length of one answer checked whole (a 200 with the
  // origin's body) is what every connection's must come to. An error page fell inside the old
  // 100-1,000 bytes (the bare proxy's 502 is 130), and fast errors were counted as connections.
  const expected = await checkedAnswerBytes(port, `GET ${page} HTTP/1.0\r\n\r\n`);
  if (typeof expected === 'string') {
    failures.add(`${label}: ${expected}`);
    return { rps: NaN, p50Ms: NaN, p99Ms: NaN, requests: 0, non2xx: 0, socketErrors: 0, socketDetail: '', cpuUs: NaN };
  }
  const args = ['s_time', '-connect', `127.0.0.1:${port}`, kind === 'full' ? '-new' : '-reuse', '-time', String(seconds), '-www', page];
  const started = performance.now();
  const outs = await Promise.all(Array.from({ length: HANDSHAKE_PROCESSES }, () => capture(...pinned(ORIGIN_CPU, opensslPath, args), seconds * 1_000 + 30_000)));
  const elapsedS = (performance.now() - started) / 1_000;
  if (wasInterrupted()) throw new BenchError('wasInterrupted()');
  if (target.exit !== null) throw new BenchError(`${label}: ${target.name} died during the run (${target.exit})\n${logTails(target)}`);
  let connections = 0;
  let reused = 0;
  const offPages: number[] = [];
  for (const out of outs) {
    const count = /(\d+) connections in [\d.]+s;/.exec(out.stdout);
    const bytes = /(\d+) bytes read per connection/.exec(out.stdout);
    if (out.code !== 0 || count === null || bytes === null) throw new BenchError(`${label}: openssl s_time failed (${out.exit}): ${tail(out.stderr || out.stdout)}`);
    connections += Number(count[1]);
    // An average (and a proxy's headers vary by a few bytes: a timing, an id): 5 % either way.
    if (Math.abs(Number(bytes[1]) - expected) > expected * 0.05) offPages.push(Number(bytes[1]));
    // The progress marks: one character per connection on lines of their own (`r` = resumed).
    for (const line of out.stdout.slice(0, count.index).split('\n')) if (/^[*rtTsS]+$/.test(line)) reused += line.split('r').length - 1;
  }
  const reusedShare = connections === 0 ? 0 : reused / connections;
  // The scenario is only what it says if the server did (or did not) resume.
  if (kind === 'resumed' && reusedShare < 0.9) failures.add(`${label}: only ${(reusedShare * 100).toFixed(0)} % of the connections were resumed`);
  if (kind === 'full' && reused > 0) failures.add(`${label}: ${reused} connections were resumed`);
  if (offPages.length > 0) failures.add(`${label}: ${offPages.join(', ')} bytes per answer where the origin's page through this proxy is ${expected}: error answers among them?`);
  return { rps: connections / elapsedS, p50Ms: NaN, p99Ms: NaN, requests: connections, non2xx: 0, socketErrors: 0, socketDetail: '', cpuUs: NaN };
}

interface IdleResult {
  readonly open: number;
  readonly rssBefore: number;
  readonly rssWith: number;
  /** The same probe just before the idle connections were opened: what the host and the proxy give without them. */
  readonly alone: WrkResult;
  readonly probe: WrkResult;
}

/** `IDLE_CONNECTIONS` idle HTTP/2 connections held open (idle-connections.ts) while wrk measures new requests on one more. */
async function idleConnections(p: ProxyUnderTest): Promise<IdleResult> {
  const probeNewRequests = (beside: string) => wrk(`${p.name} TLS c1 ${beside}`, p.process, `https://127.0.0.1:${p.httpsPort}/`, 1, SECONDS);
  const alone = await probeNewRequests('alone');
  const rssBefore = residentBytes(p.process.child.pid!);
  const [cmd, argv] = pinned(ORIGIN_CPU, process.execPath, [idleClientPath, 'idle', String(p.h2Port), HOST, String(IDLE_CONNECTIONS), '77']);
  const child = spawn(cmd, argv, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const client = track(`${p.name} idle client`, child);
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  try {
    for (let waited = 0; !out.includes('"open"'); waited += 250) {
      if (client.exit !== null || waited > 180_000 || wasInterrupted()) throw new BenchError(`${p.name}: the idle client did not open its connections (${client.exit ?? 'timed out'}): ${tail(out)}`);
      await sleep(250);
    }
    const opened = JSON.parse(out.trim().split('\n').at(-1)!) as { open: number; failed: number; firstError: string };
    if (opened.failed > 0) failures.add(`${p.name} idle: ${opened.failed} of ${IDLE_CONNECTIONS} connections failed (${opened.firstError})`);
    await sleep(1_000);
    const rssWith = residentBytes(p.process.child.pid!);
    const probe = await probeNewRequests(`beside ${IDLE_CONNECTIONS} idle`);
    return { open: opened.open, rssBefore, rssWith, alone, probe };
  } finally {
    killGroup(client, 'SIGTERM');
    await Promise.race([client.exited, sleep(STOP_GRACE_MS)]);
    killGroup(client, 'SIGKILL');
    doneWith(client);
    await sleep(2_000); // the proxy closes them before the next one is measured
  }
}

function idleTable(results: ReadonlyMap<ProxyName, IdleResult>): string {
  const mb = (bytes: number) => (bytes / 1048576).toFixed(0);
  const perConn = (r: IdleResult) => (r.rssWith - r.rssBefore) / Math.max(1, r.open);
  const nginx = results.get('nginx');
  return table(
    ['proxy', 'idle h2 conns', 'RSS before MB', 'RSS with MB', 'KB per conn', '×nginx', 'new req p50 ms', 'p99 ms', 'p99 alone ms'],
    [...results].map(([name, r]) => [
      name, String(r.open), mb(r.rssBefore), mb(r.rssWith), (perConn(r) / 1024).toFixed(1),
      fmtRatio(nginx === undefined ? undefined : perConn(r) / perConn(nginx)), fmtMs(r.probe.p50Ms), fmtMs(r.probe.p99Ms), fmtMs(r.alone.p99Ms),
    ]),
  );
}

// ---------------------------------------------------------------------------------------------
// Report.

type ProxyName = 'router' | 'nginx' | 'node-bare' | 'caddy';

interface ProxyUnderTest {
  readonly name: ProxyName;
  readonly process: Managed;
  readonly httpPort: number;
  readonly httpsPort: number;
  /** TLS with ALPN h2 (the router's HTTPS port; a separate listener for nginx and the bare proxy). */
  readonly h2Port: number;
}

interface Measurement {
  readonly plain: WrkResult;
  readonly tls: WrkResult;
  readonly h2: WrkResult;
  /** New TLS connections, `Connection: close`: a full handshake each. */
  readonly close: WrkResult;
  /** The same, resuming the previous connection's session (TLS 1.3 ticket). */
  readonly resumed: WrkResult;
  readonly c1: WrkResult;
}

interface Round {
  readonly originC1: WrkResult;
  readonly results: ReadonlyMap<ProxyName, Measurement>;
  /** 1-minute load average before and after the round. */
  readonly load: readonly [number, number];
}

const fmtRps = (n: number) => Math.round(n).toLocaleString('en-US');
const fmtMs = (n: number) => n.toFixed(3);
const fmtRatio = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? 'n/a' : n.toFixed(2));
const fmtLoad = () => loadavg().map((n) => n.toFixed(2)).join(' / ');
const fmtAdded = (n: number) => `${n >= 0 ? '+' : ''}${n.toFixed(3)}`;

/** A Markdown table, padded: first column left-aligned, the rest right-aligned. */
function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? `${'-'.repeat(w + 2)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(headers), rule, ...rows.map(line)].join('\n');
}

const HEADERS = [
  'proxy', 'req/s', '×nginx', '×bare', 'p99 ms', 'TLS req/s', '×nginx', '×bare', 'TLS p99',
  'h2 req/s', '×nginx', '×bare', 'h2 mean ms', 'full TLS conn/s', '×nginx', '×bare', 'resumed conn/s', '×nginx', '×bare', 'c1 p50', 'added p50 c1', 'non-2xx',
];

const KINDS = ['plain', 'tls', 'h2', 'close', 'resumed'] as const;
type Kind = (typeof KINDS)[number];

/** Per-round throughput ratios of `name` against `reference`; undefined when the reference did not run. */
function ratios(round: Round, name: ProxyName, reference: ProxyName): Partial<Record<Kind, number>> {
  const ref = round.results.get(reference);
  const own = round.results.get(name);
  if (ref === undefined || own === undefined) return {};
  return Object.fromEntries(KINDS.map((k) => [k, own[k].rps / ref[k].rps]));
}

const non2xxOf = (m: Measurement) => m.plain.non2xx + m.tls.non2xx + m.h2.non2xx + m.close.non2xx + m.resumed.non2xx + m.c1.non2xx;

function row(name: ProxyName, m: Measurement, vsNginx: Partial<Record<Kind, number>>, vsBare: Partial<Record<Kind, number>>, addedMs: number, non2xx: number): string[] {
  return [
    name, fmtRps(m.plain.rps), fmtRatio(vsNginx.plain), fmtRatio(vsBare.plain), fmtMs(m.plain.p99Ms),
    fmtRps(m.tls.rps), fmtRatio(vsNginx.tls), fmtRatio(vsBare.tls), fmtMs(m.tls.p99Ms),
    fmtRps(m.h2.rps), fmtRatio(vsNginx.h2), fmtRatio(vsBare.h2), fmtMs(m.h2.p50Ms),
    fmtRps(m.close.rps), fmtRatio(vsNginx.close), fmtRatio(vsBare.close),
    fmtRps(m.resumed.rps), fmtRatio(vsNginx.resumed), fmtRatio(vsBare.resumed),
    fmtMs(m.c1.p50Ms), fmtAdded(addedMs), String(non2xx),
  ];
}

/** The proxies' own CPU per request (their whole process tree), plain, TLS and h2: steadier than req/s on a shared machine. */
function cpuTable(rows: ReadonlyArray<readonly [ProxyName, Measurement]>): string {
  const bare = rows.find(([name]) => name === 'node-bare')?.[1];
  const cell = (m: Measurement, kind: 'plain' | 'tls' | 'h2') => [m[kind].cpuUs.toFixed(1), fmtRatio(bare === undefined ? undefined : m[kind].cpuUs / bare[kind].cpuUs)];
  return table(['proxy', 'CPU µs/req plain', '×bare', 'TLS', '×bare', 'h2', '×bare'], rows.map(([name, m]) => [name, ...cell(m, 'plain'), ...cell(m, 'tls'), ...cell(m, 'h2')]));
}

function roundTable(round: Round): string {
  return table(HEADERS, [...round.results].map(([name, m]) => row(name, m, ratios(round, name, 'nginx'), ratios(round, name, 'node-bare'), m.c1.p50Ms - round.originC1.p50Ms, non2xxOf(m))));
}

/** The median over rounds of each per-round ratio (undefined when a round lacks the reference). */
function medianRatios(rounds: readonly Round[], name: ProxyName, reference: ProxyName): Partial<Record<Kind, number>> {
  const per = rounds.map((round) => ratios(round, name, reference));
  return Object.fromEntries(KINDS.flatMap((k) => (per.every((r) => r[k] !== undefined) ? [[k, median(per.map((r) => r[k]!))]] : [])));
}

/** One proxy's measurement with every figure the median over the rounds. */
function medianMeasurement(rounds: readonly Round[], name: ProxyName): Measurement {
  const of = (pick: (m: WrkResult) => number, kind: keyof Measurement) => median(rounds.map((round) => pick(round.results.get(name)![kind])));
  const medianResult = (kind: keyof Measurement): WrkResult => ({
    ...rounds[0]!.results.get(name)![kind],
    rps: of((r) => r.rps, kind),
    p50Ms: of((r) => r.p50Ms, kind),
    p99Ms: of((r) => r.p99Ms, kind),
    cpuUs: of((r) => r.cpuUs, kind),
  });
  return { plain: medianResult('plain'), tls: medianResult('tls'), h2: medianResult('h2'), close: medianResult('close'), resumed: medianResult('resumed'), c1: medianResult('c1') };
}

function summaryTable(rounds: readonly Round[], names: readonly ProxyName[]): string {
  const rows = names.map((name) => {
    const m = medianMeasurement(rounds, name);
    const added = median(rounds.map((round) => round.results.get(name)!.c1.p50Ms - round.originC1.p50Ms));
    const non2xx = rounds.reduce((sum, round) => sum + non2xxOf(round.results.get(name)!), 0);
    return row(name, m, medianRatios(rounds, name, 'nginx'), medianRatios(rounds, name, 'node-bare'), added, non2xx);
  });
  return table(HEADERS, rows);
}

// ---------------------------------------------------------------------------------------------
// The run.

/** The fallback origin when nginx is unavailable: node:http answering `ok\n` with keep-alive. */
const NODE_ORIGIN = `import { createServer } from 'node:http';
createServer((req, res) => { res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '3' }); res.end('ok\\n'); })
  .listen(Number(process.argv[1]), '127.0.0.1');`;

async function main(): Promise<void> {
  const root = packageRoot();
  const cpuCount = availableParallelism();
  const taskset = await which('taskset');
  pinning.enabled = taskset !== undefined && cpuCount >= 2;

  const wrkFound = await ensureTool('wrk', ['wrk']);
  if (wrkFound === undefined) throw new BenchError('wrk is not installed and apt-get could not install it: nothing can be measured');
  wrkPath = wrkFound;
  const h2loadFound = await ensureTool('h2load', ['nghttp2-client']);
  if (h2loadFound === undefined) throw new BenchError('h2load is not installed and apt-get could not install it: HTTP/2 cannot be measured');
  h2loadPath = h2loadFound;
  idleClientPath = join(root, 'dist', 'bench', 'idle-connections.js');
  const opensslFound = await ensureTool('openssl', ['openssl']);
  if (opensslFound === undefined) throw new BenchError('openssl is not installed and apt-get could not install it: new TLS connections cannot be measured');
  opensslPath = opensslFound;
  // Every tool is installed before the load check: an apt-get after it would load the machine it judged quiet.
  const nginxWanted = process.env.BENCH_NGINX !== 'off';
  const nginxPath = nginxWanted ? await ensureTool('nginx', ['nginx-light', 'nginx']) : undefined;
  const caddyPath = process.env.BENCH_CADDY === 'off' ? undefined : await ensureTool('caddy', ['caddy']);
  // Refuse a busy machine before spending minutes on numbers that would be noise. The build that
  // `npm run bench` runs first lifts the 1-minute average itself: give it time to settle.
  await waitForQuietMachine(MAX_LOAD, LOAD_WAIT_SECONDS);
  if (nginxPath === undefined) {
    const why = nginxWanted ? 'nginx could not be installed' : 'BENCH_NGINX=off';
    console.log(`${why}: the origin is a node:http server and the nginx comparison is unavailable`);
  }

  const tempDir = makeTempDir('edge-bench-');
  chmodSync(tempDir, 0o755); // nginx workers run as nobody and must reach their temp dirs
  const { certFile, keyFile } = await writeBenchCertificate(tempDir);

  // --- origin, on CPU 0 with wrk.
  const originPort = await freePort(ANY_ADDRESS);
  let origin: Managed;
  if (nginxPath !== undefined) {
    const prefix = join(tempDir, 'origin');
    mkdirSync(prefix);
    const conf = join(prefix, 'nginx.conf');
    writeFileSync(conf, originConfig({ prefix, port: originPort }));
    origin = startService('origin', ORIGIN_CPU, nginxPath, nginxArgs({ prefix }, conf), { extraLogs: [join(prefix, 'error.log')] });
  } else {
    origin = startService('origin', ORIGIN_CPU, process.execPath, ['--input-type=module', '-e', NODE_ORIGIN, String(originPort)]);
  }
  await waitForPort(origin, originPort);
  const checkAgent = new Agent({ connect: { rejectUnauthorized: false } });
  await expectOk(origin, `http://127.0.0.1:${originPort}/`, checkAgent, HOST);

  // --- regions file: regions.json with every orchestrator pointing at the origin.
  const regionsFile = regionsFileFor(root, tempDir, `http://127.0.0.1:${originPort}`);

  // --- proxies, on CPU 1, started one after another and kept for the whole run.
  const proxies: ProxyUnderTest[] = [];
  const addProxy = async (name: ProxyName, httpPort: number, httpsPort: number, h2Port: number, start: () => Managed) => {
    const proxy = { name, process: start(), httpPort, httpsPort, h2Port };
    await waitForPort(proxy.process, httpPort);
    await waitForPort(proxy.process, httpsPort);
    await waitForPort(proxy.process, h2Port);
    await expectOk(proxy.process, `http://127.0.0.1:${httpPort}/`, checkAgent, HOST);
    await expectOk(proxy.process, `https://127.0.0.1:${httpsPort}/`, checkAgent, HOST);
    proxies.push(proxy);
  };

  const [routerHttp, routerHttps, routerAdmin] = [await freePort(ANY_ADDRESS), await freePort(ANY_ADDRESS), await freePort(ANY_ADDRESS)];
  await addProxy('router', routerHttp, routerHttps, routerHttps, () =>
    startService('router', PROXY_CPU, process.execPath, [
      join(root, 'dist', 'src', 'main.js'), 'router', '--workers', '1', '--plain-http', 'serve',
      '--http-port', String(routerHttp), '--https-port', String(routerHttps), '--admin-port', String(routerAdmin),
      '--tls-cert', certFile, '--tls-key', keyFile, '--regions', regionsFile, '--unknown-functions', 'forward', '--log-level', 'info',
      // Room for the idle-connection scenario (the default ceiling is 10,000 per listener).
      '--max-connections', '20000',
      // All the load comes from one address, which the per-address connect rate (100/s) would
      // throttle in the handshake scenario. A ceiling nothing reaches keeps its check on every
      // new connection, as in production, without refusing any.
      '--max-conn-rate-per-ip', '1000000',
    ]),
  );
  if (nginxPath !== undefined) {
    const [httpPort, httpsPort, h2Port] = [await freePort(ANY_ADDRESS), await freePort(ANY_ADDRESS), await freePort(ANY_ADDRESS)];
    const prefix = join(tempDir, 'nginx-proxy');
    mkdirSync(prefix);
    const conf = join(prefix, 'nginx.conf');
    writeFileSync(conf, proxyConfig({ prefix, httpPort, httpsPort, h2Port, originPort, certFile, keyFile }));
    await addProxy('nginx', httpPort, httpsPort, h2Port, () => startService('nginx', PROXY_CPU, nginxPath, nginxArgs({ prefix }, conf), { extraLogs: [join(prefix, 'error.log')] }));
  }
  const [bareHttp, bareHttps, bareH2] = [await freePort(ANY_ADDRESS), await freePort(ANY_ADDRESS), await freePort(ANY_ADDRESS)];
  await addProxy('node-bare', bareHttp, bareHttps, bareH2, () =>
    startService('node-bare', PROXY_CPU, process.execPath, [
      join(root, 'dist', 'bench', 'bare-proxy.js'), `http://127.0.0.1:${originPort}`, String(bareHttp), String(bareHttps), certFile, keyFile, String(bareH2),
    ]),
  );
  if (caddyPath !== undefined) {
    const [httpPort, httpsPort] = [await freePort(ANY_ADDRESS), await freePort(ANY_ADDRESS)];
    const prefix = join(tempDir, 'caddy');
    mkdirSync(prefix);
    const options = { prefix, httpPort, httpsPort, originPort, certFile, keyFile, defaultSni: HOST };
    const configFile = join(prefix, 'Caddyfile');
    writeFileSync(configFile, caddyfile(options));
    const [command, args] = caddyCommand(caddyPath, options, configFile);
    await addProxy('caddy', httpPort, httpsPort, httpsPort, () => startService('caddy', PROXY_CPU, command, args));
  }
  await checkAgent.close();

  // --- what runs where.
  const nginxVersion = nginxPath === undefined ? 'nginx unavailable' : (await capture(nginxPath, ['-v'], 5_000)).stderr.trim();
  const wrkVersion = (await capture(wrkPath, ['-v'], 5_000)).stdout.split('\n')[0]?.trim() ?? '?';
  const caddyVersion = caddyPath === undefined ? 'caddy left out' : `caddy ${(await capture(caddyPath, ['version'], 5_000)).stdout.trim()}`;
  const idleSeconds = IDLE_CONNECTIONS > 0 ? proxies.length * (2 * SECONDS + 20) : 0;
  const minutes = (ROUNDS * (1 + 6 * proxies.length) * SECONDS + proxies.length * (WARMUP_SECONDS + 2 * Math.ceil(WARMUP_SECONDS / 2)) + 2 * CALIBRATION_SECONDS + idleSeconds) / 60;
  console.log(`date: ${new Date().toISOString()}`);
  console.log(`node ${process.version} (OpenSSL ${process.versions.openssl}); ${nginxVersion}; ${caddyVersion}; ${wrkVersion}`);
  console.log(`cpu: ${cpuCount} × ${cpus()[0]?.model.trim() ?? 'unknown'}; load average ${fmtLoad()}`);
  if (pinning.enabled) {
    console.log(`pinning (taskset): origin and wrk → CPU ${ORIGIN_CPU}; every proxy → CPU ${PROXY_CPU}`);
    for (const m of [origin, ...proxies.map((p) => p.process)]) console.log(`  ${m.name.padEnd(9)} pid ${m.child.pid} affinity ${await affinity(m)}`);
  } else {
    console.log(`pinning: off (${taskset === undefined ? 'taskset missing' : `${cpuCount} CPU`}): proxies, origin and wrk share the CPUs`);
  }
  if (nginxPath === undefined) console.log('origin: node:http fallback — nginx comparison unavailable');
  console.log(`origin: ${nginxPath === undefined ? 'node:http' : 'nginx, 1 worker'} on 127.0.0.1:${originPort}, GET / → 200 "ok\\n"; Host: ${HOST}`);
  console.log(`runs: wrk -t1 (h2load -t1 -c10 -m5 for HTTP/2), ${SECONDS} s each, ${ROUNDS} round(s); warm-up ${WARMUP_SECONDS} s plain + ${Math.ceil(WARMUP_SECONDS / 2)} s TLS + ${Math.ceil(WARMUP_SECONDS / 2)} s h2 per proxy; about ${minutes.toFixed(1)} min`);

  // --- calibration: the origin alone, now and after the rounds (a machine that got busier shows here).
  const calibrate = async (when: string) => (await wrk(`calibration (${when})`, origin, `http://127.0.0.1:${originPort}/`, 50, CALIBRATION_SECONDS)).rps;
  const calibrationBefore = await calibrate('before');
  console.log(`calibration: origin alone, 50 connections: ${fmtRps(calibrationBefore)} req/s`);

  // --- warm-up: Node needs seconds of JIT before its numbers settle.
  for (const p of proxies) {
    const plain = await wrk(`warm-up ${p.name} plain`, p.process, `http://127.0.0.1:${p.httpPort}/`, 50, WARMUP_SECONDS);
    const tls = await wrk(`warm-up ${p.name} TLS`, p.process, `https://127.0.0.1:${p.httpsPort}/`, 50, Math.ceil(WARMUP_SECONDS / 2));
    const h2 = await h2load(`warm-up ${p.name} h2`, p.process, `https://127.0.0.1:${p.h2Port}/`, Math.ceil(WARMUP_SECONDS / 2));
    console.log(`warm-up ${p.name.padEnd(9)} plain ${fmtRps(plain.rps)} req/s, TLS ${fmtRps(tls.rps)} req/s, h2 ${fmtRps(h2.rps)} req/s`);
  }

  // --- interleaved rounds.
  const rounds: Round[] = [];
  for (let i = 1; i <= ROUNDS; i++) {
    const loadStart = loadavg()[0] ?? 0;
    const originC1 = await wrk(`round ${i} origin c1`, origin, `http://127.0.0.1:${originPort}/`, 1, SECONDS);
    // Scenario by scenario, every proxy in turn: the windows a ratio compares are seconds apart, not
    // minutes (this machine's slow spells last tens of seconds and used to catch all of one proxy's
    // scenarios at once); the router and the bare proxy back to back (round-order.ts).
    const byName = new Map(proxies.map((p) => [p.name, p] as const));
    const order = roundOrder(proxies.map((p) => p.name), i).map((name) => byName.get(name)!);
    const label = (p: ProxyUnderTest) => `round ${i} ${p.name}`;
    const each = async (run: (p: ProxyUnderTest) => Promise<WrkResult>): Promise<Map<ProxyName, WrkResult>> => {
      const out = new Map<ProxyName, WrkResult>();
      for (const p of order) out.set(p.name, await run(p));
      return out;
    };
    const plain = await each((p) => wrk(`${label(p)} plain c50`, p.process, `http://127.0.0.1:${p.httpPort}/`, 50, SECONDS));
    const tls = await each((p) => wrk(`${label(p)} TLS c50`, p.process, `https://127.0.0.1:${p.httpsPort}/`, 50, SECONDS));
    const h2 = await each((p) => h2load(`${label(p)} h2 c10×5`, p.process, `https://127.0.0.1:${p.h2Port}/`, SECONDS));
    const close = await each((p) => handshakes(`${label(p)} full TLS handshakes`, p.process, p.httpsPort, 'full', SECONDS));
    const resumed = await each((p) => handshakes(`${label(p)} resumed TLS handshakes`, p.process, p.httpsPort, 'resumed', SECONDS));
    const c1 = await each((p) => wrk(`${label(p)} plain c1`, p.process, `http://127.0.0.1:${p.httpPort}/`, 1, SECONDS));
    const results = new Map<ProxyName, Measurement>();
    for (const p of proxies) {
      results.set(p.name, { plain: plain.get(p.name)!, tls: tls.get(p.name)!, h2: h2.get(p.name)!, close: close.get(p.name)!, resumed: resumed.get(p.name)!, c1: c1.get(p.name)! });
    }
    const round: Round = { originC1, results, load: [loadStart, loadavg()[0] ?? 0] };
    rounds.push(round);
    console.log(`\nround ${i}/${ROUNDS} (load average ${round.load[0].toFixed(2)} → ${round.load[1].toFixed(2)}; origin direct, 1 connection: p50 ${fmtMs(originC1.p50Ms)} ms, ${fmtRps(originC1.rps)} req/s)`);
    console.log(roundTable(round));
    console.log(cpuTable([...round.results]));
  }

  // --- many idle clients: memory per connection, and whether a new request still gets through quickly.
  const idle = new Map<ProxyName, IdleResult>();
  if (IDLE_CONNECTIONS > 0) {
    for (const p of proxies) idle.set(p.name, await idleConnections(p));
    console.log(`\n${IDLE_CONNECTIONS} idle HTTP/2 connections (TLS, one GET each, then silent; ≤ 200 per source address), and wrk -c1 ${SECONDS} s of new requests (HTTPS/1.1) beside them; 'p99 alone' is the same probe just before they were opened:`);
    console.log(idleTable(idle));
  }

  const calibrationAfter = await calibrate('after');
  // A change either way means the machine was not the same at both ends of the run.
  const drift = calibrationAfter / calibrationBefore - 1;
  console.log(`\nload average after the rounds: ${fmtLoad()} (this benchmark alone keeps it near 2)`);
  console.log(`calibration: origin alone ${fmtRps(calibrationBefore)} req/s before, ${fmtRps(calibrationAfter)} after (${drift >= 0 ? '+' : ''}${(drift * 100).toFixed(1)} %)`);
  const failed = failures.report();
  // Before the summary: a run with failed answers, or one the calibration voids, reports no medians
  // (its rounds are above, as they ran).
  if (voidedByDrift(drift) || failed) return;
  console.log(`summary: median of ${ROUNDS} round(s); ×nginx, ×bare = median of the per-round ratios; latency in ms; h2 mean = h2load's mean (no percentiles); c1 = 1 connection, plain`);
  console.log(`origin direct c1 p50: ${fmtMs(median(rounds.map((r) => r.originC1.p50Ms)))} ms`);
  console.log(summaryTable(rounds, proxies.map((p) => p.name)));
  console.log(`\nCPU per request (median of the rounds; ×bare = this median ÷ the bare proxy's; lower is better):`);
  console.log(cpuTable(proxies.map((p) => [p.name, medianMeasurement(rounds, p.name)] as const)));
  if (caddyPath !== undefined) {
    const vsCaddy = medianRatios(rounds, 'router', 'caddy');
    console.log(`router/caddy: plain ${fmtRatio(vsCaddy.plain)}, tls ${fmtRatio(vsCaddy.tls)}, h2 ${fmtRatio(vsCaddy.h2)}`);
  }
  const vsBare = medianRatios(rounds, 'router', 'node-bare');
  console.log(`router/bare: plain ${fmtRatio(vsBare.plain)}, tls ${fmtRatio(vsBare.tls)}, h2 ${fmtRatio(vsBare.h2)}`);
  console.log(`router/nginx throughput: ${fmtRatio(medianRatios(rounds, 'router', 'nginx').plain)}`);
}

await runBenchmark(main);
