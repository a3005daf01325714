import { describe, expect, it } from 'vitest';
import { describeError } from '../../src/core/errors.js';
import { HUNG_AFTER_ENV, HUNG_AFTER_MS, hungAfterMs, START_DEADLINE_ENV, START_DEADLINE_MS, startDeadlineMs } from '../../src/cluster/hang-threshold.js';

describe('hungAfterMs', () => {
  it('is 20 s unless the test-only variable is set', () => {
    expect(HUNG_AFTER_MS).toBe(20_000);
    expect(hungAfterMs({})).toBe(20_000);
    expect(hungAfterMs({ [HUNG_AFTER_ENV]: '' })).toBe(20_000);
  });

  it('takes a whole number of milliseconds from the variable', () => {
    expect(hungAfterMs({ [HUNG_AFTER_ENV]: '6000' })).toBe(6_000);
    expect(hungAfterMs({ [HUNG_AFTER_ENV]: '4000' })).toBe(4_000);
  });

  it('refuses a value a working worker could not meet, or that is no whole number, naming the variable', () => {
    for (const text of ['3999', '0', '-6000', '6e3', '6000.5', 'six seconds', ' 6000']) {
      expect(() => hungAfterMs({ [HUNG_AFTER_ENV]: text }), text).toThrow(new RegExp(`^${HUNG_AFTER_ENV} must be a whole number of milliseconds, at least 4000`));
    }
    // A configuration error: the CLI prints it as one line and exits 2 (a plain Error printed its stack, exit 1).
    let thrown: unknown;
    try {
      hungAfterMs({ [HUNG_AFTER_ENV]: '5s' });
    } catch (err) {
      thrown = err;
    }
    expect(describeError(thrown)).toMatchObject({ code: 'configuration', exitCode: 2 });
  });

  it('only shortens the threshold: a longer one (a huge number reads as Infinity) would turn the hung-worker kill off in a router it leaked into', () => {
    expect(hungAfterMs({ [HUNG_AFTER_ENV]: String(HUNG_AFTER_MS) })).toBe(HUNG_AFTER_MS);
    for (const text of [String(HUNG_AFTER_MS + 1), '86400000', '9'.repeat(400)]) {
      expect(() => hungAfterMs({ [HUNG_AFTER_ENV]: text }), text).toThrow(new RegExp(`^${HUNG_AFTER_ENV} must be a whole number of milliseconds, at least 4000 and at most 20000`));
    }
  });
});

describe('startDeadlineMs', () => {
  it('is 60 s unless its own test-only variable shortens it (the hang threshold does not)', () => {
    expect([START_DEADLINE_MS, startDeadlineMs({}), startDeadlineMs({ [HUNG_AFTER_ENV]: '4000' }), startDeadlineMs({ [START_DEADLINE_ENV]: '20000' })]).toEqual([60_000, 60_000, 60_000, 20_000]);
  });

  it('refuses what a busy start could not meet, what would lengthen it, and what is no whole number', () => {
    for (const text of ['9999', '60001', '9'.repeat(400), '2e4']) {
      expect(() => startDeadlineMs({ [START_DEADLINE_ENV]: text }), text).toThrow(new RegExp(`^${START_DEADLINE_ENV} must be a whole number of milliseconds, at least 10000 and at most 60000`));
    }
  });
});
