import { describe, expect, it } from 'vitest';
import { timeUnstalled } from './time-unstalled.js';

/** Holds this process's event loop for `ms`, as a descheduled process would find it held. */
const holdLoop = (ms: number) => {
  const until = performance.now() + ms;
  while (performance.now() < until);
};
const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe('timeUnstalled', () => {
  it('times a change once when the loop kept turning', async () => {
    let resets = 0;
    const ms = await timeUnstalled(() => pause(30), async () => void resets++, { stallMs: 1_000 });
    expect(ms).toBeGreaterThanOrEqual(25);
    expect(resets).toBe(0);
  });

  it('undoes and times again a change during which the loop itself was held up', async () => {
    const log: string[] = [];
    let attempt = 0;
    const ms = await timeUnstalled(
      async () => {
        log.push('change');
        await pause(20);
        if (attempt++ === 0) holdLoop(800);
        await pause(20);
      },
      async () => void log.push('reset'),
      { stallMs: 300 },
    );
    // (A loaded machine may stall a later attempt too, and add another reset and change.)
    expect(log.slice(0, 3)).toEqual(['change', 'reset', 'change']);
    expect(ms).toBeLessThan(800);
  });

  it('gives the last timing when every attempt stalled, so a change that always holds the loop still meets its bound or fails it', async () => {
    let changes = 0;
    const ms = await timeUnstalled(
      async () => {
        changes++;
        await pause(20);
        holdLoop(300);
        await pause(20);
      },
      async () => undefined,
      { stallMs: 150, attempts: 3 },
    );
    expect(changes).toBe(3);
    expect(ms).toBeGreaterThanOrEqual(300);
  });
});
