import { describe, expect, it, vi } from 'vitest';
import { latestValue } from '../../src/dashboard/latest-value.js';

/** A refresh the test answers by hand, counting how often it was started. */
function manualSource<T>() {
  const answers: Array<{ resolve: (value: T) => void; reject: (err: Error) => void }> = [];
  const refresh = () => new Promise<T>((resolve, reject) => answers.push({ resolve, reject }));
  return { refresh, answers };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('latestValue', () => {
  it('answers at once with the last value read, never waiting for a read', async () => {
    let now = 0;
    const source = manualSource<string>();
    const latest = latestValue(1_000, source.refresh, () => now);
    expect(latest()).toBeUndefined();
    source.answers[0]!.resolve('a');
    await settle();
    expect(latest()).toBe('a');
    now = 1_000;
    expect(latest()).toBe('a'); // a new read started; the old value until it comes
    source.answers[1]!.resolve('b');
    await settle();
    expect(latest()).toBe('b');
  });

  it('starts at most one read per period, and none while one is pending however long it takes', async () => {
    let now = 0;
    const source = manualSource<string>();
    const latest = latestValue(1_000, source.refresh, () => now);
    for (now = 0; now <= 5_000; now += 250) latest();
    expect(source.answers).toHaveLength(1);
    source.answers[0]!.resolve('late');
    await settle();
    now += 1;
    expect(latest()).toBe('late');
    expect(source.answers).toHaveLength(2);
  });

  it('reads again on its period when the wall clock steps back (NTP, a VM resumed)', async () => {
    // Timed on Date.now(), a step back made every age negative: the dashboard's regions and events froze for as long as the step.
    let reads = 0;
    const wallClock = Date.now.bind(Date);
    let step = 0;
    const stepped = vi.spyOn(Date, 'now').mockImplementation(() => wallClock() + step);
    try {
      const latest = latestValue(20, async () => ++reads);
      latest();
      await settle();
      step = -3_600_000;
      await new Promise((resolve) => setTimeout(resolve, 40));
      latest();
      await settle();
      expect(reads).toBe(2);
    } finally {
      stepped.mockRestore();
    }
  });

  it('keeps the last value when a read fails', async () => {
    let now = 0;
    const source = manualSource<string>();
    const latest = latestValue(1_000, source.refresh, () => now);
    latest();
    source.answers[0]!.resolve('kept');
    await settle();
    now = 1_000;
    latest();
    source.answers[1]!.reject(new Error('registry unreachable'));
    await settle();
    expect(latest()).toBe('kept');
  });
});
