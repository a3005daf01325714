/**
 * The multi-process simulation: a private redis-server, five orchestrator processes and a router
 * process, all on free loopback ports, wired through the real Redis registry. Scenario scripts
 * kill and restart pieces of it; nothing here knows what a scenario expects.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { freePort, onFreshPorts } from './free-port.js';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { FunctionRecord, RegionConfig } from '../core/types.js';
import { loadRegionsFile } from '../config/load-regions.js';
import { parseJsonFile } from '../core/json-text.js';
import { RedisRegistry } from '../registry/redis-registry.js';

/** A regions file as JSON, the fields the simulation's copy changes. */
interface RegionsFileText {
  readonly regions: RegionConfig[];
  readonly geoip?: unknown;
}

/**
 * The simulation's copy of the regions file `file` holds, with `regions` in place of its own. It is
 * written elsewhere (a temporary folder), so a relative GeoIP path, which names a file beside the
 * original, is made absolute: kept as it was, every process of the simulation failed to find it.
 */
export function regionsCopy(file: string, base: RegionsFileText, regions: readonly RegionConfig[]): object {
  const geoip = typeof base.geoip === 'string' && base.geoip !== 'none' && !isAbsolute(base.geoip) ? { geoip: resolve(dirname(file), base.geoip) } : {};
  return { ...base, ...geoip, regions };
}

export interface TopologyOptions {
  /** Where the package lives (dist/src/main.js and regions.json are read from it). */
  readonly root: string;
  /** Per-region capacity overrides (e.g. a small Frankfurt for the spike scenario). */
  readonly capacity?: Readonly<Record<string, { soft: number; hard: number }>>;
  readonly msPer100Km?: number;
  readonly coldStart?: string;
  /** Display-name overrides (e.g. a hostile name for the dashboard's escaping test). */
  readonly names?: Readonly<Record<string, string>>;
  /** Admin token for the router's admin API (env EDGE_ADMIN_TOKEN). */
  readonly adminToken?: string;
  /** Extra flags for the router (e.g. `--routing latency`). */
  readonly routerFlags?: readonly string[];
  readonly log?: (line: string) => void;
}

interface Managed {
  child: ChildProcess;
  output: string;
  /** Why the process could not be started at all (spawn's 'error': EAGAIN, EMFILE, ENOENT). */
  spawnError?: Error;
}

export class SimTopology {
  private readonly procs = new Map<string, Managed>();
  private operator: RedisRegistry | undefined;
  private dir = '';
  private regionsFile = '';
  redisPort = 0;
  readonly orchestratorPorts = new Map<string, number>();
  httpsPort = 0;
  adminPort = 0;
  regions: RegionConfig[] = [];

  /** The router's admin token (given, or made up for this run). */
  readonly adminToken: string;
  /** Shared by the router and the orchestrators for pre-warm requests (made up for this run). */
  private readonly prewarmToken = randomBytes(18).toString('base64url');

  /** Set by stop(): a start still under way spawns nothing more (it would be left running). */
  private stopping: Promise<void> | undefined;

  private constructor(private readonly options: TopologyOptions) {
    this.adminToken = options.adminToken ?? randomBytes(18).toString('base64url');
    live.add(this);
  }

  get redisUrl(): string {
    return `redis://127.0.0.1:${this.redisPort}`;
  }

  static async start(options: TopologyOptions): Promise<SimTopology> {
    const topology = new SimTopology(options);
    try {
      await topology.boot();
    } catch (err) {
      await topology.stop();
      throw err;
    }
    return topology;
  }

  private async boot(): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), 'edge-sim-'));
    const file = join(this.options.root, 'regions.json');
    // Checked as the router reads it first: an edited file that does not hold was a raw JSON or
    // TypeError with a stack trace; now the message names the file, the field and what is expected.
    // The text checked, not the file read again: a byte-order mark the check took (and a file
    // replaced in between) failed here as a raw SyntaxError.
    const { text } = await loadRegionsFile(file);
    const base = parseJsonFile(file, text!) as RegionsFileText;
    for (const region of base.regions) this.orchestratorPorts.set(region.id, await freePort());
    const regions = base.regions.map((r) => ({
      ...r,
      orchestrators: [`http://127.0.0.1:${this.orchestratorPorts.get(r.id)}`],
      capacity: this.options.capacity?.[r.id] ?? r.capacity,
      name: this.options.names?.[r.id] ?? r.name,
    }));
    this.regions = regions;
    this.regionsFile = join(this.dir, 'regions.json');
    await writeFile(this.regionsFile, JSON.stringify(regionsCopy(file, base, regions), null, 2));
    this.redisPort = await freePort();
    this.httpsPort = await freePort();
    this.adminPort = await freePort();

    await this.startRedis();
    await Promise.all(regions.map((r) => this.startOrchestrator(r.id)));
    await onFreshPorts(async (attempt) => {
      if (attempt > 1) [this.httpsPort, this.adminPort] = [await freePort(), await freePort()];
      await this.spawnRouter('router', this.httpsPort, this.adminPort, this.options.routerFlags ?? []);
    });
    this.operator = new RedisRegistry({ url: this.redisUrl, regions: regions.map((r) => r.id) });
    await this.operator.ready();
    await this.waitForRegions(regions.map((r) => r.id), 'up', 15_000);
  }

  /**
   * A second router on the same registry and orchestrators, with its own flags (e.g. the other
   * routing mode, for an A/B comparison on the same warm containers). Returns its HTTPS port.
   */
  async addRouter(name: string, flags: readonly string[]): Promise<number> {
    return onFreshPorts(async () => {
      const httpsPort = await freePort();
      await this.spawnRouter(name, httpsPort, await freePort(), flags);
      return httpsPort;
    });
  }

  private async spawnRouter(name: string, httpsPort: number, adminPort: number, flags: readonly string[]): Promise<void> {
    await this.spawnEdge(name, [
      'router', '--workers', '1', '--dev-cert', '--regions', this.regionsFile, '--redis', this.redisUrl,
      '--https-port', String(httpsPort), '--http-port', String(await freePort()), '--admin-port', String(adminPort),
      '--bind', '127.0.0.1', '--log-level', 'warn', '--access-log', 'off', ...flags,
    ], /edge-router: https/, { EDGE_ADMIN_TOKEN: this.adminToken, EDGE_PREWARM_TOKEN: this.prewarmToken });
  }

  /** Polls the router's admin status until the regions have the given status. */
  async waitForRegions(ids: readonly string[], status: string, timeoutMs: number): Promise<number> {
    const started = Date.now();
    for (;;) {
      // Each look bounded by what is left of the wait: a router that accepts and never answers held it for fetch's own 300 s.
      const signal = AbortSignal.timeout(Math.max(100, timeoutMs - (Date.now() - started)));
      const res = await fetch(`http://127.0.0.1:${this.adminPort}/api/status`, { headers: { authorization: `Bearer ${this.adminToken}` }, signal }).then(
        (r) => r.json() as Promise<{ regions: Record<string, { status: string }> }>,
        () => undefined,
      );
      if (res !== undefined && ids.every((id) => res.regions[id]?.status === status)) return Date.now() - started;
      if (Date.now() - started > timeoutMs) throw new Error(`regions ${ids.join(',')} not ${status} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async startRedis(): Promise<void> {
    this.assertRunning();
    const child = spawn('redis-server', ['--port', String(this.redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    child.on('error', () => undefined);
    this.procs.set('redis', { child, output: '' });
    const deadline = Date.now() + 5_000;
    // Ours once the Redis that answers is our process: a listener that took the port first
    // (another run's Redis, after our bind failed) answers too, and the run went on against it.
    while (child.pid === undefined || (await redisPidOn(this.redisPort)) !== child.pid) {
      // No pid: the spawn itself failed (no redis-server installed).
      if (child.pid === undefined || child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`redis-server did not start on port ${this.redisPort} (is it installed? apt-get install -y redis-server; or the port was taken)`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async stopRedis(): Promise<void> {
    await this.kill('redis');
  }

  async startOrchestrator(id: string): Promise<void> {
    await this.spawnEdge(`orchestrator-${id}`, [
      'orchestrator', '--region', id, '--regions', this.regionsFile, '--redis', this.redisUrl,
      '--ms-per-100km', String(this.options.msPer100Km ?? 1), '--cold-start', this.options.coldStart ?? '100-500',
    ], /"event":"listening"/, { EDGE_PREWARM_TOKEN: this.prewarmToken });
  }

  /** SIGKILL: the region dies without a word (no draining heartbeat). */
  async killOrchestrator(id: string): Promise<void> {
    await this.kill(`orchestrator-${id}`);
  }

  /** Deploys functions through the registry, as an operator would. */
  async deploy(records: readonly FunctionRecord[]): Promise<void> {
    for (const record of records) await this.operator!.putFunction(record);
  }

  async drain(id: string, drained: boolean): Promise<void> {
    await this.operator!.setOverrides(id, { drained, weight: null });
  }

  /** Stops every process and removes the files; once, however often it is called. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      live.delete(this);
      await this.operator?.close().catch(() => undefined);
      await Promise.all([...this.procs.keys()].map((name) => this.kill(name)));
      if (this.dir !== '') await rm(this.dir, { recursive: true, force: true });
    })();
    return this.stopping;
  }

  /** A process of a topology stopped meanwhile is not started: nothing would stop it. */
  private assertRunning(): void {
    if (this.stopping !== undefined) throw new Error('the simulation was stopped');
  }

  private async spawnEdge(name: string, args: string[], ready: RegExp, env: NodeJS.ProcessEnv = {}): Promise<void> {
    this.assertRunning();
    const child = spawn(process.execPath, [join(this.options.root, 'dist', 'src', 'main.js'), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    const managed: Managed = { child, output: '' };
    this.procs.set(name, managed);
    // Without a listener a failed spawn (no process slots, no file descriptors) was an uncaught
    // 'error' that ended the whole sim with a stack trace instead of this start's own message.
    child.on('error', (err) => {
      managed.spawnError = err;
    });
    const onData = (d: Buffer) => {
      managed.output += d.toString();
      if (managed.output.length > 100_000) managed.output = managed.output.slice(-50_000);
    };
    // Null when the spawn failed before its pipes were made (EMFILE, ENFILE).
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    // 30 s: a process prints its ready line in well under a second on a quiet machine, but a CI
    // machine running other test files beside this one (load 10 on two cores) once took over 15 s.
    const deadline = Date.now() + 30_000;
    while (!ready.test(managed.output)) {
      if (managed.spawnError !== undefined) throw new Error(`${name} could not be started: ${managed.spawnError.message}`);
      if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}) during start:\n${managed.output}`);
      if (Date.now() > deadline) throw new Error(`${name} did not start within 30 s:\n${managed.output}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    this.options.log?.(`started ${name} (pid ${child.pid})`);
  }

  private async kill(name: string): Promise<void> {
    const managed = this.procs.get(name);
    if (managed === undefined) return;
    this.procs.delete(name);
    const { child } = managed;
    // No pid: never started (its spawn failed), nothing to stop; waited for, its 'error' rejected the wait.
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }
}

/** Topologies started and not yet stopped (stopLiveTopologies). */
const live = new Set<SimTopology>();

/**
 * Stops every topology of this process now: `sim` stopped by a signal while a scenario runs (the
 * scenario's own stop comes only at its end, minutes later; exiting without it left redis-server,
 * the router and the orchestrators running, and the run's files behind).
 */
export async function stopLiveTopologies(): Promise<void> {
  await Promise.all([...live].map((topology) => topology.stop()));
}

/** The process id of the Redis answering on `port` (INFO server), or undefined when none answers within 500 ms. */
export function redisPidOn(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    const done = (pid: number | undefined) => {
      socket.destroy();
      resolve(pid);
    };
    socket.setTimeout(500, () => done(undefined));
    socket.once('connect', () => socket.write('*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('latin1');
      const pid = /\r\nprocess_id:(\d+)\r\n/.exec(reply);
      if (pid !== null) done(Number(pid[1]));
      else if (reply.length > 65_536) done(undefined);
    });
    socket.once('error', () => done(undefined));
    socket.once('end', () => done(undefined));
  });
}

