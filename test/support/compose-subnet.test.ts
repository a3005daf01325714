import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { composeSubnet, planSubnetClaim, testProjectName } from './compose-subnet.js';
import { COMPOSE_CLIENT_METROS } from '../../src/sim/client-metros.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('planSubnetClaim', () => {
  const own = testProjectName(100);
  const running = new Set([200]);
  const plan = (holders: Array<{ name: string; project: string }>) => planSubnetClaim(holders, own, (pid) => running.has(pid));

  it('removes what a compose test that no longer runs left behind', () => {
    expect(plan([{ name: 'edgecompose300_edge', project: 'edgecompose300' }])).toEqual({ remove: [{ name: 'edgecompose300_edge', project: 'edgecompose300' }], wait: [], blocked: [] });
  });

  it('waits for a compose test that still runs', () => {
    expect(plan([{ name: 'edgecompose200_edge', project: 'edgecompose200' }])).toEqual({ remove: [], wait: [{ name: 'edgecompose200_edge', project: 'edgecompose200' }], blocked: [] });
  });

  it("leaves anything else alone: the operator's own stack, a network compose did not make", () => {
    const holders = [
      { name: 'main_edge', project: 'main' },
      { name: 'handmade', project: '' },
      { name: 'edgecompose-x_edge', project: 'edgecompose-x' },
    ];
    expect(plan(holders)).toEqual({ remove: [], wait: [], blocked: holders });
  });

  it('sorts a mixed list', () => {
    const result = plan([
      { name: 'a', project: 'edgecompose300' },
      { name: 'b', project: 'edgecompose200' },
      { name: 'c', project: 'other' },
    ]);
    expect([result.remove.map((h) => h.name), result.wait.map((h) => h.name), result.blocked.map((h) => h.name)]).toEqual([['a'], ['b'], ['c']]);
  });
});

describe('composeSubnet', () => {
  it("reads docker-compose.yml's network subnet, the one the compose metros live in", async () => {
    const subnet = await composeSubnet(join(ROOT, 'docker-compose.yml'));
    expect(subnet).toMatch(/^\d+\.\d+\.0\.0\/16$/);
    const prefix = subnet.split('.').slice(0, 2).join('.');
    for (const metro of COMPOSE_CLIENT_METROS) expect(metro.subnet.startsWith(`${prefix}.`), metro.id).toBe(true);
  });
});
