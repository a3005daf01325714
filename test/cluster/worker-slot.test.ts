import { describe, expect, it } from 'vitest';
import { workerSlotEnv, workerSlotFrom } from '../../src/cluster/worker-slot.js';

describe('worker slots', () => {
  it('round-trips through the environment a worker is forked with', () => {
    expect(workerSlotFrom(workerSlotEnv(1, 4))).toEqual({ slot: 1, of: 4 });
  });

  it.each<[string, NodeJS.ProcessEnv]>([
    ['not a worker', {}],
    ['a slot out of range', { EDGE_WORKER_SLOT: '4', EDGE_WORKER_COUNT: '4' }],
    ['a cluster of one', { EDGE_WORKER_SLOT: '0', EDGE_WORKER_COUNT: '1' }],
    ['not a number', { EDGE_WORKER_SLOT: 'x', EDGE_WORKER_COUNT: '2' }],
  ])('gives no slot for %s', (_what, env) => {
    expect(workerSlotFrom(env)).toBeUndefined();
  });
});
