/**
 * What the setting does to the router is measured, not unit-tested: `npm run bench:hostile` under
 * the pipelining attack counts 10 full collections in a 10 s phase without it and 2 with it
 * (bench/RESULTS.md). A synthetic allocation loop does not reproduce V8's choice reliably.
 */
import { describe, expect, it } from 'vitest';
import { growHeapBeforeMarking } from '../../src/core/heap-growth.js';

describe('growHeapBeforeMarking', () => {
  it('applies itself unless node was given its own --heap-growing-percent', () => {
    expect(growHeapBeforeMarking([])).toBe(true);
    expect(growHeapBeforeMarking(['--max-old-space-size=512'])).toBe(true);
    expect(growHeapBeforeMarking(['--heap-growing-percent=50'])).toBe(false);
    expect(growHeapBeforeMarking(['--heap_growing_percent', '50'])).toBe(false);
  });
});
