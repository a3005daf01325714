/**
 * The kustomizations rendered by kustomize itself (`kubectl kustomize`, kustomize v4 or later),
 * and every object it produces validated against the Kubernetes API schemas, offline
 * (kubernetes-models). Then the wiring a schema cannot see: every probe and Service port names a
 * port the pod declares, and each declared port is the one the edge-router command listens on.
 */
import { execFile } from 'node:child_process';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as core from 'kubernetes-models/v1';
import * as apps from 'kubernetes-models/apps/v1';
import * as autoscaling from 'kubernetes-models/autoscaling/v2';
import * as policy from 'kubernetes-models/policy/v1';
import * as networking from 'kubernetes-models/networking.k8s.io/v1';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missingProgram } from '../support/system-program.js';

const run = promisify(execFile);
const KUBECTL_MISSING = missingProgram('kubectl', 'a kubectl of version 1.21 or later (it has kustomize v4+ built in), e.g. from https://kubernetes.io/docs/tasks/tools/');

type Obj = { apiVersion: string; kind: string; metadata: { name: string }; spec?: any; data?: Record<string, string> };
type Model = new (data: any) => { validate(): void };
const MODELS: Record<string, Record<string, Model>> = {
  v1: { ConfigMap: core.ConfigMap, Secret: core.Secret, Service: core.Service, PersistentVolumeClaim: core.PersistentVolumeClaim },
  'apps/v1': { Deployment: apps.Deployment, StatefulSet: apps.StatefulSet },
  'autoscaling/v2': { HorizontalPodAutoscaler: autoscaling.HorizontalPodAutoscaler },
  'policy/v1': { PodDisruptionBudget: policy.PodDisruptionBudget },
  'networking.k8s.io/v1': { NetworkPolicy: networking.NetworkPolicy },
};

describe.skipIf(KUBECTL_MISSING)('Kubernetes manifests, rendered by kustomize', () => {
  let dir = '';
  const rendered: Record<string, Obj[]> = {};

  beforeAll(async () => {
    // A copy, so the simulation overlay can get the token files every cluster makes for itself.
    dir = await mkdtemp(join(tmpdir(), 'edge-kustomize-'));
    await cp('deploy/kubernetes', join(dir, 'kubernetes'), { recursive: true });
    await writeFile(join(dir, 'kubernetes/overlays/simulation/admin-token.env'), 'token=0123456789abcdef0123456789abcdef\n');
    await writeFile(join(dir, 'kubernetes/overlays/simulation/prewarm-token.env'), 'token=fedcba9876543210fedcba9876543210\n');
    for (const [name, path] of [['base', 'kubernetes/base'], ['simulation', 'kubernetes/overlays/simulation']] as const) {
      const { stdout } = await run('kubectl', ['kustomize', join(dir, path)], { timeout: 30_000 });
      rendered[name] = parseAllDocuments(stdout).map((d) => d.toJS() as Obj);
    }
  }, 60_000);
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it.each(['base', 'simulation'])('%s: every object is valid against its Kubernetes schema', (name) => {
    const objects = rendered[name]!;
    expect(objects.length).toBeGreaterThan(3);
    for (const obj of objects) {
      const model = MODELS[obj.apiVersion]?.[obj.kind];
      expect(model, `${obj.apiVersion} ${obj.kind} has a schema here`).toBeDefined();
      expect(() => new model!(obj).validate(), `${obj.kind}/${obj.metadata.name}`).not.toThrow();
    }
  });

  it('base: the router, its two Services, network policy, budget, autoscaler and regions ConfigMap', () => {
    const kinds = rendered.base!.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    expect(kinds).toEqual(
      expect.arrayContaining(['Deployment/edge-router', 'Service/edge-router', 'Service/edge-router-admin', 'NetworkPolicy/edge-router', 'PodDisruptionBudget/edge-router', 'HorizontalPodAutoscaler/edge-router']),
    );
    expect(kinds.some((k) => k.startsWith('ConfigMap/edge-router-regions-'))).toBe(true); // name hashed by kustomize
  });

  it('simulation: starts on a laptop cluster\'s default kubelet (no unsafe sysctl); the base keeps tcp_notsent_lowat', () => {
    // The kubelet's safe set (Kubernetes 1.29+); any other sysctl makes a default kubelet refuse the pod (SysctlForbidden).
    const SAFE = new Set(['kernel.shm_rmid_forced', 'net.ipv4.ip_local_port_range', 'net.ipv4.tcp_syncookies', 'net.ipv4.ping_group_range', 'net.ipv4.ip_unprivileged_port_start', 'net.ipv4.ip_local_reserved_ports', 'net.ipv4.tcp_keepalive_time', 'net.ipv4.tcp_fin_timeout', 'net.ipv4.tcp_keepalive_intvl', 'net.ipv4.tcp_keepalive_probes']);
    const sysctls = (objects: Obj[]) =>
      objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet').flatMap((o) => ((o.spec.template.spec.securityContext?.sysctls ?? []) as { name: string }[]).map((s) => `${o.metadata.name}: ${s.name}`));
    expect(sysctls(rendered.simulation!).filter((s) => !SAFE.has(s.split(': ')[1]!))).toEqual([]);
    expect(sysctls(rendered.base!)).toContain('edge-router: net.ipv4.tcp_notsent_lowat');
  });

  it('simulation: the router and all five orchestrators read the pre-warm token from a file of one generated Secret; the base takes it, optional, from a variable', () => {
    // A file, not a variable: a variable's value shows in the container runtime's inspect output
    // and in the process's environment (found by review). The base keeps the variable only because
    // its Secret is optional there, and a token file named but missing stops the router.
    type Env = { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } } };
    type Container = { env?: Env[]; volumeMounts?: { name: string; mountPath: string; subPath?: string }[] };
    const workloads = (objects: Obj[]) => objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet');
    const secretOfFile = (o: Obj, c: Container, file: string) => {
      const mount = (c.volumeMounts ?? []).find((m) => file.startsWith(`${m.mountPath}/`));
      const volume = (o.spec.template.spec.volumes as { name: string; secret?: { secretName: string; items?: { key: string; path: string }[] } }[]).find((v) => v.name === mount?.name);
      const item = volume?.secret?.items?.find((i) => i.path === file.slice(mount!.mountPath.length + 1));
      return mount?.subPath === undefined && item !== undefined ? `${volume!.secret!.secretName}/${item.key}` : undefined;
    };
    const simulation = workloads(rendered.simulation!).flatMap((o) =>
      (o.spec.template.spec.containers as Container[]).filter((c) => (c.env ?? []).some((e) => e.name.startsWith('EDGE_PREWARM_TOKEN'))).map((c) => {
        const env = c.env!;
        expect(env.some((e) => e.name === 'EDGE_PREWARM_TOKEN'), o.metadata.name).toBe(false);
        return secretOfFile(o, c, env.find((e) => e.name === 'EDGE_PREWARM_TOKEN_FILE')!.value!);
      }),
    );
    expect(simulation).toHaveLength(6);
    expect(new Set(simulation).size).toBe(1);
    const [secretName, key] = simulation[0]!.split('/');
    const secret = rendered.simulation!.find((o) => o.kind === 'Secret' && o.metadata.name === secretName);
    expect(secret?.data?.[key!]).toBe(Buffer.from('fedcba9876543210fedcba9876543210').toString('base64'));
    const baseRefs = workloads(rendered.base!).flatMap((o) => (o.spec.template.spec.containers as Container[]).flatMap((c) => (c.env ?? []).filter((e) => e.name === 'EDGE_PREWARM_TOKEN')));
    expect(baseRefs.map((e) => e.valueFrom?.secretKeyRef)).toEqual([{ name: 'edge-router-prewarm', key: 'token', optional: true }]);
  });

  it.each(['base', 'simulation'])('%s: probes and Services name declared ports, and each port is the one the command listens on', (name) => {
    const objects = rendered[name]!;
    let servicePorts = 0;
    let policyPorts = 0;
    for (const deployment of objects.filter((o) => o.kind === 'Deployment')) {
      for (const c of deployment.spec.template.spec.containers as any[]) {
        const ports = new Map<string, number>((c.ports ?? []).map((p: any) => [p.name, p.containerPort]));
        for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe].filter(Boolean)) {
          if (probe.httpGet !== undefined) expect(ports.has(probe.httpGet.port), `${deployment.metadata.name}: probe port ${probe.httpGet.port}`).toBe(true);
        }
        const env = new Map<string, string>((c.env ?? []).filter((e: any) => e.value !== undefined).map((e: any) => [e.name, e.value]));
        const listens: Record<string, string | undefined> = c.args?.[0] === 'router'
          ? { https: env.get('EDGE_HTTPS_PORT') ?? '8443', http: env.get('EDGE_HTTP_PORT') ?? '8080', admin: env.get('EDGE_ADMIN_PORT') ?? '9090' }
          : c.args?.[0] === 'orchestrator' ? { http: env.get('EDGE_PORT') } : {};
        for (const [portName, port] of Object.entries(listens)) expect(String(ports.get(portName)), `${deployment.metadata.name}: ${portName}`).toBe(port);
        // Services select this pod and forward to a port it declares; network policies that select it open ports it declares.
        const labels = deployment.spec.template.metadata.labels as Record<string, string>;
        for (const np of objects.filter((o) => o.kind === 'NetworkPolicy' && Object.entries(o.spec.podSelector.matchLabels ?? {}).every(([k, v]) => labels[k] === v))) {
          for (const rule of np.spec.ingress as { ports: { port: string | number }[] }[]) {
            for (const p of rule.ports) expect(typeof p.port === 'number' || ports.has(p.port), `${np.metadata.name} → ${p.port}`).toBe(true);
            policyPorts++;
          }
        }
        for (const svc of objects.filter((o) => o.kind === 'Service' && Object.entries(o.spec.selector ?? {}).every(([k, v]) => labels[k] === v))) {
          for (const p of svc.spec.ports as any[]) {
            expect(typeof p.targetPort === 'number' || ports.has(p.targetPort), `${svc.metadata.name} → ${p.targetPort}`).toBe(true);
            servicePorts++;
          }
        }
      }
    }
    // The router's three Service ports at least: a selector that matched nothing would check nothing.
    expect(servicePorts).toBeGreaterThanOrEqual(3);
    expect(policyPorts, 'the router\'s network policy rules').toBeGreaterThanOrEqual(2);
  });
});
