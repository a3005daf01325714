import { describe, expect, it } from 'vitest';
import { InFlight } from '../../src/ingress/in-flight.js';

describe('InFlight', () => {
  it('is idle at once with nothing in progress', async () => {
    expect(await new InFlight().idle(10)).toBe(true);
  });

  it('wakes the drain when the last request leaves, not before', async () => {
    const inFlight = new InFlight();
    inFlight.enter();
    inFlight.enter();
    let idle: boolean | undefined;
    const waiting = inFlight.idle(5_000).then((v) => (idle = v));
    inFlight.leave();
    await Promise.resolve();
    expect(idle).toBeUndefined();
    inFlight.leave();
    expect(await waiting).toBe(true);
    expect(inFlight.count).toBe(0);
  });

  it('gives up when the time runs out, and a late finish wakes nobody', async () => {
    const inFlight = new InFlight();
    inFlight.enter();
    expect(await inFlight.idle(20)).toBe(false);
    expect(() => inFlight.leave()).not.toThrow();
  });
});
