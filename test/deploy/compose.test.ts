/**
 * The Docker deployment describes the same system as regions.json: regions.compose.json differs
 * only in orchestrator addresses, docker-compose.yml runs one orchestrator per region plus Redis,
 * two routers and load generators placed in client metros, and the Dockerfile ships a non-root
 * image without dev dependencies. No Docker engine is needed: `docker-compose config` (Debian's
 * docker-compose, v1) validates and normalizes the file, and python3-yaml (its dependency)
 * turns the normalized YAML into JSON.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRegionsFile, type RegionsConfig } from '../../src/config/load-regions.js';
import { MaxmindLocator } from '../../src/geoip/maxmind-locator.js';
import { buildSimDatabase } from '../../src/geoip/sim-database.js';
import { orchestratorHelp } from '../../src/cli/help/orchestrator.js';
import { shutdownGraceMs } from '../../src/orchestrator/orchestrator.js';
import { routerHelp } from '../../src/cli/help/router.js';
import type { CommandHelp } from '../../src/cli/flags.js';
import { CLIENT_METROS, COMPOSE_CLIENT_METROS, type ClientMetro } from '../../src/sim/client-metros.js';
import { missingProgram } from '../support/system-program.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const at = (file: string) => join(ROOT, file);
const REGIONS_IN_CONTAINER = '/app/regions.compose.json';
const COMPOSE_MISSING = missingProgram('docker-compose', 'apt-get install -y docker-compose');

/** What the tests read of `docker-compose config` output (every service field normalized). */
interface ComposeService {
  readonly image?: string;
  readonly build?: { readonly context: string; readonly dockerfile?: string };
  readonly command?: readonly string[];
  readonly entrypoint?: readonly string[];
  readonly environment?: Readonly<Record<string, string | null>>;
  readonly healthcheck?: { readonly test?: readonly string[] | string; readonly disable?: boolean };
  readonly ports?: ReadonlyArray<string | { readonly published: number | string; readonly target: number; readonly host_ip?: string }>;
  readonly expose?: readonly string[];
  readonly networks?: Readonly<Record<string, { readonly ipv4_address?: string } | null>>;
  readonly depends_on?: Readonly<Record<string, { readonly condition: string }>>;
  readonly restart?: string;
  readonly user?: string;
  readonly volumes?: ReadonlyArray<string | { readonly type?: string; readonly source?: string; readonly target: string }>;
  readonly sysctls?: Readonly<Record<string, string | number>> | readonly string[];
  readonly stop_grace_period?: string;
  readonly secrets?: ReadonlyArray<string | { readonly source: string; readonly target?: string }>;
}

interface ComposeFile {
  readonly services: Readonly<Record<string, ComposeService>>;
  readonly volumes?: Readonly<Record<string, unknown>>;
  readonly secrets?: Readonly<Record<string, { readonly file?: string }>>;
  readonly networks?: Readonly<Record<string, { readonly ipam?: { readonly config?: ReadonlyArray<{ subnet?: string; ip_range?: string }> } }>>;
}

interface PublishedPort {
  readonly hostIp: string | undefined;
  readonly published: number;
  readonly target: number;
}

/** The commands compose services run, and the flags (so env variables) each one reads. */
const COMMANDS: Readonly<Record<string, CommandHelp>> = { router: routerHelp, orchestrator: orchestratorHelp };

/** The environment compose runs in: tokens exported there (as before the secret files) must reach no container. */
const COMPOSE_ENV = { ...process.env, EDGE_ADMIN_TOKEN: 'compose-test-admin-token-0123456789', EDGE_PREWARM_TOKEN: 'compose-test-prewarm-token-0123456789' };

function runCompose(args: readonly string[]): string {
  const result = spawnSync('docker-compose', ['-f', 'docker-compose.yml', ...args], { cwd: ROOT, encoding: 'utf8', env: COMPOSE_ENV });
  if (result.status !== 0) throw new Error(`docker-compose ${args.join(' ')} exited ${result.status}:\n${result.stderr}`);
  return result.stdout;
}

/** The python that runs docker-compose has PyYAML, whatever `python3` on PATH is. */
function composePython(): string {
  const program = execFileSync('sh', ['-c', 'command -v docker-compose'], { encoding: 'utf8' }).trim();
  const shebang = /^#!\s*(\S*python\S*)/.exec(readFileSync(program, 'utf8').split('\n', 1)[0] ?? '');
  return shebang?.[1] ?? 'python3';
}

function composeConfig(): ComposeFile {
  const yaml = runCompose(['config']);
  const json = execFileSync(composePython(), ['-c', 'import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'], {
    input: yaml,
    encoding: 'utf8',
  });
  return JSON.parse(json) as ComposeFile;
}

function publishedPorts(service: ComposeService): PublishedPort[] {
  return (service.ports ?? []).map((port) => {
    if (typeof port !== 'string') return { hostIp: port.host_ip, published: Number(port.published), target: port.target };
    // "[host_ip:]published:target[/protocol]"
    const parts = port.replace(/\/\w+$/, '').split(':');
    const target = Number(parts.pop());
    const published = Number(parts.pop());
    return { hostIp: parts.length > 0 ? parts.join(':') : undefined, published, target };
  });
}

function ipv4ToInt(ip: string): number {
  const octets = ip.split('.').map(Number);
  if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) throw new Error(`not an IPv4 address: ${ip}`);
  return octets.reduce((n, o) => n * 256 + o, 0);
}

/** First and last address of an IPv4 CIDR, as numbers. */
function cidrRange(cidr: string): [number, number] {
  const [address = '', bits = ''] = cidr.split('/');
  const size = 2 ** (32 - Number(bits));
  const first = Math.floor(ipv4ToInt(address) / size) * size;
  return [first, first + size - 1];
}

const inside = (ip: string, cidr: string) => {
  const [first, last] = cidrRange(cidr);
  const n = ipv4ToInt(ip);
  return n >= first && n <= last;
};
const overlaps = (a: string, b: string) => {
  const [a1, a2] = cidrRange(a);
  const [b1, b2] = cidrRange(b);
  return a1 <= b2 && b1 <= a2;
};

function regionsJson(file: string): { regions: Array<Record<string, unknown>> } & Record<string, unknown> {
  return JSON.parse(readFileSync(at(file), 'utf8')) as { regions: Array<Record<string, unknown>> } & Record<string, unknown>;
}

describe('regions.compose.json', () => {
  it('passes the project\'s own validation', async () => {
    const config = await loadRegionsFile(at('regions.compose.json'));
    expect(config.regions.map((r) => r.id)).toEqual(['atl', 'nyc', 'lax', 'fra', 'syd']);
  });

  it('is regions.json with only the orchestrator addresses changed', () => {
    const bare = regionsJson('regions.json');
    const compose = regionsJson('regions.compose.json');
    const withoutUrls = (file: typeof bare) => ({ ...file, regions: file.regions.map(({ orchestrators: _, ...rest }) => rest) });
    expect(withoutUrls(compose)).toEqual(withoutUrls(bare));
  });

  it('names each orchestrator by its compose service, orchestrator-<region id>', () => {
    for (const region of regionsJson('regions.compose.json').regions) {
      for (const url of region.orchestrators as string[]) expect(new URL(url).hostname).toBe(`orchestrator-${String(region.id)}`);
    }
  });
});

describe('Dockerfile', () => {
  // Instructions with continuation lines joined and comments dropped, split into stages.
  const instructions = readFileSync(at('Dockerfile'), 'utf8')
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const stages: string[][] = [];
  for (const line of instructions) {
    if (/^FROM\s/i.test(line)) stages.push([line]);
    else stages.at(-1)?.push(line);
  }
  const final = stages.at(-1) ?? [];
  const runs = (stage: readonly string[]) => stage.filter((l) => /^RUN\s/i.test(l));

  it('builds in one stage and runs from another', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(stages.slice(0, -1).some((stage) => runs(stage).some((r) => /npm (run )?build/.test(r)))).toBe(true);
  });

  it('runs the final stage as a non-root user', () => {
    const users = final.filter((l) => /^USER\s/i.test(l)).map((l) => l.split(/\s+/)[1]!.split(':')[0]);
    expect(users.length).toBeGreaterThan(0);
    expect(['root', '0']).not.toContain(users.at(-1));
  });

  it('installs production dependencies only in the final stage and copies no node_modules into it', () => {
    const installs = runs(final).filter((r) => /npm (ci|install|i)\b/.test(r));
    expect(installs.length).toBeGreaterThan(0);
    for (const install of installs) expect(install).toMatch(/--omit=dev/);
    expect(final.filter((l) => /^COPY\s/i.test(l) && /node_modules/.test(l))).toEqual([]);
  });

  it('takes its base images as build arguments, defaulting to the official Node 20 image, and an optional CA bundle for npm', () => {
    const args = instructions.filter((l) => /^ARG\s/i.test(l));
    expect(args).toContain('ARG NODE_IMAGE=node:20-bookworm-slim');
    expect(args).toContain('ARG NODE_RUNTIME_IMAGE=node:20-bookworm-slim');
    expect(stages.map((stage) => stage[0])).toEqual(['FROM ${NODE_IMAGE} AS build', 'FROM ${NODE_RUNTIME_IMAGE} AS runtime']);
    for (const stage of stages) {
      expect(stage).toContain('ARG EXTRA_CA_CERTS=');
      expect(runs(stage).find((r) => /npm ci/.test(r))).toMatch(/NODE_EXTRA_CA_CERTS=/);
    }
  });

  it('starts the edge-router command', () => {
    expect(final.filter((l) => /^ENTRYPOINT\s/i.test(l)).at(-1)).toBe('ENTRYPOINT ["node", "dist/src/main.js"]');
  });

  it('keeps host build output out of the build context', () => {
    const ignored = readFileSync(at('.dockerignore'), 'utf8').split(/\r?\n/).map((l) => l.trim().replace(/^\/|\/$/g, ''));
    for (const entry of ['node_modules', 'dist', '.git', 'test-results', 'coverage']) expect(ignored).toContain(entry);
  });

  it('keeps the secrets that live beside the checkout out of the build context, and what the build needs in it', () => {
    // Docker's rules: patterns from the context root, `*` within one path segment, `**` across
    // any number, a matched directory takes its contents along, `!` re-includes, the last match wins.
    const rules = readFileSync(at('.dockerignore'), 'utf8')
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'))
      .map((l) => {
        const include = l.startsWith('!');
        const pattern = (include ? l.slice(1) : l).replace(/^\/|\/$/g, '');
        const source = pattern
          .split('/')
          .map((segment) => (segment === '**' ? '(?:[^/]+/)*' : `${segment.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}/`))
          .join('')
          .replace(/\/$/, '');
        return { include, re: new RegExp(`^${source.replace(/\(\?:\[\^\/\]\+\/\)\*$/, '.*')}$`) };
      });
    const excluded = (path: string) => {
      const prefixes = path.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'));
      let out = false;
      for (const rule of rules) if (prefixes.some((p) => rule.re.test(p))) out = !rule.include;
      return out;
    };
    // compose's token files (deploy/compose-env.sh writes them) and .env (where it wrote them
    // before), the overlays' token files, private keys and Redis dumps (the registry keeps ACME keys).
    const secrets = ['deploy/compose-secrets/admin-token', 'deploy/compose-secrets/prewarm-token', '.env', 'deploy/kubernetes/overlays/simulation/admin-token.env', 'deploy/kubernetes/overlays/prod/prewarm-token.env', 'certs/wildcard.key', 'tls/example.com.key', 'dump.rdb'];
    for (const path of secrets) expect(excluded(path), path).toBe(true);
    const needed = ['package.json', 'package-lock.json', 'tsconfig.json', 'src/main.ts', 'src/dashboard/browser/dashboard.js', 'bin/edge-router.js', 'regions.compose.json', 'schema/regions.schema.json', 'geo/sim.mmdb', 'extra-ca.pem'];
    for (const path of needed) expect(excluded(path), path).toBe(false);
  });
});

describe('compose client metros', () => {
  it('give every metro its own /24, apart from the loopback metros', () => {
    expect(COMPOSE_CLIENT_METROS.map((m) => m.id)).toEqual(CLIENT_METROS.map((m) => m.id));
    const subnets = [...CLIENT_METROS, ...COMPOSE_CLIENT_METROS].map((m) => m.subnet);
    for (const [i, a] of subnets.entries()) for (const b of subnets.slice(i + 1)) expect(overlaps(a, b), `${a} overlaps ${b}`).toBe(false);
    for (const m of COMPOSE_CLIENT_METROS) expect(m.subnet).toMatch(/^172\.30\.\d+\.0\/24$/);
  });
});

describe.skipIf(COMPOSE_MISSING)('docker-compose.yml', () => {
  let compose: ComposeFile;
  let regions: RegionsConfig;
  let bareRegions: RegionsConfig;
  const services = () => Object.entries(compose.services);
  const named = (pattern: RegExp) => services().filter(([name]) => pattern.test(name));
  const env = (service: ComposeService, name: string) => service.environment?.[name] ?? undefined;
  /** Services that run the edge-router command (the image's entrypoint) rather than their own. */
  const edgeRouterServices = () => services().filter(([, s]) => s.entrypoint === undefined && s.command?.[0] !== undefined && s.command[0] in COMMANDS);
  const loadgens = () => named(/^loadgen/);
  const metroOf = (ip: string): ClientMetro | undefined => COMPOSE_CLIENT_METROS.find((m) => inside(ip, m.subnet));
  const fixedAddress = (service: ComposeService) => Object.values(service.networks ?? {}).map((n) => n?.ipv4_address).find((a) => a !== undefined);

  beforeAll(async () => {
    compose = composeConfig();
    regions = await loadRegionsFile(at('regions.compose.json'));
    bareRegions = await loadRegionsFile(at('regions.json'));
  });

  it('is valid for `docker-compose config -q`', () => {
    const result = spawnSync('docker-compose', ['-f', 'docker-compose.yml', 'config', '-q'], { cwd: ROOT, encoding: 'utf8', env: COMPOSE_ENV });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  /** The secret files a service mounts, by the path the container reads: /run/secrets/<name> unless a target is given. */
  const mountedSecrets = (service: ComposeService) =>
    new Map(
      (service.secrets ?? []).map((entry) => {
        const source = typeof entry === 'string' ? entry : entry.source;
        const target = typeof entry === 'string' || entry.target === undefined ? `/run/secrets/${source}` : entry.target.startsWith('/') ? entry.target : `/run/secrets/${entry.target}`;
        return [target, compose.secrets?.[source]?.file] as const;
      }),
    );

  it('gives the tokens to no container as an environment value (docker inspect shows every one): only as secret files', () => {
    // Exported in compose's environment, as the old instructions had it: still none reaches a container.
    for (const [name, s] of services()) {
      for (const [variable, value] of Object.entries(s.environment ?? {})) {
        expect([COMPOSE_ENV.EDGE_ADMIN_TOKEN, COMPOSE_ENV.EDGE_PREWARM_TOKEN], `${name}: ${variable}`).not.toContain(value);
        expect(['EDGE_ADMIN_TOKEN', 'EDGE_PREWARM_TOKEN'], `${name}: ${variable}`).not.toContain(variable);
      }
    }
    expect(runCompose(['config'])).not.toMatch(/compose-test-(admin|prewarm)-token/);
  });

  it('gives the routers the admin token file and routers and orchestrators the one pre-warm token file, from deploy/compose-secrets', () => {
    const secretsDir = at('deploy/compose-secrets');
    expect(compose.secrets?.['edge-admin-token']?.file).toBe(join(secretsDir, 'admin-token'));
    expect(compose.secrets?.['edge-prewarm-token']?.file).toBe(join(secretsDir, 'prewarm-token'));
    const edge = edgeRouterServices();
    expect(edge).toHaveLength(7);
    for (const [name, s] of edge) {
      const mounted = mountedSecrets(s);
      const prewarm = env(s, 'EDGE_PREWARM_TOKEN_FILE');
      expect(prewarm, name).toEqual(expect.any(String));
      expect(mounted.get(prewarm!), `${name}: ${prewarm}`).toBe(join(secretsDir, 'prewarm-token'));
      if (!name.startsWith('router')) continue;
      const admin = env(s, 'EDGE_ADMIN_TOKEN_FILE');
      expect(admin, name).toEqual(expect.any(String));
      expect(mounted.get(admin!), `${name}: ${admin}`).toBe(join(secretsDir, 'admin-token'));
    }
    // The load generators need neither.
    for (const [name, s] of loadgens()) expect(s.secrets ?? [], name).toEqual([]);
    // Kept out of git, as out of the build context (above).
    expect(readFileSync(at('.gitignore'), 'utf8').split(/\r?\n/)).toContain('deploy/compose-secrets/');
  });

  it('runs one orchestrator per region of regions.json and regions.compose.json, and no other', () => {
    const ids = named(/^orchestrator/).map(([, s]) => env(s, 'EDGE_REGION')).sort();
    expect(ids).toEqual(bareRegions.regions.map((r) => r.id).sort());
    expect(ids).toEqual(regions.regions.map((r) => r.id).sort());
    for (const [name, s] of named(/^orchestrator/)) {
      expect(name).toBe(`orchestrator-${env(s, 'EDGE_REGION')}`);
      expect(s.command).toEqual(['orchestrator']);
    }
  });

  it('gives every orchestrator a stop grace period longer than it waits for the requests in flight', () => {
    const ms = (text = '10s') => {
      const match = /^(?:(\d+)m)?(?:(\d+)s)?$/.exec(text);
      expect(match, text).not.toBeNull();
      return (Number(match![1] ?? 0) * 60 + Number(match![2] ?? 0)) * 1000;
    };
    // Compose's default of 10 s would kill a region mid-drain and cut the extended tier's requests.
    for (const [name, s] of named(/^orchestrator/)) expect(ms(s.stop_grace_period), name).toBeGreaterThan(shutdownGraceMs());
  });

  it('points every orchestrator URL at a service of that region listening on the URL\'s port on every address', () => {
    for (const region of regions.regions) {
      for (const raw of region.orchestrators) {
        const url = new URL(raw);
        const service = compose.services[url.hostname];
        expect(service, `${raw}: no service ${url.hostname}`).toBeDefined();
        expect(env(service!, 'EDGE_REGION')).toBe(region.id);
        expect(env(service!, 'EDGE_HOST')).toBe('0.0.0.0');
        const port = url.port === '' ? '80' : url.port;
        // EDGE_PORT, or by default the port of the region's URL.
        expect(env(service!, 'EDGE_PORT') ?? port).toBe(port);
        expect(JSON.stringify(service!.healthcheck?.test)).toContain(`:${port}/healthz`);
      }
    }
  });

  it('runs two router replicas on the compose regions file and the shared Redis', () => {
    const routers = named(/^router/);
    expect(routers.map(([name]) => name)).toEqual(['router-1', 'router-2']);
    const redis = compose.services.redis;
    expect(redis?.image).toMatch(/^redis:/);
    for (const [name, s] of [...routers, ...named(/^orchestrator/)]) {
      expect(env(s, 'EDGE_REGIONS'), name).toBe(REGIONS_IN_CONTAINER);
      expect(new URL(env(s, 'REDIS_URL') ?? 'missing:').hostname, name).toBe('redis');
    }
    for (const [name, s] of routers) {
      expect(s.command, name).toEqual(['router']);
      expect(env(s, 'EDGE_DEV_CERT'), name).toMatch(/^(1|true|yes|on)$/i);
    }
  });

  it("redirects each router's plain HTTP to the host port its HTTPS is published on, not the container's", () => {
    for (const [name, s] of named(/^router/)) {
      const https = publishedPorts(s).find((p) => p.target === Number(env(s, 'EDGE_HTTPS_PORT')));
      expect(https, name).toBeDefined();
      expect(env(s, 'EDGE_REDIRECT_PORT'), name).toBe(String(https!.published));
    }
  });

  it('keeps the registry across Redis restarts: AOF on a named volume', () => {
    const redis = compose.services.redis!;
    expect(redis.command?.join(' ')).toMatch(/--appendonly yes/);
    const data = (redis.volumes ?? []).map((v) => (typeof v === 'string' ? { source: v.split(':')[0], target: v.split(':')[1] } : v)).find((v) => v.target === '/data');
    expect(data?.source).toBe('redis-data');
    expect(Object.keys(compose.volumes ?? {})).toContain('redis-data');
  });

  it('bounds what a client that stops reading costs the routers (tcp_notsent_lowat)', () => {
    for (const [name, s] of named(/^router/)) {
      const sysctls = Array.isArray(s.sysctls) ? Object.fromEntries((s.sysctls as string[]).map((x) => x.split('='))) : (s.sysctls ?? {});
      expect(String((sysctls as Record<string, unknown>)['net.ipv4.tcp_notsent_lowat']), name).toBe('131072');
    }
  });

  it('trusts no forwarded headers at the routers', () => {
    for (const [name, s] of named(/^router/)) expect(env(s, 'EDGE_TRUSTED_PROXIES') ?? '', name).toBe('');
    expect(regions.trustedProxies ?? []).toEqual([]);
  });

  it('publishes the routers\' HTTPS port (router-1 on 443) and the admin port on the host\'s loopback only', () => {
    for (const [name, s] of named(/^router/)) {
      const ports = publishedPorts(s);
      const https = ports.filter((p) => p.target === Number(env(s, 'EDGE_HTTPS_PORT') ?? 8443));
      expect(https.length, name).toBe(1);
      if (name === 'router-1') expect(https[0]!.published).toBe(443);
      const admin = ports.filter((p) => p.target === Number(env(s, 'EDGE_ADMIN_PORT') ?? 9090));
      expect(admin.length, name).toBe(1);
      expect(admin[0]!.hostIp, name).toBe('127.0.0.1');
    }
  });

  it('sets only environment variables the edge-router command reads', () => {
    expect(edgeRouterServices().length).toBe(7);
    for (const [name, s] of edgeRouterServices()) {
      const known = new Set(COMMANDS[s.command![0]!]!.flags.flatMap((f) => (f.env === undefined ? [] : [f.env])));
      for (const variable of Object.keys(s.environment ?? {})) expect(known.has(variable), `${name}: ${variable} is not read by edge-router ${s.command![0]}`).toBe(true);
    }
  });

  it('gives every long-running service a healthcheck and waits for health before depending on it', () => {
    for (const [name, s] of services()) {
      if (s.restart === 'no') continue; // a bounded run (the load generators)
      expect(s.healthcheck?.disable, name).not.toBe(true);
      expect(s.healthcheck?.test?.length, `${name} has no healthcheck`).toBeGreaterThan(0);
    }
    for (const [name, s] of services()) {
      for (const [dependency, { condition }] of Object.entries(s.depends_on ?? {})) {
        expect(compose.services[dependency]?.healthcheck, `${name} → ${dependency}`).toBeDefined();
        expect(condition, `${name} → ${dependency}`).toBe('service_healthy');
      }
    }
  });

  it('builds every edge-router service from this Dockerfile into one image', () => {
    const own = services().filter(([name]) => name !== 'redis');
    expect(new Set(own.map(([, s]) => s.image)).size).toBe(1);
    for (const [name, s] of own) expect(s.build?.context.replace(/\/$/, ''), name).toBe(ROOT.replace(/\/$/, ''));
  });

  it('places load generators at fixed addresses in distinct client metros that send to the routers', () => {
    expect(loadgens().length).toBeGreaterThan(0);
    const metros = new Set<string>();
    for (const [name, s] of loadgens()) {
      const address = fixedAddress(s);
      expect(address, `${name} has no fixed address`).toBeDefined();
      const metro = metroOf(address!);
      expect(metro, `${name}: ${address} is in no compose client metro`).toBeDefined();
      metros.add(metro!.id);
      for (const target of (env(s, 'LOADGEN_TARGETS') ?? '').split(',')) {
        const url = new URL(target);
        expect(url.protocol).toBe('https:');
        expect(Number(url.port)).toBe(Number(env(compose.services[url.hostname] ?? {}, 'EDGE_HTTPS_PORT')));
      }
    }
    expect(metros.size).toBe(loadgens().length);
  });

  it('keeps the client metros inside the network\'s subnet and out of Docker\'s dynamic range', () => {
    const ipam = Object.values(compose.networks ?? {}).flatMap((n) => n.ipam?.config ?? []);
    expect(ipam.length).toBe(1);
    const { subnet, ip_range: dynamic } = ipam[0]!;
    expect(subnet).toBeDefined();
    expect(dynamic).toBeDefined();
    for (const m of COMPOSE_CLIENT_METROS) {
      expect(inside(m.subnet.split('/')[0]!, subnet!) && overlaps(m.subnet, subnet!), m.subnet).toBe(true);
      expect(overlaps(m.subnet, dynamic!), `${m.subnet} overlaps the dynamic range ${dynamic}`).toBe(false);
    }
  });

  describe('GeoIP of the load generators', () => {
    let dir: string;
    const open: MaxmindLocator[] = [];
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'compose-geo-'));
    });
    afterAll(async () => {
      open.splice(0).forEach((l) => l.close());
      await rm(dir, { recursive: true, force: true });
    });
    const locator = async (file: string) => {
      const l = await MaxmindLocator.open(file, { watch: false });
      open.push(l);
      return l;
    };
    const expectEachInItsMetro = (l: MaxmindLocator) => {
      for (const [name, s] of loadgens()) {
        const address = fixedAddress(s)!;
        const metro = metroOf(address)!;
        expect(l.locate(address), name).toMatchObject({ source: 'geoip', city: metro.city, country: metro.country, lat: metro.lat, lon: metro.lon });
      }
    };

    it('a sim database with the compose metros places each one in its metro', async () => {
      const file = join(dir, 'sim.mmdb');
      await writeFile(file, buildSimDatabase([...CLIENT_METROS, ...COMPOSE_CLIENT_METROS]));
      const l = await locator(file);
      expectEachInItsMetro(l);
      expect(l.locate('172.30.0.5').source).toBe('private'); // Docker's dynamic range: no metro
    });

    it('the bundled geo/sim.mmdb places each one in its metro', async () => {
      expectEachInItsMetro(await locator(at('geo/sim.mmdb')));
    });
  });
});
