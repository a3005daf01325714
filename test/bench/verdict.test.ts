import { afterEach, describe, expect, it, vi } from 'vitest';
import { median, RunFailures, voidedByDrift } from '../../bench/verdict.js';

afterEach(() => {
  vi.restoreAllMocks();
  process.exitCode = undefined;
});

describe('the benchmarks\' verdict', () => {
  it('takes the median of an odd and of an even number of values, unsorted', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it('collects non-2xx answers and socket errors by run, and fails the process when it reports any', () => {
    const lines: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((line: string) => void lines.push(line));
    const failures = new RunFailures();
    failures.check('round 1 router', { non2xx: 0, requests: 10, socketErrors: 0, socketDetail: '' });
    failures.report();
    expect(lines).toEqual([]);
    expect(process.exitCode).toBeUndefined();
    failures.check('round 2 router', { non2xx: 3, requests: 10, socketErrors: 1, socketDetail: 'Socket errors: connect 0, read 1, write 0, timeout 0' });
    failures.add('idle: 2 connections failed');
    failures.report();
    expect(lines.join('\n')).toContain('FAILURES (3)');
    expect(lines).toEqual(expect.arrayContaining(['  round 2 router: 3 non-2xx responses of 10', '  round 2 router: Socket errors: connect 0, read 1, write 0, timeout 0', '  idle: 2 connections failed']));
    expect(process.exitCode).toBe(1);
  });

  it('voids a run whose origin calibration moved more than 15 % either way, saying so', () => {
    const lines: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((line: string) => void lines.push(line));
    expect(voidedByDrift(0.15)).toBe(false);
    expect(voidedByDrift(-0.1)).toBe(false);
    expect(process.exitCode).toBeUndefined();
    expect(voidedByDrift(-0.2)).toBe(true);
    expect(lines.join('\n')).toMatch(/NOT REPORTED: the origin alone moved by -20 %/);
    expect(process.exitCode).toBe(1);
  });
});
