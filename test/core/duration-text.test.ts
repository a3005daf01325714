import { describe, expect, it } from 'vitest';
import { millisecondsText2, millisecondsText3 } from '../../src/core/duration-text.js';

describe('duration text', () => {
  it.each([
    [0, '0.00', '0.000'],
    [2, '2.00', '2.000'],
    [12.3456, '12.35', '12.346'],
    [0.0041, '0.00', '0.004'],
    [999.999, '1000.00', '999.999'],
    [30_000.25, '30000.25', '30000.250'],
    // Either side of the fast path's limit (2^31 - 1 units): microseconds for three decimals, hundredths for two.
    [2_147_483.647, '2147483.65', '2147483.647'],
    [2_147_483.648, '2147483.65', '2147483.648'],
    [21_474_836.47, '21474836.47', '21474836.470'],
    [21_474_836.48, '21474836.48', '21474836.480'],
  ])('%d → %s, %s', (value, two, three) => {
    expect(millisecondsText2(value)).toBe(two);
    expect(millisecondsText3(value)).toBe(three);
  });

  it('reads as toFixed does, away from exact halves', () => {
    // A fixed sequence of durations from a microsecond to a minute (no Math.random: a failure repeats).
    // Park and Miller's generator: its products stay exact in a double.
    let seed = 12345;
    const next = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
    let compared = 0;
    for (let i = 0; i < 20_000; i++) {
      const value = 10 ** (next() * 7.8 - 3);
      for (const [digits, text] of [
        [2, millisecondsText2],
        [3, millisecondsText3],
      ] as const) {
        const scaled = value * 10 ** digits;
        if (Math.abs(scaled - Math.floor(scaled) - 0.5) < 1e-6) continue; // a half: the two may round apart
        expect(text(value), `${value}`).toBe(value.toFixed(digits));
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(39_000);
  });

  it('falls back to toFixed for what the fast path cannot hold', () => {
    expect(millisecondsText2(-1.5)).toBe('-1.50');
    expect(millisecondsText3(-0.25)).toBe('-0.250');
    expect(millisecondsText2(Number.NaN)).toBe('NaN');
    expect(millisecondsText2(3e7)).toBe('30000000.00');
    expect(millisecondsText3(3e7)).toBe('30000000.000'); // past the fast path's 2^31 microseconds
  });
});
