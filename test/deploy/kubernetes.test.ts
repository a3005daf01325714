/**
 * The Kubernetes manifests (deploy/kubernetes), read as data: no cluster is needed to check that
 * they say what the README promises, and that every setting is one the edge-router command reads.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { orchestratorHelp } from '../../src/cli/help/orchestrator.js';
import { routerHelp } from '../../src/cli/help/router.js';
import { defaultWorkers } from '../../src/cli/router-command.js';
import { shutdownGraceMs } from '../../src/orchestrator/orchestrator.js';

type Doc = { kind: string; metadata: { name: string }; spec: any; [key: string]: any };

function docsIn(dir: string): Doc[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml' && !f.endsWith('.example.yaml'))
    .flatMap((f) => parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => d.toJS() as Doc));
}

const BASE = 'deploy/kubernetes/base';
const SIM = 'deploy/kubernetes/overlays/simulation';
const base = docsIn(BASE);
const find = (docs: Doc[], kind: string, name: string) => docs.find((d) => d.kind === kind && d.metadata.name === name)!;
const envNames = (help: { flags: readonly { env?: string }[] }) => new Set(help.flags.flatMap((f) => (f.env === undefined ? [] : [f.env])));

/** A regions file as the router reads it, but for `$schema`, which names the schema from where each copy lies. */
function regionsWithoutSchema(file: string): Record<string, unknown> {
  const { $schema: _pointer, ...rest } = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  return rest;
}

describe('Kubernetes base', () => {
  const deployment = find(base, 'Deployment', 'edge-router');
  const pod = deployment.spec.template.spec;
  const router = pod.containers[0];
  const env = new Map<string, any>(router.env.map((e: any) => [e.name, e]));

  it('lists only files that exist, and ships the repository\'s regions.json unchanged', () => {
    const kustomization = parseAllDocuments(readFileSync(join(BASE, 'kustomization.yaml'), 'utf8'))[0]!.toJS();
    for (const file of kustomization.resources) expect(existsSync(join(BASE, file)), file).toBe(true);
    expect(regionsWithoutSchema(join(BASE, 'regions.json'))).toEqual(regionsWithoutSchema('regions.json'));
  });

  it('probes readiness and liveness on the admin listener and drains before the kubelet kills', () => {
    expect(router.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'admin' });
    expect(router.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'admin' });
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(Number(env.get('EDGE_DRAIN_TIMEOUT_MS').value) + 5_000);
  });

  it('keeps serving while kube-proxy and the load balancer take a terminating pod out, and the grace period covers that wait, the drain and the primary\'s margin', () => {
    // SIGTERM closes the listeners at once: without a wait before it, connections the load
    // balancer still sends to the node (it notices the pod gone only after its health checks) are refused.
    const command = router.lifecycle?.preStop?.exec?.command as string[] | undefined;
    expect(command?.[0], 'a preStop sleep').toBe('sleep');
    const waitMs = Number(command![1]) * 1000;
    expect(waitMs).toBeGreaterThanOrEqual(10_000);
    // The cluster primary gives its workers the drain timeout plus 5 s before SIGKILL (runRouter's stopTimeoutMs).
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(waitMs + Number(env.get('EDGE_DRAIN_TIMEOUT_MS').value) + 5_000);
  });

  it('leaves the replica count to the autoscaler: every `kubectl apply` would otherwise scale a grown fleet back down', () => {
    const hpa = find(base, 'HorizontalPodAutoscaler', 'edge-router');
    expect(hpa.spec.scaleTargetRef.name).toBe(deployment.metadata.name);
    expect(deployment.spec.replicas).toBeUndefined();
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
  });

  it('runs non-root on a read-only root with no capabilities, with requests and limits, spread across nodes', () => {
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(router.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(router.resources.requests.cpu).toBeDefined();
    expect(router.resources.limits).toMatchObject({ cpu: expect.anything(), memory: expect.anything() });
    expect(pod.topologySpreadConstraints.map((c: any) => c.topologyKey)).toContain('kubernetes.io/hostname');
    expect(pod.securityContext.sysctls).toContainEqual({ name: 'net.ipv4.tcp_notsent_lowat', value: '131072' });
  });

  it('gives the pod memory for every worker\'s HTTPS connections at their cap: an idle TLS connection holds ~60 KB', () => {
    // 512Mi held about 4,500 idle HTTP/2 connections across the pod's two workers, far below the
    // 10,000 each worker accepts: the container was OOM-killed, every connection on it lost, and the
    // CPU autoscaler never saw idle connections coming (found by review). Per worker, measured
    // (bench/RESULTS.md, idle connections): ~130 MB at rest, 53-61 KB an idle HTTP/2 connection.
    const WORKER_AT_REST = 130e6;
    const PER_IDLE_CONNECTION = 61e3;
    const PRIMARY = 80e6;
    const cpu = String(router.resources.limits.cpu);
    const cores = Math.ceil(cpu.endsWith('m') ? Number(cpu.slice(0, -1)) / 1000 : Number(cpu));
    const workers = defaultWorkers(cores);
    const capFlag = routerHelp.flags.find((f) => f.name === 'max-connections')!;
    const cap = Number(env.get('EDGE_MAX_CONNECTIONS')?.value ?? capFlag.default);
    const needed = PRIMARY + workers * (WORKER_AT_REST + cap * PER_IDLE_CONNECTION);
    const units: Record<string, number> = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 };
    const memory = String(router.resources.limits.memory);
    const limit = Number(memory.slice(0, -2)) * units[memory.slice(-2)]!;
    expect(Number.isFinite(limit) && limit >= needed, `memory limit ${memory} for ${workers} workers × ${cap} connections (needs ${(needed / 1e9).toFixed(2)} GB)`).toBe(true);
  });

  it('takes secrets from Secrets, the worker count from the CPU limit, and only settings the router reads', () => {
    // The admin token as a file of a mounted Secret, not a variable: a rotated Secret reaches the
    // running router (which reads the file again) only through a volume, and only a whole-directory
    // mount (a subPath mount is never updated).
    expect(env.has('EDGE_ADMIN_TOKEN')).toBe(false);
    const tokenFile = env.get('EDGE_ADMIN_TOKEN_FILE').value as string;
    const mount = router.volumeMounts.find((m: any) => tokenFile.startsWith(`${m.mountPath}/`));
    expect(mount).toMatchObject({ readOnly: true });
    expect(mount.subPath).toBeUndefined();
    const volume = pod.volumes.find((v: any) => v.name === mount.name);
    expect(volume.secret).toEqual({ secretName: 'edge-router-admin', items: [{ key: 'token', path: tokenFile.slice(mount.mountPath.length + 1) }] });
    expect(env.get('REDIS_URL').valueFrom.secretKeyRef).toEqual({ name: 'edge-router-redis', key: 'url' });
    expect(env.has('EDGE_WORKERS')).toBe(false);
    const known = envNames(routerHelp);
    for (const name of env.keys()) expect(known.has(name), name).toBe(true);
  });

  it('keeps client addresses on the public LoadBalancer and the admin listener off it', () => {
    const pub = find(base, 'Service', 'edge-router');
    expect(pub.spec).toMatchObject({ type: 'LoadBalancer', externalTrafficPolicy: 'Local' });
    expect(pub.spec.ports.map((p: any) => p.targetPort).sort()).toEqual(['http', 'https']);
    expect(find(base, 'Service', 'edge-router-admin').spec).toMatchObject({ type: 'ClusterIP', ports: [{ targetPort: 'admin' }] });
  });

  it("redirects plain HTTP to the LoadBalancer's HTTPS port, not the container's", () => {
    const pub = find(base, 'Service', 'edge-router');
    const httpsPort = pub.spec.ports.find((p: any) => p.targetPort === 'https').port;
    expect(env.get('EDGE_REDIRECT_PORT')?.value).toBe(String(httpsPort));
  });

  it('lets anyone reach the public ports and only pods or namespaces the operator labels reach the admin port', () => {
    const policy = find(base, 'NetworkPolicy', 'edge-router');
    expect(policy, 'a NetworkPolicy for the router').toBeDefined();
    // It selects the router's pods (a selector matching nothing would isolate nothing), for ingress only.
    const podLabels = deployment.spec.template.metadata.labels as Record<string, string>;
    expect(Object.entries(policy.spec.podSelector.matchLabels).every(([k, v]) => podLabels[k] === v)).toBe(true);
    expect(policy.spec.policyTypes).toEqual(['Ingress']);
    const declared = new Set((router.ports as { name: string }[]).map((p) => p.name));
    const rules = policy.spec.ingress as { ports: { port: string; protocol: string }[]; from?: Record<string, any>[] }[];
    for (const rule of rules) for (const p of rule.ports) expect(declared.has(p.port), `${p.port} is a port the router declares`).toBe(true);
    // Rules without `from` admit every source: exactly the public Service's ports.
    const open = rules.filter((r) => r.from === undefined).flatMap((r) => r.ports.map((p) => p.port)).sort();
    expect(open).toEqual(find(base, 'Service', 'edge-router').spec.ports.map((p: any) => p.targetPort).sort());
    // The admin Service's port, from the labelled only: no empty selector (everything) and no address block.
    const adminPort = find(base, 'Service', 'edge-router-admin').spec.ports[0].targetPort;
    const adminRules = rules.filter((r) => r.ports.some((p) => p.port === adminPort));
    expect(adminRules).toHaveLength(1);
    expect(adminRules[0]!.from).toEqual([
      { podSelector: { matchLabels: { 'edge-router/admin-access': 'true' } } },
      { namespaceSelector: { matchLabels: { 'edge-router/admin-access': 'true' } } },
    ]);
    // The label the README tells operators to set.
    expect(readFileSync('README.md', 'utf8')).toContain('edge-router/admin-access=true');
  });

  it('has a disruption budget and an autoscaler for the Deployment', () => {
    expect(find(base, 'PodDisruptionBudget', 'edge-router').spec.maxUnavailable).toBe(1);
    expect(find(base, 'HorizontalPodAutoscaler', 'edge-router').spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'edge-router' });
  });
});

describe('Kubernetes simulation overlay', () => {
  const sim = docsIn(SIM);
  const regions = JSON.parse(readFileSync('regions.compose.json', 'utf8')) as { regions: Array<{ id: string; orchestrators: string[] }> };

  it('ships regions.compose.json and runs one orchestrator Deployment and Service per region', () => {
    expect(regionsWithoutSchema(join(SIM, 'regions.simulation.json'))).toEqual(regionsWithoutSchema('regions.compose.json'));
    const known = envNames(orchestratorHelp);
    for (const region of regions.regions) {
      const host = new URL(region.orchestrators[0]!).hostname;
      const deployment = find(sim, 'Deployment', host);
      const env = new Map<string, any>(deployment.spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value]));
      expect(env.get('EDGE_REGION')).toBe(region.id);
      for (const name of env.keys()) expect(known.has(name), `${host}: ${name}`).toBe(true);
      expect(find(sim, 'Service', host).spec.ports[0].port).toBe(Number(new URL(region.orchestrators[0]!).port));
      // Killed before its drain ends, a region would cut the extended tier's requests.
      expect(deployment.spec.template.spec.terminationGracePeriodSeconds * 1000, host).toBeGreaterThan(shutdownGraceMs());
      // One pod a region: a new one beside the draining one would share its heartbeat (up, draining, up…).
      expect(deployment.spec, host).toMatchObject({ replicas: 1, strategy: { type: 'Recreate' } });
    }
    expect(sim.filter((d) => d.kind === 'Deployment' && d.metadata.name.startsWith('orchestrator-'))).toHaveLength(regions.regions.length);
  });

  it('keeps the admin token out of the repository', () => {
    const kustomization = parseAllDocuments(readFileSync(join(SIM, 'kustomization.yaml'), 'utf8'))[0]!.toJS();
    expect(kustomization.secretGenerator.find((g: any) => g.name === 'edge-router-admin').envs).toEqual(['admin-token.env']);
    expect(readFileSync('.gitignore', 'utf8')).toContain('deploy/kubernetes/overlays/*/admin-token.env');
  });
});
