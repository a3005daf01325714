import { describe, expect, it } from 'vitest';
import { judgeGeneration, newGeneration } from '../../src/registry/generation.js';

describe('judgeGeneration', () => {
  it.each([
    [null, null, { kind: 'unstamped' }],
    [null, 'g1', { kind: 'adopt', generation: 'g1' }],
    ['g1', 'g1', { kind: 'same' }],
    ['g1', null, { kind: 'lost', generation: 'g1' }],
    ['g1', 'import:g2', { kind: 'replaced', from: 'g1', to: 'import:g2' }],
    // Someone stamped the registry afresh after it lost g1: still a loss to this router.
    ['g1', 'seed:g2', { kind: 'lost', generation: 'g1' }],
    ['seed:g1', 'seed:g1', { kind: 'same' }],
  ] as const)('known %j, read %j → %j', (known, read, verdict) => {
    expect(judgeGeneration(known, read)).toEqual(verdict);
  });
});

describe('newGeneration', () => {
  it('says how and when it was made and differs every time', () => {
    const a = newGeneration('seed', Date.UTC(2026, 11, 1, 12));
    expect(a).toMatch(/^seed:2026-12-01T12:00:00\.000Z\/[0-9a-f]{8}$/);
    expect(newGeneration('seed', Date.UTC(2026, 11, 1, 12))).not.toBe(a);
    expect(newGeneration('import')).toMatch(/^import:/);
  });
});
