import { describe, expect, it } from 'vitest';
import { judgeGeneration, newGeneration } from '../../src/registry/generation.js';

describe('judgeGeneration', () => {
  it.each([
    [null, null, { kind: 'unstamped' }],
    [null, 'g1', { kind: 'adopt', generation: 'g1' }],
    ['g1', 'g1', { kind: 'same' }],
    ['g1', null, { kind: 'lost', generation: 'g1' }],
    ['g1', 'g2', { kind: 'replaced', from: 'g1', to: 'g2' }],
  ] as const)('known %j, read %j → %j', (known, read, verdict) => {
    expect(judgeGeneration(known, read)).toEqual(verdict);
  });
});

describe('newGeneration', () => {
  it('says when it was made and differs every time', () => {
    const a = newGeneration(Date.UTC(2026, 11, 1, 12));
    expect(a).toMatch(/^2026-12-01T12:00:00\.000Z\/[0-9a-f]{8}$/);
    expect(newGeneration(Date.UTC(2026, 11, 1, 12))).not.toBe(a);
  });
});
