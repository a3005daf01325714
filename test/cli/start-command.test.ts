import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseFlags } from '../../src/cli/flags.js';
import { prewarmToken } from '../../src/cli/prewarm-token.js';
import { startHelp } from '../../src/cli/help/start.js';
import { httpUrl, startDefaults } from '../../src/cli/start-command.js';
import { cli } from '../support/cli.js';
import { runEdgeRouter } from '../support/process.js';
import { freePort } from '../support/redis-server.js';
import { REGION_COORDS, regionsFileFor, type RegionName } from '../support/router.js';
import { connectionRefused } from '../support/port.js';

const run = promisify(execFile);
const REGION_IDS = Object.keys(REGION_COORDS) as RegionName[];

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** `count` distinct free loopback ports. */
async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}


describe('edge-router start', () => {
  it('runs five regions, a router and the admin listener; the printed curl command works; SIGTERM stops everything, exit 0', async () => {
    const [https, http, admin, ...orchestratorPorts] = (await freePorts(3 + REGION_IDS.length)) as [number, number, number, ...number[]];
    const orchestrators = Object.fromEntries(REGION_IDS.map((id, i) => [id, `http://127.0.0.1:${orchestratorPorts[i]}`]));
    const regions = await regionsFileFor(orchestrators);
    const proc = runEdgeRouter([
      'start', '--regions', regions, '--https-port', String(https), '--http-port', String(http), '--admin-port', String(admin), '--cold-start', '5-10',
    ]);
    cleanup.push(() => proc.stop('SIGKILL'));
    await proc.waitFor(/^Ctrl-C stops everything\.$/, 15_000);
    const output = proc.output();

    // Every region is listed on the port its regions-file entry names.
    REGION_IDS.forEach((id, i) => expect(output).toMatch(new RegExp(`^  ${id} +http://127\\.0\\.0\\.1:${orchestratorPorts[i]}/ +${REGION_COORDS[id].name}$`, 'm')));
    const token = new RegExp(`^  dashboard   http://127\\.0\\.0\\.1:${admin}/#token=([A-Za-z0-9_-]{24})$`, 'm').exec(output)?.[1];
    expect(token).toBeDefined();

    const curlLine = output.split('\n').find((l) => l.trimStart().startsWith('curl -k --resolve '));
    expect(curlLine).toBeDefined();
    const args = curlLine!.trim().split(/\s+/).slice(1);
    expect(args).toEqual(['-k', '--resolve', `echo-demo.telnyxcompute.com:${https}:127.0.0.1`, `https://echo-demo.telnyxcompute.com:${https}/`]);
    const { stdout } = await run('curl', [...args, '--silent', '--show-error', '--max-time', '10', '--write-out', '\n%{http_code}']);
    const status = stdout.slice(stdout.lastIndexOf('\n') + 1);
    const echo = JSON.parse(stdout.slice(0, stdout.lastIndexOf('\n'))) as { method: string; path: string; region: string; container: string; headers: Record<string, string> };
    expect(status).toBe('200');
    expect(echo).toMatchObject({ method: 'GET', path: '/', headers: { 'x-edge-fn': 'echo', 'x-edge-org': 'demo' } });
    expect(REGION_IDS).toContain(echo.region);
    expect(echo.container).toMatch(/^c[0-9a-z]+$/);

    // A WebSocket to the echo function, through the router to a region's orchestrator and back.
    const ws = new WebSocket(`wss://127.0.0.1:${https}/chat`, { headers: { host: 'echo-demo.telnyxcompute.com' }, rejectUnauthorized: false });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    ws.send('hello region');
    expect(String(await new Promise((resolve) => ws.once('message', resolve)))).toBe('hello region');
    ws.close(1000);
    await new Promise((resolve) => ws.once('close', resolve));

    expect((await fetch(`http://127.0.0.1:${admin}/api/status`)).status).toBe(401);
    const statusRes = await fetch(`http://127.0.0.1:${admin}/api/status`, { headers: { authorization: `Bearer ${token}` } });
    expect(statusRes.status).toBe(200);
    const body = (await statusRes.json()) as { registry: { kind: string }; regions: Record<string, { status: string }> };
    expect(body.registry.kind).toBe('memory');
    expect(Object.keys(body.regions).sort()).toEqual([...REGION_IDS].sort());
    // The orchestrators' heartbeats reach the router through the shared in-process registry.
    expect(body.regions[echo.region]?.status).toBe('up');

    // A WebSocket still open when the whole system stops: its region closes it as going away (1001),
    // which ends the router's drain at once rather than at its 10 s deadline.
    const open = new WebSocket(`wss://127.0.0.1:${https}/chat`, { headers: { host: 'echo-demo.telnyxcompute.com' }, rejectUnauthorized: false });
    await new Promise((resolve, reject) => {
      open.once('open', resolve);
      open.once('error', reject);
    });
    const closeCode = new Promise((resolve) => open.once('close', resolve));
    const stopStartedAt = Date.now();
    expect(await proc.stop('SIGTERM')).toBe(0);
    expect(Date.now() - stopStartedAt).toBeLessThan(8_000);
    expect(await closeCode).toBe(1001);
    expect(proc.output()).toContain('edge-router: stopping…');
    // The simulation's clients are what the bundled GeoIP database places: no warning that it places
    // none (read once it exited: log lines go out in batches).
    expect(proc.output()).toMatch(/"event":"dev_cert"/);
    expect(proc.output()).not.toContain('geoip_simulation');
    for (const port of [https, http, admin, ...orchestratorPorts]) expect(await connectionRefused(port), `port ${port}`).toBe(true);
  }, 30_000);

  it("prints a token it made up, but never the operator's own", async () => {
    const [https, http, admin, ...orchestratorPorts] = (await freePorts(3 + REGION_IDS.length)) as [number, number, number, ...number[]];
    const regions = await regionsFileFor(Object.fromEntries(REGION_IDS.map((id, i) => [id, `http://127.0.0.1:${orchestratorPorts[i]}`])));
    const secret = 'operator-secret-0123456789';
    const proc = runEdgeRouter(['start', '--regions', regions, '--https-port', String(https), '--http-port', String(http), '--admin-port', String(admin)], {
      EDGE_ADMIN_TOKEN: secret,
      // Does nothing with a token given by value: said in the log.
      EDGE_ADMIN_TOKEN_OVERLAP_MS: '1000',
    });
    cleanup.push(() => proc.stop('SIGKILL'));
    await proc.waitFor(/^Ctrl-C stops everything\.$/, 15_000);
    expect(proc.output()).toMatch(new RegExp(`^  dashboard   http://127\\.0\\.0\\.1:${admin}/#token=<your admin token>$`, 'm'));
    expect(proc.output()).not.toContain(secret);
    // The token is still the one in force.
    const status = await fetch(`http://127.0.0.1:${admin}/api/status`, { headers: { authorization: `Bearer ${secret}` } });
    expect(status.status).toBe(200);
    expect(await proc.stop('SIGTERM')).toBe(0);
    expect(proc.output()).toMatch(/"event":"setting_ignored".*"msg":"EDGE_ADMIN_TOKEN_OVERLAP_MS is ignored: /);
  }, 30_000);

  it("names the region and the regions file when an orchestrator's port is taken (no flag moves it)", async () => {
    const [https, http, admin, ...orchestratorPorts] = (await freePorts(3 + REGION_IDS.length)) as [number, number, number, ...number[]];
    const regions = await regionsFileFor(Object.fromEntries(REGION_IDS.map((id, i) => [id, `http://127.0.0.1:${orchestratorPorts[i]}`])));
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(orchestratorPorts[1], '127.0.0.1', resolve));
    cleanup.push(() => new Promise((resolve) => holder.close(resolve)));
    const proc = runEdgeRouter(['start', '--regions', regions, '--https-port', String(https), '--http-port', String(http), '--admin-port', String(admin)]);
    cleanup.push(() => proc.stop('SIGKILL'));
    const code = await new Promise<number | null>((resolve) => (proc.child.exitCode !== null ? resolve(proc.child.exitCode) : proc.child.once('exit', resolve)));
    expect(code).toBe(2);
    // Before: "choose other ports (edge-router start --help lists the --*-port flags)", and no flag
    // of start moves an orchestrator: its port is its URL's in the regions file.
    expect(proc.output()).toContain(`edge-router start: 127.0.0.1:${orchestratorPorts[1]} (the ${REGION_IDS[1]} orchestrator's port, from ${regions}) is already in use (another edge-router, or another program): free it, or give --regions a copy of the file with other orchestrator ports\n`);
    expect(proc.output()).not.toContain('--*-port');
  }, 30_000);

  it("gives its regions the router's --timeout-extended: a region cuts a function where the router stops waiting for it, not at its own 60 s", async () => {
    const [https, http, admin, ...orchestratorPorts] = (await freePorts(3 + REGION_IDS.length)) as [number, number, number, ...number[]];
    const regions = await regionsFileFor(Object.fromEntries(REGION_IDS.map((id, i) => [id, `http://127.0.0.1:${orchestratorPorts[i]}`])));
    const proc = runEdgeRouter([
      'start', '--regions', regions, '--https-port', String(https), '--http-port', String(http), '--admin-port', String(admin), '--cold-start', '0-0', '--timeout-extended', '1000',
    ]);
    cleanup.push(() => proc.stop('SIGKILL'));
    await proc.waitFor(/^Ctrl-C stops everything\.$/, 15_000);
    // Asked directly (as the router asks it): the region's own answer, not the router's 504.
    const started = performance.now();
    const answer = await fetch(`http://127.0.0.1:${orchestratorPorts[0]}/?ms=3000`, { headers: { 'x-edge-fn': 'slow', 'x-edge-org': 'demo' }, signal: AbortSignal.timeout(10_000) });
    expect([answer.status, ((await answer.json()) as { error?: { code?: string } }).error?.code]).toEqual([504, 'function_timeout']);
    expect(performance.now() - started).toBeLessThan(2_500);
    expect(await proc.stop('SIGTERM')).toBe(0);
  }, 30_000);

  it('prints admin URLs that work for an IPv6 admin host: the address in brackets', async () => {
    const [https, http, admin, ...orchestratorPorts] = (await freePorts(3 + REGION_IDS.length)) as [number, number, number, ...number[]];
    const regions = await regionsFileFor(Object.fromEntries(REGION_IDS.map((id, i) => [id, `http://127.0.0.1:${orchestratorPorts[i]}`])));
    const proc = runEdgeRouter(['start', '--regions', regions, '--https-port', String(https), '--http-port', String(http), '--admin-port', String(admin), '--admin-host', '::1']);
    cleanup.push(() => proc.stop('SIGKILL'));
    await proc.waitFor(/^Ctrl-C stops everything\.$/, 15_000);
    const token = new RegExp(`^  dashboard   http://\\[::1\\]:${admin}/#token=([A-Za-z0-9_-]{24})$`, 'm').exec(proc.output())?.[1];
    expect(token, proc.output()).toBeDefined();
    const api = new RegExp(`^  admin API   (http://\\[::1\\]:${admin}/api/regions)   `, 'm').exec(proc.output())?.[1];
    expect(api, proc.output()).toBeDefined();
    // The printed URL is one a client can use as it stands.
    expect((await fetch(api!, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect(await proc.stop('SIGTERM')).toBe(0);
  }, 30_000);

  it('writes an admin URL with an IPv6 literal in brackets, its zone escaped, and other hosts as they are', () => {
    expect(httpUrl('::1', 9090)).toBe('http://[::1]:9090/');
    expect(httpUrl('fe80::1%eth0', 9090)).toBe('http://[fe80::1%25eth0]:9090/');
    expect(httpUrl('127.0.0.1', 9090)).toBe('http://127.0.0.1:9090/');
    expect(httpUrl('0.0.0.0', 80)).toBe('http://0.0.0.0:80/');
  });

  it.each([
    { flag: '--ms-per-100km <ms>', env: 'EDGE_SIM_MS_PER_100KM', defaultText: '1' },
    { flag: '--cold-start <min-max>', env: 'EDGE_SIM_COLD_START_MS', defaultText: '100-500' },
    { flag: '--container-keep-alive <ms>', env: 'EDGE_SIM_KEEP_ALIVE_MS', defaultText: '60000' },
  ])('--help lists the simulation flag $flag with its env variable $env', async ({ flag, env, defaultText }) => {
    const { code, stdout } = await cli(['start', '--help']);
    expect(code).toBe(0);
    const line = stdout.split('\n').find((l) => l.trimStart().startsWith(`${flag} `));
    expect(line).toBeDefined();
    expect(line).toContain(`[env ${env}; default: ${defaultText}]`);
  });
});

describe("start's own defaults", () => {
  it('--help shows what start itself sets when nothing is given: a fresh admin token (the admin API is on) and the development certificate', async () => {
    const { code, stdout } = await cli(['start', '--help']);
    expect(code).toBe(0);
    const lineOf = (flag: string) => stdout.split('\n').find((l) => l.trimStart().startsWith(`${flag} `)) ?? '';
    // Before: the router's "none: admin API disabled", and no default for --dev-cert (read as off).
    expect(lineOf('--admin-token')).toContain('default: a fresh one for the run, printed in the dashboard URL]');
    expect(lineOf('--dev-cert')).toContain('default: on, unless --tls-cert or --tls-dir is given]');
    const given = startDefaults(parseFlags([], startHelp.flags, {})).values;
    expect([typeof given.get('admin-token'), given.get('dev-cert')]).toEqual(['string', true]);
  });
});

describe('start\'s pre-warm token', () => {
  it('is made up for the run only when none is given, as a token or as a file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'edge-start-prewarm-'));
    try {
      const file = join(dir, 'prewarm-token');
      writeFileSync(file, 'file-token-0123456789abcdef\n');
      const tokenOf = (argv: string[], env: NodeJS.ProcessEnv = {}) => prewarmToken(startDefaults(parseFlags(argv, startHelp.flags, env))).prewarmToken;
      // A made-up token beside the file was a flag-level token beating the file (or, with the flag, refused with it).
      expect(tokenOf([], { EDGE_PREWARM_TOKEN_FILE: file })).toBe('file-token-0123456789abcdef');
      expect(tokenOf(['--prewarm-token-file', file])).toBe('file-token-0123456789abcdef');
      expect(tokenOf([])).toMatch(/^[A-Za-z0-9_-]{24}$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
