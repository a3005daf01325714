import { describe, expect, it, vi } from 'vitest';
import { isTicketKey, newTicketKey, nextTicketRing, TICKET_KEY_BYTES, type TicketKeyRing } from '../../../src/core/ticket-key-ring.js';
import { ticketKeyFingerprint, TicketKeySync } from '../../../src/ingress/certificates/ticket-keys.js';

describe('the ticket-key rule', () => {
  const ring: TicketKeyRing = { current: 'A', previous: null, next: null, createdAt: 1_000 };
  const staged: TicketKeyRing = { ...ring, next: 'B' };

  it('stores the first offer, stages the next one, keeps a ring younger than the period', () => {
    expect(nextTicketRing(null, 'A', 1_000, 60_000)).toEqual(ring);
    expect(nextTicketRing(ring, 'B', 2_000, 60_000)).toEqual(staged);
    expect(nextTicketRing(staged, 'C', 60_999, 60_000)).toBe(staged);
  });

  it('rotates an older ring: the staged key becomes current, the offer is staged, the old current kept as previous', () => {
    expect(nextTicketRing(staged, 'C', 61_000, 60_000)).toEqual({ current: 'B', previous: 'A', next: 'C', createdAt: 61_000 });
    // Nothing staged (a ring stored before staging existed): the offer becomes current at once.
    expect(nextTicketRing(ring, 'B', 61_000, 60_000)).toEqual({ current: 'B', previous: 'A', next: null, createdAt: 61_000 });
  });

  it('rebases a ring stamped later than the clock reads (a clock stepped back): neither kept until the clock catches up nor rotated onto a key just staged', () => {
    // Rotating here would seal with B, which other routers may not have read yet.
    const behind = nextTicketRing(staged, 'C', 500, 60_000);
    expect(behind).toEqual({ ...staged, createdAt: 500 });
    // A period later by the clock as it reads now (not hours later, when it catches up), B takes over.
    expect(nextTicketRing(behind, 'C', 60_499, 60_000)).toBe(behind);
    expect(nextTicketRing(behind, 'C', 60_500, 60_000)).toEqual({ current: 'B', previous: 'A', next: 'C', createdAt: 60_500 });
    // With nothing staged, the offer is staged as at any other time.
    expect(nextTicketRing(ring, 'C', 500, 60_000)).toEqual({ ...ring, next: 'C', createdAt: 500 });
  });

  it('makes 48-byte keys, recognises only those, and names them without revealing them', () => {
    const key = newTicketKey();
    expect(Buffer.from(key, 'base64')).toHaveLength(TICKET_KEY_BYTES);
    expect(isTicketKey(key)).toBe(true);
    expect(isTicketKey(Buffer.alloc(32).toString('base64'))).toBe(false);
    expect(isTicketKey('not base64!')).toBe(false);
    expect(isTicketKey(42)).toBe(false);
    expect(newTicketKey()).not.toBe(key);
    const fingerprint = ticketKeyFingerprint(key);
    expect(fingerprint).toMatch(/^[0-9a-f]{12}$/);
    expect(key).not.toContain(fingerprint);
  });
});

describe('TicketKeySync', () => {
  function registry(answers: Array<TicketKeyRing | Error>) {
    const offers: string[] = [];
    return {
      offers,
      async shareTicketKeys(fresh: string): Promise<TicketKeyRing> {
        offers.push(fresh);
        const next = answers.shift();
        if (next === undefined) throw new Error('no more answers');
        if (next instanceof Error) throw next;
        return next;
      },
    };
  }

  /** A sync on `source` (1 s keys, looked at by hand, on `now` if given) that records what it applies, logs and reports. */
  function recordingSync(source: ReturnType<typeof registry>, now?: () => number) {
    const applied: string[][] = [];
    const changes: string[] = [];
    const errors: string[] = [];
    const sealedLocally: number[] = [];
    const sync = new TicketKeySync({
      registry: source,
      rotateEveryMs: 1_000,
      checkEveryMs: 60_000,
      // [current, next, previous] as base64, '-' for none.
      apply: (keys) => applied.push([keys.current, keys.next, keys.previous].map((k) => k?.toString('base64') ?? '-')),
      onChange: (fingerprint) => changes.push(fingerprint),
      onError: (err) => errors.push(err.message),
      onSealingLocally: (unreadForMs) => sealedLocally.push(unreadForMs),
      ...(now === undefined ? {} : { now }),
    });
    return { sync, applied, changes, errors, sealedLocally };
  }

  it('installs the registry keys, only when they change, and keeps them through registry failures', async () => {
    const [k1, k2, k3] = [newTicketKey(), newTicketKey(), newTicketKey()];
    const source = registry([
      new Error('registry unreachable'),
      { current: k1, previous: null, next: null, createdAt: 1 },
      { current: k1, previous: null, next: null, createdAt: 1 },
      new Error('registry unreachable'),
      { current: k1, previous: null, next: k2, createdAt: 1 },
      { current: k2, previous: k1, next: k3, createdAt: 2 },
      { current: 'garbage', previous: null, next: null, createdAt: 3 },
    ]);
    const { sync, applied, changes, errors } = recordingSync(source);
    await sync.check();
    expect(sync.fingerprint).toBeNull(); // Node's own key stays until the registry answers
    await sync.check();
    await sync.check();
    await sync.check();
    expect(applied).toEqual([[k1, '-', '-']]);
    expect(sync.fingerprint).toBe(ticketKeyFingerprint(k1));
    await sync.check();
    // A staged key is installed for opening at once; the current key (and the log line) stay.
    expect(applied).toEqual([[k1, '-', '-'], [k1, k2, '-']]);
    expect(changes).toEqual([ticketKeyFingerprint(k1)]);
    await sync.check();
    await sync.check();
    // After the rotation the staged key seals, the previous one still opens, the next is staged.
    expect(applied).toEqual([[k1, '-', '-'], [k1, k2, '-'], [k2, k3, k1]]);
    expect(changes).toEqual([ticketKeyFingerprint(k1), ticketKeyFingerprint(k2)]);
    expect(errors).toEqual(['registry unreachable', 'registry unreachable', 'the registry holds a malformed TLS ticket key']);
    expect(sync.fingerprint).toBe(ticketKeyFingerprint(k2));
    // Every look offers a fresh key of its own (used only if it becomes the staged one).
    expect(new Set(source.offers).size).toBe(source.offers.length);
  });

  it('seals with a key of its own once the registry has not answered for twice the rotation period, rotated locally, until it answers', async () => {
    // Fail-static without end: through a long outage one shared key sealed every session, and a
    // leak of it would open every one resumed since.
    const [k1, k2] = [newTicketKey(), newTicketKey()];
    const down = new Error('registry unreachable');
    const source = registry([{ current: k1, previous: null, next: null, createdAt: 1 }, down, down, down, down, { current: k2, previous: k1, next: null, createdAt: 2 }]);
    let now = 1_000_000;
    const { sync, applied, sealedLocally } = recordingSync(source, () => now);
    await sync.check();
    expect(applied).toEqual([[k1, '-', '-']]);
    now += 1_999;
    await sync.check(); // within twice the period: the shared key stays
    expect(applied).toHaveLength(1);
    now += 1;
    await sync.check(); // twice the period without an answer: a key of its own seals
    expect(applied).toHaveLength(2);
    const [ownFirst, next, previous] = applied[1]!;
    expect([ownFirst === k1, next, previous]).toEqual([false, '-', '-']);
    expect(sync.fingerprint).toBeNull();
    expect(sealedLocally).toEqual([2_000]);
    now += 999;
    await sync.check(); // the own key is younger than the period: kept
    expect(applied).toHaveLength(2);
    now += 1;
    await sync.check(); // and made again every period, the one before still opening
    expect(applied).toHaveLength(3);
    expect(applied[2]![2]).toBe(ownFirst);
    expect(applied[2]![0]).not.toBe(ownFirst);
    expect(sealedLocally).toEqual([2_000, 3_000]);
    await sync.check(); // the registry answers: its ring seals again, as a change
    expect(applied.at(-1)).toEqual([k2, '-', k1]);
    expect(sync.fingerprint).toBe(ticketKeyFingerprint(k2));
  });

  it('seals with a key of its own, rotated, when the registry has not answered since the start for twice the rotation period', async () => {
    // A worker respawned during an outage: Node's own random key sealed for the whole outage.
    const down = new Error('registry unreachable');
    const source = registry([down, down, down, down]);
    let now = 1_000_000;
    const { sync, applied, sealedLocally } = recordingSync(source, () => now);
    await sync.check();
    now += 1_999;
    await sync.check();
    expect(applied).toEqual([]);
    now += 1;
    await sync.check();
    expect(applied).toHaveLength(1);
    expect(applied[0]!.slice(1)).toEqual(['-', '-']);
    expect(sealedLocally).toEqual([2_000]);
    now += 1_000;
    await sync.check();
    expect(applied).toHaveLength(2);
    expect(applied[1]![2]).toBe(applied[0]![0]);
  });

  it('asks again soon after a failed look (0.5 s, doubling), not only at the regular interval', async () => {
    vi.useFakeTimers();
    try {
      const key = newTicketKey();
      const source = registry([new Error('connecting'), new Error('connecting'), { current: key, previous: null, next: null, createdAt: 1 }]);
      const applied: string[] = [];
      const sync = new TicketKeySync({ registry: source, rotateEveryMs: 600_000, checkEveryMs: 60_000, apply: (keys) => applied.push(keys.current.toString('base64')) });
      await sync.start();
      expect(source.offers).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(500);
      expect(source.offers).toHaveLength(2);
      await vi.advanceTimersByTimeAsync(999);
      expect(source.offers).toHaveLength(2);
      await vi.advanceTimersByTimeAsync(1);
      expect(source.offers).toHaveLength(3);
      expect(applied).toEqual([key]);
      // Back on the regular interval once it succeeded: nothing more until 60 s after the start.
      await vi.advanceTimersByTimeAsync(58_000);
      expect(source.offers).toHaveLength(3);
      await vi.advanceTimersByTimeAsync(500);
      expect(source.offers).toHaveLength(4);
      sync.stop();
    } finally {
      vi.useRealTimers();
    }
  });

  it('puts the current key in use when the previous or next one is malformed, and says so', async () => {
    const k1 = newTicketKey();
    const source = registry([{ current: k1, previous: 'garbage', next: 'rubbish', createdAt: 1 }]);
    const { sync, applied, errors } = recordingSync(source);
    await sync.check();
    expect(applied).toEqual([[k1, '-', '-']]);
    expect(errors).toEqual(['the registry holds a malformed next TLS ticket key: it opens no tickets', 'the registry holds a malformed previous TLS ticket key: it opens no tickets']);
    expect(errors.join()).not.toMatch(/garbage|rubbish/); // a key, even a broken one, is never logged
  });

  it('runs one look at a time', async () => {
    let calls = 0;
    const key = newTicketKey();
    const sync = new TicketKeySync({
      registry: { shareTicketKeys: async () => (calls++, { current: key, previous: null, next: null, createdAt: 1 }) },
      rotateEveryMs: 1_000,
      checkEveryMs: 60_000,
      apply: () => undefined,
    });
    await Promise.all([sync.check(), sync.check(), sync.check()]);
    expect(calls).toBe(1);
  });
});
