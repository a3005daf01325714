import { afterEach, describe, expect, it } from 'vitest';
import { envInt, envNumber } from '../../bench/env-int.js';

const NAME = 'EDGE_TEST_BENCH_KNOB';
afterEach(() => {
  delete process.env[NAME];
});

describe('envNumber', () => {
  it('takes the default when unset or empty, and a number in range as given', () => {
    expect(envNumber(NAME, 0.5, 0, 64)).toBe(0.5);
    process.env[NAME] = '';
    expect(envNumber(NAME, 0.5, 0, 64)).toBe(0.5);
    process.env[NAME] = '1.5';
    expect(envNumber(NAME, 0.5, 0, 64)).toBe(1.5);
  });

  it.each(['1,5', 'high', 'NaN', 'Infinity', '-1', '65'])('refuses %j, naming the setting (a NaN limit let any load through)', (raw) => {
    process.env[NAME] = raw;
    expect(() => envNumber(NAME, 0.5, 0, 64)).toThrow(`${NAME}: expected a number in [0, 64], got "${raw}"`);
  });
});

describe('envInt', () => {
  it('refuses a fraction', () => {
    process.env[NAME] = '2.5';
    expect(() => envInt(NAME, 3, 1, 20)).toThrow(`${NAME}: expected an integer in [1, 20], got "2.5"`);
  });
});
