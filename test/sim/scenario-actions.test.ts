import { describe, expect, it } from 'vitest';
import { scheduleActions } from '../../src/sim/scenario-actions.js';

describe('scheduleActions', () => {
  it('starts the action of each second once it comes, and none for a second without one', async () => {
    const ran: number[] = [];
    const actions = scheduleActions({ 1: async () => void ran.push(1), 3: async () => void ran.push(3) });
    for (let second = 0; second < 5; second += 1) actions.onSecond(second);
    expect(await actions.settled()).toEqual([]);
    expect(ran).toEqual([1, 3]);
  });

  it('makes a failed action a failure of the run, with no unhandled rejection meanwhile', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const actions = scheduleActions({ 1: () => Promise.reject(new Error('fra did not start within 30 s')), 2: async () => undefined });
      actions.onSecond(1);
      actions.onSecond(2);
      // The load goes on a while before the actions are awaited: a rejection left alone meanwhile is unhandled.
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(actions.anyFailed()).toBe(true);
      expect(await actions.settled()).toEqual(['the scripted action at second 1 failed: fra did not start within 30 s']);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
