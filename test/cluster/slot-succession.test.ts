import { describe, expect, it } from 'vitest';
import { SlotSuccession } from '../../src/cluster/slot-succession.js';

describe('slot succession: when a slot of the cluster is refilled', () => {
  it('refills a slot when its worker begins to drain, and not again when that worker exits', () => {
    const slots = new SlotSuccession<string>();
    slots.forked(0, 'a');
    expect(slots.drainBegan(0, 'a')).toBe(true);
    expect(slots.drainBegan(0, 'a')).toBe(false); // said twice: one refill
    slots.forked(0, 'b');
    expect(slots.exited(0, 'a')).toBeUndefined();
  });

  it('refills a slot whose worker dies without draining (killed), as before', () => {
    const slots = new SlotSuccession<string>();
    slots.forked(0, 'a');
    slots.forked(1, 'x');
    expect(slots.exited(0, 'a')).toBe('a');
    expect(slots.exited(0, 'a')).toBeUndefined();
    expect(slots.exited(1, 'y')).toBeUndefined(); // not the slot's worker
  });

  it('keeps at most one draining predecessor per slot: a successor that drains meanwhile is refilled once one of them exits', () => {
    const slots = new SlotSuccession<string>();
    slots.forked(0, 'a');
    expect(slots.drainBegan(0, 'a')).toBe(true);
    slots.forked(0, 'b');
    // b faults too while a still drains (a request of death): no third worker for the slot yet.
    expect(slots.drainBegan(0, 'b')).toBe(false);
    // a's drain ends: b takes the draining place and the slot is refilled, in b's place (a's exit
    // is no death; b's is what its backoff counts).
    expect(slots.exited(0, 'a')).toBe('b');
    slots.forked(0, 'c');
    expect(slots.exited(0, 'b')).toBeUndefined();
    expect(slots.drainBegan(0, 'c')).toBe(true);
  });

  it('refills at once when the draining successor exits before its predecessor', () => {
    const slots = new SlotSuccession<string>();
    slots.forked(0, 'a');
    slots.drainBegan(0, 'a');
    slots.forked(0, 'b');
    slots.drainBegan(0, 'b');
    expect(slots.exited(0, 'b')).toBe('b');
    slots.forked(0, 'c');
    expect(slots.exited(0, 'a')).toBeUndefined();
    expect(slots.drainBegan(0, 'c')).toBe(true);
  });

  it('does not refill for a worker that drains before it was ever its slot’s (a stale notice)', () => {
    const slots = new SlotSuccession<string>();
    slots.forked(0, 'b');
    expect(slots.drainBegan(0, 'a')).toBe(false);
  });
});
