import { describe, expect, it } from 'vitest';
import { ContainerLedger, newRegionCounts } from '../../src/routing/container-ledger.js';

const NYC = 1;

describe('ContainerLedger', () => {
  it('counts sends since the report until they end: a burst takes one container each', () => {
    const ledger = new ContainerLedger();
    const fn = newRegionCounts(5);
    const sentAt = [1_010, 1_011, 1_012].map((t) => ledger.send(fn, NYC, 1_000, 0, t));
    expect(ledger.taken(fn, NYC, 1_000, 0, 0, 0)).toBe(3);
    ledger.ended(fn, NYC, 1_000, 0, sentAt[0]!, 1_020);
    expect(ledger.taken(fn, NYC, 1_000, 0, 0, 0)).toBe(2);
    // Other regions and other functions keep their own counts.
    expect(ledger.taken(fn, 0, 1_000, 0, 0, 0)).toBe(0);
    expect(ledger.taken(newRegionCounts(5), NYC, 1_000, 0, 0, 0)).toBe(0);
  });

  it.each([
    // [what, events (send at s / end of the send at s, at e), report at 2,000 with busy, taken after it arrives at 2,010]
    ['a request running at the report and ending after it frees a container the report counted busy', [['send', 1_990], ['end', 1_990, 2_004]], 1, -1],
    ['…but no more than the report counted busy', [['send', 1_990], ['send', 1_991], ['end', 1_990, 2_004], ['end', 1_991, 2_005]], 1, -1],
    ['a request that ended before the report was counted idle by it: nothing to add', [['send', 1_990], ['end', 1_990, 1_995]], 1, 0],
    ['a request sent after the report was taken, before it arrived, holds a container the report counted idle', [['send', 2_003]], 0, 1],
    ['…and once it has ended too, the report had it right', [['send', 2_003], ['end', 2_003, 2_006]], 0, 0],
    ['a request still running from before the report: the report counted it busy, nothing to take', [['send', 1_990]], 1, 0],
  ] as const)('%s', (_what, events, busy, taken) => {
    const ledger = new ContainerLedger();
    const fn = newRegionCounts(5);
    const sent = new Map<number, number>();
    // Every event is seen while the previous report (1,000) is the newest known here.
    for (const [kind, at, endedAt] of events as readonly (readonly [string, number, number?])[]) {
      if (kind === 'send') sent.set(at, ledger.send(fn, NYC, 1_000, 0, at));
      else ledger.ended(fn, NYC, 1_000, 0, sent.get(at)!, endedAt!);
    }
    expect(ledger.taken(fn, NYC, 2_000, busy, 0, 0)).toBe(taken);
  });

  it('a send seen after a report counts against it even when this clock reads earlier (skew), and its end gives it back', () => {
    const ledger = new ContainerLedger();
    const fn = newRegionCounts(5);
    const sentAt = ledger.send(fn, NYC, 2_000, 0, 1_997);
    expect(sentAt).toBe(2_000);
    expect(ledger.taken(fn, NYC, 2_000, 0, 0, 0)).toBe(1);
    ledger.ended(fn, NYC, 2_000, 0, sentAt, 1_999);
    expect(ledger.taken(fn, NYC, 2_000, 0, 0, 0)).toBe(0);
  });

  it('once the report is older than the median request time, counts only its own running requests as holding containers', () => {
    const ledger = new ContainerLedger();
    const fn = newRegionCounts(5);
    // Running from before the report (at 2,000), which caught 3 containers busy: this one and two of other routers'.
    ledger.send(fn, NYC, 1_000, 0, 1_995);
    ledger.send(fn, NYC, 2_000, 3, 2_001); // and one since
    // Within the median request time (20 ms) the others' requests may still run: only what this router did counts.
    expect(ledger.taken(fn, NYC, 2_000, 3, 2_010, 20)).toBe(1);
    // Past it, they are most likely over: of the 3 busy, only its 2 running requests still hold a container.
    expect(ledger.taken(fn, NYC, 2_000, 3, 2_030, 20)).toBe(2 - 3);
    // Never more taken than the count since the report says, and no settling without a median.
    expect(ledger.taken(fn, NYC, 2_000, 0, 2_030, 20)).toBe(1);
    expect(ledger.taken(fn, NYC, 2_000, 3, 9_000, 0)).toBe(1);
  });

  it('forgets events older than its ring: a report arriving after more events than it holds errs towards idle', () => {
    const ledger = new ContainerLedger(4);
    const fn = newRegionCounts(5);
    const other = newRegionCounts(5);
    ledger.send(fn, NYC, 1_000, 0, 2_001);
    ledger.send(fn, NYC, 1_000, 0, 2_002);
    // Four events of another function push both sends out of the ring.
    for (let t = 2_003; t < 2_007; t++) ledger.send(other, NYC, 1_000, 0, t);
    expect(ledger.taken(fn, NYC, 2_000, 0, 0, 0)).toBe(0);
    expect(ledger.taken(other, NYC, 2_000, 0, 0, 0)).toBe(4);
  });
});
