import { afterEach, describe, expect, it, vi } from 'vitest';
import { throttle } from '../../src/core/throttle.js';

describe('throttle', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('passes the first call and then at most one per interval', async () => {
    const calls: number[] = [];
    const warn = throttle(40, (n: number) => calls.push(n));
    warn(1);
    warn(2);
    expect(calls).toEqual([1]);
    await new Promise((r) => setTimeout(r, 60));
    warn(3);
    warn(4);
    expect(calls).toEqual([1, 3]);
  });

  it('is not silenced by a step of the system clock back', async () => {
    const calls: number[] = [];
    const warn = throttle(40, (n: number) => calls.push(n));
    warn(1);
    // An NTP step back by an hour: on Date.now() the next call was refused for that hour.
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() - 3_600_000);
    await new Promise((r) => setTimeout(r, 60));
    warn(2);
    expect(calls).toEqual([1, 2]);
  });
});
