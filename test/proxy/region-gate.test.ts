import { describe, expect, it } from 'vitest';
import { RegionGates, type GateWaiter, type TurnAway } from '../../src/proxy/region-gate.js';

/** A waiter that records what the gate told it. */
class Waiter implements GateWaiter {
  gateQueued = false;
  told: Array<'admitted' | TurnAway> = [];
  constructor(
    readonly name: string,
    public gateDeadline = Number.POSITIVE_INFINITY,
    readonly upload = false,
    readonly panic = false,
    readonly tenant = 'acme',
  ) {}
  admitted(): void {
    this.told.push('admitted');
  }
  turnedAway(reason: TurnAway): void {
    this.told.push(reason);
  }
}

/** One tenant's rules unless a test asks for tenants' shares: the whole region is theirs. */
const gates = (slots = 2, options: { maxQueue?: number; uploadShare?: number; tenantShare?: number } = {}) =>
  new RegionGates({ regions: ['fra', 'nyc'], slots: () => slots, tenantShare: 1, ...options });

describe('RegionGates', () => {
  it('admits up to the slot count, then queues, and counts both as outstanding', () => {
    const g = gates(2);
    expect(g.enter('fra', new Waiter('a'))).toBe('admitted');
    expect(g.enter('fra', new Waiter('b'))).toBe('admitted');
    const c = new Waiter('c');
    expect(g.enter('fra', c)).toBe('queued');
    expect(c.told).toEqual([]); // never called back synchronously
    expect(g.stats('fra')).toMatchObject({ active: 2, queued: 1, slots: 2 });
    expect(g.outstanding('fra')).toBe(3);
    expect(g.outstanding('nyc')).toBe(0);
  });

  it('gives the same counts by a region\'s place in the list it was made for', () => {
    const g = gates(1);
    g.enter('nyc', new Waiter('a'));
    g.enter('nyc', new Waiter('b'));
    g.enter('fra', new Waiter('c'));
    expect([g.outstandingAt(0), g.outstandingAt(1)]).toEqual([g.outstanding('fra'), g.outstanding('nyc')]);
    expect([g.outstandingAt(0), g.outstandingAt(1)]).toEqual([1, 2]);
    expect(g.outstandingAt(2)).toBe(0);
  });

  it('hands a freed slot to the oldest waiter, first come first served', () => {
    const g = gates(1);
    g.enter('fra', new Waiter('a'));
    const [b, c] = [new Waiter('b'), new Waiter('c')];
    g.enter('fra', b);
    g.enter('fra', c);
    g.leave('fra', 'acme', false);
    expect(b.told).toEqual(['admitted']);
    expect(c.told).toEqual([]);
    expect(g.stats('fra')).toMatchObject({ active: 1, queued: 1 });
  });

  it('never admits a cancelled waiter (its client left while it waited)', () => {
    const g = gates(1);
    g.enter('fra', new Waiter('a'));
    const [gone, next] = [new Waiter('gone'), new Waiter('next')];
    g.enter('fra', gone);
    g.enter('fra', next);
    g.cancel('fra', gone);
    expect(g.outstanding('fra')).toBe(2);
    g.leave('fra', 'acme', false);
    expect(gone.told).toEqual([]);
    expect(next.told).toEqual(['admitted']);
  });

  it('refuses at once when the queue is full', () => {
    const g = gates(1, { maxQueue: 2 });
    g.enter('fra', new Waiter('a'));
    expect(g.enter('fra', new Waiter('b'))).toBe('queued');
    expect(g.enter('fra', new Waiter('c'))).toBe('queued');
    expect(g.enter('fra', new Waiter('d'))).toBe('refused');
    expect(g.enter('nyc', new Waiter('e'))).toBe('admitted'); // other regions are not affected
  });

  it('turns away waiters past their deadline at a sweep, and keeps the others in order', () => {
    const g = gates(1);
    g.enter('fra', new Waiter('a'));
    const [late, onTime] = [new Waiter('late', 1_000), new Waiter('on time', 5_000)];
    g.enter('fra', late);
    g.enter('fra', onTime);
    g.sweep(999, () => true);
    expect(late.told).toEqual([]);
    g.sweep(1_000, () => true);
    expect(late.told).toEqual(['queue_timeout']);
    expect(onTime.told).toEqual([]);
    g.leave('fra', 'acme', false);
    expect(onTime.told).toEqual(['admitted']);
  });

  it('turns away every waiter of a region that became unusable; admitted requests keep their slots', () => {
    const g = gates(1);
    g.enter('fra', new Waiter('a'));
    const waiters = [new Waiter('b'), new Waiter('c', Number.POSITIVE_INFINITY, true)];
    for (const w of waiters) g.enter('fra', w);
    g.sweep(0, (region) => region !== 'fra');
    expect(waiters.map((w) => w.told)).toEqual([['region_unavailable'], ['region_unavailable']]);
    expect(g.stats('fra')).toMatchObject({ active: 1, queued: 0 });
  });

  it('keeps a panic waiter (sent knowingly to a region that is down) in a region that is not usable, until its own deadline', () => {
    // Turned away, a panic request moved on to the next region that was down too, and so on:
    // under load in a panic (health checks broken, regions serving), queued requests ended 503.
    const g = gates(1);
    g.enter('fra', new Waiter('a'));
    const routed = new Waiter('routed', 2_000);
    const panic = new Waiter('panic', 1_000, false, true);
    g.enter('fra', routed);
    g.enter('fra', panic);
    g.sweep(500, () => false);
    expect(routed.told).toEqual(['region_unavailable']);
    expect(panic.told).toEqual([]);
    g.sweep(1_000, () => false);
    expect(panic.told).toEqual(['queue_timeout']);
  });

  it('lets a turned-away waiter enter another region from its callback', () => {
    const g = gates(1);
    g.enter('fra', new Waiter('a'));
    const results: string[] = [];
    const mover: GateWaiter = {
      tenant: 'acme',
      upload: false,
      gateDeadline: 0,
      gateQueued: false,
      admitted: () => results.push('admitted?'),
      turnedAway: () => results.push(g.enter('nyc', mover)),
    };
    g.enter('fra', mover);
    g.sweep(1, () => true);
    expect(results).toEqual(['admitted']);
    expect(g.stats('nyc').active).toBe(1);
  });

  it('gives streaming uploads only their share of slots, while other requests still get the rest', () => {
    const g = gates(8, { uploadShare: 0.25 }); // 2 upload slots
    const uploads = [1, 2, 3].map((i) => new Waiter(`u${i}`, Number.POSITIVE_INFINITY, true));
    expect(uploads.map((u) => g.enter('fra', u))).toEqual(['admitted', 'admitted', 'queued']);
    const plain = [1, 2, 3, 4, 5, 6].map((i) => new Waiter(`p${i}`));
    expect(plain.map((p) => g.enter('fra', p))).toEqual(['admitted', 'admitted', 'admitted', 'admitted', 'admitted', 'admitted']);
    expect(g.stats('fra')).toMatchObject({ active: 8, uploadsActive: 2, queued: 1 });
    // A plain request leaves: the waiting upload may not take its slot (uploads are at their share).
    g.leave('fra', 'acme', false);
    expect(uploads[2]!.told).toEqual([]);
    // An upload leaves: the waiting upload takes that slot.
    g.leave('fra', 'acme', true);
    expect(uploads[2]!.told).toEqual(['admitted']);
    expect(g.stats('fra')).toMatchObject({ active: 7, uploadsActive: 2, queued: 0 });
  });

  it('serves waiting plain requests before waiting uploads', () => {
    const g = gates(4, { uploadShare: 0.5 });
    for (let i = 0; i < 4; i++) g.enter('fra', new Waiter(`p${i}`));
    const upload = new Waiter('u', Number.POSITIVE_INFINITY, true);
    const plain = new Waiter('p');
    g.enter('fra', upload);
    g.enter('fra', plain);
    g.leave('fra', 'acme', false);
    expect(plain.told).toEqual(['admitted']);
    expect(upload.told).toEqual([]);
    g.leave('fra', 'acme', false);
    expect(upload.told).toEqual(['admitted']);
  });

  it('keeps its queues consistent across many enters, cancels and leaves', () => {
    const g = gates(3, { maxQueue: 10_000 });
    const waiters: Waiter[] = [];
    for (let i = 0; i < 5_000; i++) {
      const w = new Waiter(String(i));
      waiters.push(w);
      if (g.enter('fra', w) === 'admitted') w.told.push('admitted');
    }
    for (let i = 3; i < 5_000; i += 2) g.cancel('fra', waiters[i]!);
    for (let i = 0; i < 5_000 && g.stats('fra').queued > 0; i++) g.leave('fra', 'acme', false);
    const admittedCount = waiters.filter((w) => w.told.includes('admitted')).length;
    // Every live waiter got a slot exactly once; no cancelled one did.
    expect(waiters.filter((w, i) => i >= 3 && i % 2 === 1 && w.told.length > 0)).toEqual([]);
    expect(waiters.every((w) => w.told.length <= 1)).toBe(true);
    expect(admittedCount).toBe(3 + 2_498); // 4,997 waited, 2,499 of them (odd indexes) were cancelled
  });
});

describe('RegionGates between tenants', () => {
  const of = (tenant: string, name: string, deadline = Number.POSITIVE_INFINITY) => new Waiter(name, deadline, false, false, tenant);

  it('lets one tenant hold at most its share of a region\'s slots: another\'s request is admitted at once', () => {
    const g = gates(4, { tenantShare: 0.5 });
    const flood = Array.from({ length: 6 }, (_, i) => of('noisy', `n${i}`));
    expect(flood.map((w) => g.enter('fra', w))).toEqual(['admitted', 'admitted', 'queued', 'queued', 'queued', 'queued']);
    expect(g.stats('fra')).toMatchObject({ active: 2, queued: 4, slots: 4, tenantSlots: 2 });
    expect(g.enter('fra', of('quiet', 'q'))).toBe('admitted');
    expect(g.tenantStats('fra', 'noisy')).toEqual({ active: 2, queued: 4 });
    expect(g.tenantStats('fra', 'quiet')).toEqual({ active: 1, queued: 0 });
    // The noisy tenant's own slot coming free goes to its next waiter, first come first served.
    g.leave('fra', 'noisy', false);
    expect(flood.map((w) => w.told.length)).toEqual([0, 0, 1, 0, 0, 0]);
  });

  it('hands freed slots to the tenants waiting in turn, not to whoever queued first', () => {
    const g = gates(2, { tenantShare: 1 });
    g.enter('fra', of('a', 'held1'));
    g.enter('fra', of('a', 'held2'));
    const order: string[] = [];
    const waiters = [of('a', 'a1'), of('a', 'a2'), of('a', 'a3'), of('b', 'b1'), of('c', 'c1'), of('b', 'b2')];
    for (const w of waiters) {
      expect(g.enter('fra', w)).toBe('queued');
      w.admitted = () => void order.push(w.name);
    }
    for (let i = 0; i < waiters.length; i++) g.leave('fra', 'a', false);
    expect(order).toEqual(['a1', 'b1', 'c1', 'a2', 'b2', 'a3']);
  });

  it('lets a hedge take a free slot while another tenant waits on its share, never while its own tenant waits', () => {
    const g = gates(4, { tenantShare: 0.5 });
    for (const i of [1, 2, 3]) g.enter('fra', of('noisy', `n${i}`)); // 2 slots, 1 waiting on its share
    expect(g.tryTake('fra', 'noisy')).toBe(false);
    expect(g.tryTake('fra', 'quiet')).toBe(true);
    expect(g.stats('fra')).toMatchObject({ active: 3, queued: 1 });
  });

  it('limits one tenant\'s share of the queue, so its flood leaves places for others', () => {
    const g = gates(1, { tenantShare: 0.5, maxQueue: 4 });
    g.enter('fra', of('noisy', 'held'));
    expect([1, 2, 3].map((i) => g.enter('fra', of('noisy', `n${i}`)))).toEqual(['queued', 'queued', 'over-share']);
    expect(g.enter('fra', of('quiet', 'q'))).toBe('queued');
  });

  it('forgets a tenant with nothing left at a region at the next sweep, and a cancelled or late waiter leaves its turn', () => {
    const g = gates(1, { tenantShare: 1 });
    g.enter('fra', of('a', 'held'));
    const gone = of('b', 'gone');
    const late = of('c', 'late', 10);
    const next = of('d', 'next');
    for (const w of [gone, late, next]) g.enter('fra', w);
    g.cancel('fra', gone);
    g.sweep(20, () => true);
    expect(late.told).toEqual(['queue_timeout']);
    expect(g.stats('fra')).toMatchObject({ active: 1, queued: 1 });
    g.leave('fra', 'a', false);
    expect([gone.told, next.told]).toEqual([[], ['admitted']]);
    g.leave('fra', 'd', false);
    g.sweep(30, () => true);
    expect(g.stats('fra')).toMatchObject({ active: 0, queued: 0 });
    expect((g as unknown as { gates: Map<string, { tenants: Map<string, unknown>; ring: unknown[] }> }).gates.get('fra')).toMatchObject({ tenants: new Map(), ring: [] });
  });

  it('keeps its counts consistent across many tenants entering, cancelling and leaving', () => {
    const g = gates(4, { tenantShare: 0.5, maxQueue: 100_000 });
    const waiters: Waiter[] = [];
    const holding: Waiter[] = [];
    for (let i = 0; i < 3_000; i++) {
      const w = of(`t${i % 7}`, String(i));
      w.admitted = () => void (w.told.push('admitted'), holding.push(w));
      waiters.push(w);
      if (g.enter('fra', w) === 'admitted') w.admitted();
    }
    for (let i = 5; i < 3_000; i += 3) g.cancel('fra', waiters[i]!);
    for (let i = 0; i < 10_000 && holding.length > 0; i++) {
      const w = holding.shift()!;
      expect(g.tenantStats('fra', w.tenant).active).toBeLessThanOrEqual(2);
      g.leave('fra', w.tenant, false);
    }
    expect(g.stats('fra')).toMatchObject({ active: 0, queued: 0 });
    expect(waiters.every((w) => w.told.length <= 1)).toBe(true);
    expect(waiters.filter((w, i) => i >= 5 && (i - 5) % 3 === 0 && w.told.length > 0)).toEqual([]);
    expect(waiters.filter((w) => w.told.length === 1)).toHaveLength(3_000 - 999);
  });
});
