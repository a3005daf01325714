/**
 * docker-compose.yml fixes its network's subnet (client addresses mean metros), so only one stack
 * of it can be up on an engine at a time. Before the compose test brings its own up, whatever
 * holds that subnet is dealt with here: a stack an earlier compose test left behind (its run was
 * killed before `down`) is removed, one a compose test running right now in another checkout is
 * waited for, and anything else stops the test with what holds the subnet and how to free it.
 * Without this, one interrupted run failed every later one with docker's "Pool overlaps with
 * other one on this address space".
 */
import { readFile } from 'node:fs/promises';
import { sh } from './docker.js';

/** A Docker network and the compose project that made it ('' when not compose's). */
export interface NetworkHolder {
  readonly name: string;
  readonly project: string;
}

export interface SubnetPlan {
  /** Left by a compose test whose process is gone: removed. */
  readonly remove: NetworkHolder[];
  /** A compose test that is still running: waited for. */
  readonly wait: NetworkHolder[];
  /** Anything else (the operator's own `docker-compose up`, another project): not ours to touch. */
  readonly blocked: NetworkHolder[];
}

/** The project name the compose test gives its stack: `edgecompose<pid>`. */
export const testProjectName = (pid: number): string => `edgecompose${pid}`;
const TEST_PROJECT = /^edgecompose(\d+)$/;

/** Pure: what to do about each network holding the subnet, given which test processes live. */
export function planSubnetClaim(holders: readonly NetworkHolder[], ownProject: string, testRuns: (pid: number) => boolean): SubnetPlan {
  const plan: SubnetPlan = { remove: [], wait: [], blocked: [] };
  for (const holder of holders) {
    const pid = TEST_PROJECT.exec(holder.project)?.[1];
    if (holder.project === ownProject || pid === undefined) plan.blocked.push(holder);
    else if (testRuns(Number(pid))) plan.wait.push(holder);
    else plan.remove.push(holder);
  }
  return plan;
}

/** The subnet of the compose file's network (the first `subnet:` line). */
export async function composeSubnet(composeFile: string): Promise<string> {
  const match = /^\s*-?\s*subnet:\s*(\S+)\s*$/m.exec(await readFile(composeFile, 'utf8'));
  if (match === null) throw new Error(`${composeFile}: no 'subnet:' under the network's ipam config`);
  return match[1]!;
}

/** Networks on this engine with `subnet` in their IPAM config. */
async function holdersOf(subnet: string): Promise<NetworkHolder[]> {
  const ids = (await sh('docker', ['network', 'ls', '-q'])).split('\n').filter(Boolean);
  if (ids.length === 0) return [];
  const format = '{{.Name}}\t{{index .Labels "com.docker.compose.project"}}\t{{range .IPAM.Config}}{{.Subnet}} {{end}}';
  const lines = (await sh('docker', ['network', 'inspect', '--format', format, ...ids])).split('\n').filter(Boolean);
  return lines
    .map((line) => line.split('\t'))
    .filter(([, , subnets]) => (subnets ?? '').split(' ').includes(subnet))
    .map(([name, project]) => ({ name: name!, project: project ?? '' }));
}

/** A live process that is a Node test run (a reused pid is some other program). */
async function isTestProcess(pid: number): Promise<boolean> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'latin1')).includes('node');
  } catch {
    return false;
  }
}

/** Containers, networks and volumes of a compose project, by compose's own labels. */
async function removeProject(project: string): Promise<void> {
  const filter = `label=com.docker.compose.project=${project}`;
  const containers = (await sh('docker', ['ps', '-aq', '--filter', filter])).split('\n').filter(Boolean);
  if (containers.length > 0) await sh('docker', ['rm', '-f', '-v', ...containers], { timeoutMs: 120_000 });
  const networks = (await sh('docker', ['network', 'ls', '-q', '--filter', filter])).split('\n').filter(Boolean);
  if (networks.length > 0) await sh('docker', ['network', 'rm', ...networks]);
  const volumes = (await sh('docker', ['volume', 'ls', '-q', '--filter', filter])).split('\n').filter(Boolean);
  if (volumes.length > 0) await sh('docker', ['volume', 'rm', '-f', ...volumes]);
}

/**
 * Makes `subnet` free for `ownProject`: removes leftovers, waits (up to `waitMs`) for a compose
 * test running elsewhere, and throws, naming the network and the way to free it, when something
 * else holds it.
 */
export async function claimComposeSubnet(subnet: string, ownProject: string, waitMs: number): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const holders = await holdersOf(subnet);
    const live = new Map<number, boolean>();
    for (const h of holders) {
      const pid = Number(TEST_PROJECT.exec(h.project)?.[1]);
      if (Number.isInteger(pid)) live.set(pid, await isTestProcess(pid));
    }
    const plan = planSubnetClaim(holders, ownProject, (pid) => live.get(pid) === true);
    if (plan.blocked.length > 0) {
      const list = plan.blocked.map((h) => (h.project === '' ? `network ${h.name}` : `network ${h.name} (compose project ${h.project}: docker-compose -p ${h.project} down)`));
      throw new Error(`docker-compose.yml's network needs ${subnet}, which ${list.join(', ')} holds: stop it (or docker network rm it) and run the test again`);
    }
    for (const h of plan.remove) {
      console.warn(`compose: removing ${h.project}, left on ${subnet} by a compose test that is no longer running`);
      await removeProject(h.project);
    }
    if (plan.wait.length === 0) return;
    if (Date.now() > deadline) {
      throw new Error(`docker-compose.yml's network needs ${subnet}: the compose test running as ${plan.wait.map((h) => h.project).join(', ')} still holds it after ${waitMs / 1000} s`);
    }
    console.warn(`compose: waiting for ${plan.wait.map((h) => h.project).join(', ')} (another compose test) to free ${subnet}`);
    await new Promise((r) => setTimeout(r, 5_000));
  }
}
