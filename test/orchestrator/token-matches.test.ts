import { afterEach, describe, expect, it, vi } from 'vitest';

// timingSafeEqual wrapped to record what it is given: the point of the check is that it always
// runs, on inputs of one length, whatever the caller sent.
const compared = vi.hoisted(() => [] as Array<[number, number]>);
vi.mock('node:crypto', async (importOriginal) => {
  const crypto = await importOriginal<typeof import('node:crypto')>();
  return {
    ...crypto,
    timingSafeEqual: (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
      compared.push([a.byteLength, b.byteLength]);
      return crypto.timingSafeEqual(a, b);
    },
  };
});

const { tokenMatches } = await import('../../src/orchestrator/orchestrator.js');

const TOKEN = 'prewarm-token-0123456789';

describe('tokenMatches (the pre-warm token check)', () => {
  afterEach(() => {
    compared.length = 0;
  });

  it('takes the exact Authorization header only', () => {
    expect(tokenMatches(`Bearer ${TOKEN}`, TOKEN)).toBe(true);
    for (const header of [undefined, '', TOKEN, `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(1)}`, `bearer ${TOKEN}`, 'Bearer wrong-token-0123456789']) {
      expect(tokenMatches(header, TOKEN), String(header)).toBe(false);
    }
  });

  it('compares in constant time on equal-length digests, whatever the length sent, so timing tells nothing of the token length', () => {
    for (const header of [undefined, 'B', `Bearer ${TOKEN}`, `Bearer ${TOKEN}${'x'.repeat(1_000)}`]) tokenMatches(header, TOKEN);
    expect(compared).toEqual([[32, 32], [32, 32], [32, 32], [32, 32]]);
  });
});
