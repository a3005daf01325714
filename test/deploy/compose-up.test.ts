/**
 * docker-compose.yml brought up for real: the images built from this tree, Redis, five
 * orchestrators, two routers and the load generators on their own network. Then the things an
 * operator relies on: every healthcheck passes, requests route through the published HTTPS port
 * and from each metro to its nearest region, an orchestrator killed under load costs no request
 * and shows down on the admin API, a Redis restart under load costs none either and leaves the
 * registry whole, and `down -v` leaves nothing behind.
 *
 * The build runs from a copy of the files the image needs (plus this host's CA bundle for npm
 * behind a TLS-inspecting proxy), so the checkout is never written to. Base images come from
 * Docker Hub when it can be reached, else from deploy/standins/build.sh.
 */
import { chmod, cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimComposeSubnet, composeSubnet, testProjectName } from '../support/compose-subnet.js';
import { baseImages, ensureDockerEngine, sh, type BaseImages } from '../support/docker.js';
import { freePort } from '../../src/sim/free-port.js';
import { until } from '../support/until.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HOST = 'echo-demo.telnyxcompute.com';
const TOKEN = `compose-test-${process.pid}-token`;
const PROJECT = testProjectName(process.pid);
/** The files the Dockerfile copies, and the compose file itself. */
const BUILD_FILES = ['Dockerfile', '.dockerignore', 'docker-compose.yml', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src', 'bin', 'regions.json', 'regions.compose.json', 'schema', 'geo'];
/** Heartbeat TTL (3 s) plus the routers' next registry read: README's "shows down within 5 s". */
const DOWN_WITHIN_MS = 5_000;

const engineProblem = await ensureDockerEngine(join(tmpdir(), 'edge-router-dockerd'));
if (engineProblem !== null) {
  if (process.env.CI === 'true' || process.env.CI === '1') throw new Error(`CI: the compose test needs a Docker engine: ${engineProblem}`);
  console.warn(`\n*** SKIPPING the docker-compose end-to-end test: ${engineProblem} ***\n`);
}

describe.skipIf(engineProblem !== null)('docker-compose up, end to end', () => {
  let dir = '';
  let images: BaseImages;
  let env: NodeJS.ProcessEnv;
  let ports: { https: number; https2: number; admin: number; admin2: number };
  const tls = new Agent({ connect: { rejectUnauthorized: false, servername: HOST }, connections: 4 });
  const compose = (args: readonly string[], timeoutMs = 120_000) => sh('docker-compose', ['-p', PROJECT, '-f', join(dir, 'docker-compose.yml'), ...args], { cwd: dir, env, timeoutMs });

  /** Each container's name, health and last checks, with the tail of its log when it is not healthy. */
  const healthReport = async (): Promise<string> => {
    const ids = (await compose(['ps', '-q'])).split('\n').filter(Boolean);
    const lines: string[] = [];
    for (const id of ids) {
      const state = (await sh('docker', ['inspect', '-f', '{{.Name}} {{.State.Status}} {{json .State.Health}}', id])).trim();
      lines.push(state);
      if (!state.includes('"Status":"healthy"')) lines.push((await sh('docker', ['logs', '--tail', '20', id]).catch((err: unknown) => String(err))).trim());
    }
    return lines.join('\n');
  };

  /** One GET through a router's published HTTPS port: status and the region that answered. */
  const get = async (port: number, path = '/'): Promise<{ status: number; region: string | undefined; route: string | undefined }> => {
    const res = await request(`https://127.0.0.1:${port}${path}`, { dispatcher: tls, headers: { host: HOST }, headersTimeout: 40_000, bodyTimeout: 40_000 });
    await res.body.dump();
    return { status: res.statusCode, region: res.headers['x-edge-region'] as string | undefined, route: res.headers['x-edge-route'] as string | undefined };
  };
  const admin = async (path: string, port = ports.admin, token: string | null = TOKEN) => {
    const res = await request(`http://127.0.0.1:${port}${path}`, { headers: token === null ? {} : { authorization: `Bearer ${token}` } });
    return { status: res.statusCode, body: (await res.body.json().catch(() => null)) as Record<string, unknown> | null };
  };
  const regionStatus = async (region: string): Promise<string | undefined> => {
    const { body } = await admin('/api/regions');
    const regions = (body?.regions ?? []) as Array<{ id: string; status: string }>;
    return regions.find((r) => r.id === region)?.status;
  };

  /**
   * Sequential GETs through both routers while `during` runs, bounded in count and time. Returns
   * every answer (a thrown request counts as status 0).
   */
  const underLoad = async (during: () => Promise<void>): Promise<Array<{ status: number; region: string | undefined; ms: number }>> => {
    const answers: Array<{ status: number; region: string | undefined; ms: number }> = [];
    let stopping = false;
    const deadline = Date.now() + 90_000;
    const loop = (async () => {
      for (let i = 0; i < 20_000 && !stopping && Date.now() < deadline; i++) {
        const started = Date.now();
        const answer = await get(i % 2 === 0 ? ports.https : ports.https2, `/load-${i}`).catch(() => ({ status: 0, region: undefined, route: undefined }));
        answers.push({ status: answer.status, region: answer.region, ms: Date.now() - started });
      }
    })();
    try {
      await during();
    } finally {
      stopping = true;
      await loop;
    }
    return answers;
  };

  beforeAll(async () => {
    images = await baseImages(ROOT);
    dir = await mkdtemp(join(tmpdir(), 'edge-compose-'));
    for (const file of BUILD_FILES) await cp(join(ROOT, file), join(dir, file), { recursive: true });
    // npm inside the build must trust what this host trusts (a TLS-inspecting proxy's CA, say).
    const bundle = process.env.NODE_EXTRA_CA_CERTS ?? process.env.SSL_CERT_FILE;
    if (bundle !== undefined) await cp(bundle, join(dir, 'extra-ca.pem'));
    // The token files compose mounts as secrets, as deploy/compose-env.sh writes them (a known
    // admin token here): readable by the containers' user, which is not this one.
    await mkdir(join(dir, 'deploy/compose-secrets'), { recursive: true, mode: 0o700 });
    for (const [name, token] of [['admin-token', TOKEN], ['prewarm-token', 'compose-up-prewarm-token-0123456789']] as const) {
      await writeFile(join(dir, 'deploy/compose-secrets', name), `${token}\n`);
      await chmod(join(dir, 'deploy/compose-secrets', name), 0o644);
    }
    ports = { https: await freePort(), https2: await freePort(), admin: await freePort(), admin2: await freePort() };
    env = {
      ...process.env,
      EDGE_NODE_IMAGE: images.node,
      EDGE_REDIS_IMAGE: images.redis,
      EDGE_EXTRA_CA_CERTS: bundle === undefined ? '' : 'extra-ca.pem',
      EDGE_PUBLISH_HTTPS: String(ports.https),
      EDGE_PUBLISH_HTTP: String(await freePort()),
      EDGE_PUBLISH_ADMIN: String(ports.admin),
      EDGE_PUBLISH_HTTPS_2: String(ports.https2),
      EDGE_PUBLISH_HTTP_2: String(await freePort()),
      EDGE_PUBLISH_ADMIN_2: String(ports.admin2),
    };
    await compose(['build'], 10 * 60_000);
    // The network's subnet is fixed: a stack left by an interrupted run, or one another checkout's
    // compose test has up right now, would make `up` fail. Two tests that found it free at once
    // race for it: the loser waits for the winner.
    const subnet = await composeSubnet(join(dir, 'docker-compose.yml'));
    for (let attempt = 1; ; attempt++) {
      await claimComposeSubnet(subnet, PROJECT, 8 * 60_000);
      try {
        // Returns once every depends_on condition (healthy Redis, orchestrators, routers) was met
        // and the load generators were started.
        await compose(['up', '-d'], 5 * 60_000);
        break;
      } catch (err) {
        if (attempt === 3 || !/Pool overlaps/.test(String(err))) {
          // "Container <id> is unhealthy" names no service: show each one's last checks and logs.
          console.error(await healthReport().catch((reportErr: unknown) => `no health report: ${String(reportErr)}`));
          throw err;
        }
      }
    }
  }, 28 * 60_000);

  afterAll(async () => {
    await tls.close();
    if (dir === '') return;
    await compose(['down', '-v', '--remove-orphans', '-t', '15'], 120_000).catch((err: unknown) => console.error(err));
    await rm(dir, { recursive: true, force: true });
  }, 180_000);

  it('passes every healthcheck, and routes through the published HTTPS port; the admin API wants the token', async () => {
    const ids = (await compose(['ps', '-q'])).split('\n').filter(Boolean);
    const health = async () => (await sh('docker', ['inspect', '-f', '{{.Name}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}', ...ids])).trim().split('\n');
    await until('every long-running service healthy', async () => (await health()).every((line) => line.endsWith(' healthy') || line.endsWith(' none')), 120_000);
    const states = await health();
    expect(states.filter((s) => s.endsWith(' healthy')).length, states.join('\n')).toBe(8); // redis, 5 orchestrators, 2 routers
    for (const port of [ports.https, ports.https2]) {
      // From the host, the client is the compose network's gateway: no metro, so ranked from the
      // default region, nyc. Nothing there is warm at first, so latency routing may answer from a
      // region the load generators keep warm and ask nyc for a container (pre-warm): then nyc.
      let res = await get(port);
      expect(res.status).toBe(200);
      expect(res.route).toMatch(/^(fallback:no-geo|warm:[a-z]+)$/);
      await until('nyc answers the host, pre-warmed', async () => {
        res = await get(port);
        return res.region === 'nyc';
      }, 10_000);
      expect([res.status, res.route]).toEqual([200, 'fallback:no-geo']);
    }
    expect((await admin('/api/status')).status).toBe(200);
    expect((await admin('/api/status', ports.admin2)).status).toBe(200);
    expect((await admin('/api/status', ports.admin, null)).status).toBe(401);
    // The token the routers took from their secret file is in no container's environment (docker inspect shows it to anyone who may).
    const environments = await sh('docker', ['inspect', '-f', '{{.Name}} {{json .Config.Env}}', ...ids]);
    expect(environments).not.toContain(TOKEN);
    expect(environments).not.toContain('compose-up-prewarm-token');
    // The compose file's header command, as printed there.
    const status = await compose(['exec', '-T', 'router-1', 'node', 'dist/src/main.js', 'registry', 'status', '--redis', 'redis://redis:6379']);
    for (const region of ['atl', 'nyc', 'lax', 'fra', 'syd']) expect(status).toMatch(new RegExp(`^\\s*${region}\\b.*\\bup\\b`, 'm'));
    // The Kubernetes Deployment's preStop hook runs `sleep` in this image (router-deployment.yaml).
    await compose(['exec', '-T', 'router-1', 'sleep', '0']);
  }, 180_000);

  it('sends each load generator\'s metro to its nearest region (at least 90 %, the rest while it warms), with no failed request', async () => {
    const nearest: Record<string, string> = { london: 'fra', tokyo: 'syd', atlanta: 'atl' };
    for (const [metro, region] of Object.entries(nearest)) {
      const id = (await compose(['ps', '-q', `loadgen-${metro}`])).trim();
      expect(id, metro).not.toBe('');
      // 200 requests 50 ms apart: about 15 s each, all three at once.
      const exitCode = (await sh('docker', ['wait', id], { timeoutMs: 120_000 })).trim();
      // The log names each failed request (its status or error): the message must carry it.
      const lines = (await sh('docker', ['logs', id])).trim().split('\n');
      expect(exitCode, `loadgen-${metro} exit code; its log:\n${lines.slice(-20).join('\n')}`).toBe('0');
      const summary = JSON.parse(lines.at(-1)!) as { client: string; requests: number; failed: number; served: Record<string, number> };
      console.log(`compose: loadgen-${metro}: ${JSON.stringify(summary.served)}`);
      expect(summary).toMatchObject({ client: metro, requests: 200, failed: 0 });
      // Latency routing: while the nearest region has no container yet (the first second or so,
      // until a cold start or the pre-warm it asks for is done), a request may be answered by a
      // region another load generator keeps warm (London by Atlanta: 6 of 200 in one run); after
      // that, each metro's requests stay at its nearest region.
      const atNearest = Object.entries(summary.served).filter(([key]) => new RegExp(`^${region} 200 (nearest|cold-nearest)$`).test(key));
      expect(atNearest.reduce((n, [, count]) => n + count, 0), JSON.stringify(summary.served)).toBeGreaterThanOrEqual(180);
    }
  }, 240_000);

  it('loses no request while an orchestrator is killed under load, shows it down in time, and takes it back after `start`', async () => {
    let downAfterMs = NaN;
    const answers = await underLoad(async () => {
      await until('load reaches nyc', async () => (await get(ports.https)).region === 'nyc', 10_000);
      await compose(['kill', 'orchestrator-nyc']);
      await until('nyc shows down on the admin API', async () => (await regionStatus('nyc')) === 'down', 30_000);
      const seenDownAt = Date.now();
      // From the moment the container died (docker-compose's own start-up is not the router's time).
      const id = (await compose(['ps', '-q', 'orchestrator-nyc'])).trim();
      const diedAt = Date.parse((await sh('docker', ['inspect', '-f', '{{.State.FinishedAt}}', id])).trim());
      downAfterMs = seenDownAt - diedAt;
      // Some requests are served elsewhere while nyc is down.
      await until('traffic moved off nyc', async () => (await get(ports.https)).region !== 'nyc', 10_000);
      await compose(['start', 'orchestrator-nyc']);
      await until('nyc up again', async () => (await regionStatus('nyc')) === 'up', 60_000);
      await until('traffic back on nyc', async () => (await get(ports.https)).region === 'nyc', 30_000);
    });
    const slowest = Math.max(...answers.map((a) => a.ms));
    console.info(`compose: orchestrator-nyc killed under load: down on the admin API after ${downAfterMs} ms; ${answers.length} requests, ${answers.filter((a) => a.status !== 200).length} failed, slowest ${slowest} ms`);
    expect(downAfterMs).toBeLessThanOrEqual(DOWN_WITHIN_MS);
    expect(answers.length).toBeGreaterThan(20);
    expect(answers.filter((a) => a.status !== 200), 'failed requests').toEqual([]);
    expect(new Set(answers.map((a) => a.region))).toContain('nyc');
    expect(answers.some((a) => a.region !== 'nyc'), 'some requests served by another region while nyc was down').toBe(true);
  }, 240_000);

  it('keeps routing while Redis restarts under load (fail-static), and has the whole registry again afterwards', async () => {
    const before = await admin('/api/functions/demo/echo');
    expect(before.status).toBe(200);
    const answers = await underLoad(async () => {
      await compose(['restart', '-t', '2', 'redis']);
      await until('the router reads the registry again', async () => ((await admin('/api/regions')).body?.registry as { stale?: boolean } | undefined)?.stale === false, 60_000);
      await until('every region up again', async () => {
        const { body } = await admin('/api/regions');
        return ((body?.regions ?? []) as Array<{ status: string }>).every((r) => r.status === 'up');
      }, 30_000);
    });
    console.info(`compose: Redis restarted under load: ${answers.length} requests, ${answers.filter((a) => a.status !== 200).length} failed, slowest ${Math.max(...answers.map((a) => a.ms))} ms`);
    expect(answers.length).toBeGreaterThan(10);
    expect(answers.filter((a) => a.status !== 200), 'failed requests').toEqual([]);
    // The directory survived the restart (AOF on the named volume), on both routers.
    expect(await admin('/api/functions/demo/echo')).toEqual(before);
    expect((await admin('/api/functions/demo/echo', ports.admin2)).status).toBe(200);
  }, 240_000);

  it('leaves no container, network or volume behind after `down -v`', async () => {
    await compose(['down', '-v', '--remove-orphans', '-t', '15'], 120_000);
    const label = `label=com.docker.compose.project=${PROJECT}`;
    expect((await sh('docker', ['ps', '-aq', '--filter', label])).trim()).toBe('');
    expect((await sh('docker', ['network', 'ls', '-q', '--filter', label])).trim()).toBe('');
    expect((await sh('docker', ['volume', 'ls', '-q', '--filter', label])).trim()).toBe('');
  }, 180_000);
});
