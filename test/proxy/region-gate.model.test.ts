/**
 * Model-based test of RegionGates: random enters, leaves, cancels, hedges (tryTake) and sweeps,
 * with callbacks that re-enter the gates (an admitted waiter that leaves at once, a turned-away
 * waiter that enters another region, as Exchange and the WebSocket tunnel do), checked after every
 * operation against a plain model and the gate's own invariants. Fixed seeds: reproducible.
 */
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/core/seeded-random.js';
import { RegionGates, type GateWaiter, type TurnAway } from '../../src/proxy/region-gate.js';

// The gate's internals, read (never written) to check its invariants.
interface QueueView {
  size: number;
}
interface PartView {
  active: number;
  waiting: QueueView;
  uploadsWaiting: QueueView;
  inRing: boolean;
  readonly queued: number;
}
interface GateView {
  active: number;
  uploadsActive: number;
  queued: number;
  tenants: Map<string, PartView>;
  ring: PartView[];
  next: number;
  slots: number;
  uploadSlots: number;
  tenantSlots: number;
  tenantQueue: number;
}
const internals = (g: RegionGates): Map<string, GateView> => (g as unknown as { gates: Map<string, GateView> }).gates;

type State = 'new' | 'queued' | 'active' | 'out';

class ModelWaiter implements GateWaiter {
  gateDeadline = Number.POSITIVE_INFINITY;
  gateQueued = false;
  state: State = 'new';
  region = '';
  constructor(
    readonly h: Harness,
    readonly id: number,
    readonly tenant: string,
    readonly upload: boolean,
    readonly panic: boolean,
  ) {}
  admitted(): void {
    this.h.onAdmitted(this);
  }
  turnedAway(reason: TurnAway): void {
    this.h.onTurnedAway(this, reason);
  }
}

interface Held {
  region: string;
  tenant: string;
  upload: boolean;
}

interface Config {
  regions: string[];
  tenants: string[];
  slots: Record<string, number>;
  maxQueue: number;
  uploadShare: number;
  tenantShare: number;
  /** Waiters may enter again after being cancelled (not done by today's callers). */
  reuseCancelled: boolean;
}

class Harness {
  readonly gates: RegionGates;
  now = 0;
  usable = new Map<string, boolean>();
  readonly held: Held[] = [];
  /** Per region/tenant/kind: the model's FIFO of queued waiters. */
  readonly queues = new Map<string, ModelWaiter[]>();
  readonly waiters: ModelWaiter[] = [];
  readonly errors: string[] = [];
  nextId = 0;
  /** Depth of gate calls in progress (callbacks made inside them are re-entrant). */
  depth = 0;

  constructor(
    readonly cfg: Config,
    readonly rand: () => number,
  ) {
    this.gates = new RegionGates({
      regions: cfg.regions,
      slots: (r) => cfg.slots[r]!,
      maxQueue: cfg.maxQueue,
      uploadShare: cfg.uploadShare,
      tenantShare: cfg.tenantShare,
    });
    for (const r of cfg.regions) this.usable.set(r, true);
  }

  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rand() * xs.length)]!;
  }

  key(region: string, tenant: string, upload: boolean): string {
    return `${region}|${tenant}|${upload ? 'u' : 'p'}`;
  }

  queue(region: string, tenant: string, upload: boolean): ModelWaiter[] {
    const k = this.key(region, tenant, upload);
    let q = this.queues.get(k);
    if (q === undefined) this.queues.set(k, (q = []));
    return q;
  }

  fail(msg: string): void {
    if (this.errors.length < 5) this.errors.push(msg);
  }

  newWaiter(): ModelWaiter {
    const w = new ModelWaiter(this, this.nextId++, this.pick(this.cfg.tenants), this.rand() < 0.25, this.rand() < 0.1);
    this.waiters.push(w);
    return w;
  }

  enter(w: ModelWaiter, region: string): void {
    w.gateDeadline = this.now + 1 + Math.floor(this.rand() * 40);
    w.region = region;
    const result = this.gates.enter(region, w);
    if (result === 'admitted') {
      w.state = 'active';
      this.held.push({ region, tenant: w.tenant, upload: w.upload });
    } else if (result === 'queued') {
      w.state = 'queued';
      this.queue(region, w.tenant, w.upload).push(w);
    } else {
      // Refused for the region's queue or for the tenant's share of it, and only then.
      const gate = internals(this.gates).get(region)!;
      const part = gate.tenants.get(w.tenant);
      if (result === 'refused' && gate.queued < this.cfg.maxQueue) this.fail(`${w.id} refused at ${region} with ${gate.queued} of ${this.cfg.maxQueue} queued`);
      if (result === 'over-share' && (part?.queued ?? 0) < gate.tenantQueue) this.fail(`${w.id} over its share at ${region} below it`);
      w.state = 'out';
    }
  }

  leave(i: number): void {
    const [h] = this.held.splice(i, 1);
    this.gates.leave(h!.region, h!.tenant, h!.upload);
  }

  onAdmitted(w: ModelWaiter): void {
    if (w.state !== 'queued') {
      this.fail(`waiter ${w.id} admitted while ${w.state}`);
      return;
    }
    const q = this.queue(w.region, w.tenant, w.upload);
    if (q[0] !== w) this.fail(`waiter ${w.id} admitted out of FIFO order at ${w.region}/${w.tenant}`);
    q.splice(q.indexOf(w), 1);
    w.state = 'active';
    this.held.push({ region: w.region, tenant: w.tenant, upload: w.upload });
    this.takeTurn(w);
    // An exchange whose client left meanwhile (or whose dispatch failed) gives its slot back at once.
    if (this.rand() < 0.3) {
      const i = this.held.length - 1;
      w.state = 'out';
      this.leave(i);
    } else if (this.rand() < 0.1) {
      this.enter(this.newWaiter(), w.region); // another request arrives meanwhile, at the same region
    }
  }

  /** Per region/tenant: freed slots given to other tenants while this one waited, under its share. */
  readonly passedOver = new Map<string, number>();

  /**
   * Round robin: a tenant waiting under its share is not passed over more than once per other
   * tenant (twice, with slack for callbacks that enter or leave in between) before its turn.
   */
  takeTurn(w: ModelWaiter): void {
    const gate = internals(this.gates).get(w.region)!;
    this.passedOver.set(`${w.region}|${w.tenant}`, 0);
    for (const [tenant, part] of gate.tenants) {
      if (tenant === w.tenant) continue;
      const k = `${w.region}|${tenant}`;
      if (part.waiting.size > 0 && part.active < gate.tenantSlots) {
        const n = (this.passedOver.get(k) ?? 0) + 1;
        this.passedOver.set(k, n);
        if (n > 2 * this.cfg.tenants.length) this.fail(`${w.region}: tenant ${tenant} passed over ${n} times while it waited under its share`);
      } else {
        this.passedOver.set(k, 0);
      }
    }
  }

  onTurnedAway(w: ModelWaiter, reason: TurnAway): void {
    if (w.state !== 'queued') {
      this.fail(`waiter ${w.id} turned away (${reason}) while ${w.state}`);
      return;
    }
    if (reason === 'queue_timeout' && w.gateDeadline > this.now) this.fail(`waiter ${w.id} timed out before its deadline`);
    if (reason === 'region_unavailable' && (w.panic || this.usable.get(w.region) === true)) this.fail(`waiter ${w.id} turned away from a usable region`);
    const q = this.queue(w.region, w.tenant, w.upload);
    q.splice(q.indexOf(w), 1);
    w.state = 'out';
    // The next candidate: another region, at once, from the callback.
    const r = this.rand();
    if (r < 0.6) this.enter(w, this.pick(this.cfg.regions.filter((x) => x !== w.region)));
    else if (r < 0.75) this.enter(this.newWaiter(), w.region);
  }

  step(): void {
    const r = this.rand();
    if (r < 0.4) {
      let w: ModelWaiter | undefined;
      if (this.cfg.reuseCancelled && this.rand() < 0.3) w = this.waiters.find((x) => x.state === 'out');
      this.enter(w ?? this.newWaiter(), this.pick(this.cfg.regions));
    } else if (r < 0.7) {
      if (this.held.length > 0) this.leave(Math.floor(this.rand() * this.held.length));
    } else if (r < 0.82) {
      const queued = this.waiters.filter((w) => w.state === 'queued');
      if (queued.length > 0) {
        const w = this.pick(queued);
        this.gates.cancel(w.region, w);
        const q = this.queue(w.region, w.tenant, w.upload);
        q.splice(q.indexOf(w), 1);
        w.state = 'out';
        if (this.rand() < 0.2) this.gates.cancel(w.region, w); // twice: a no-op
      }
      const other = this.pick(this.waiters);
      if (this.cfg.reuseCancelled && other !== undefined && this.rand() < 0.2) {
        this.gates.cancel(this.pick(this.cfg.regions.filter((x) => x !== other.region)), other); // not queued there: a no-op
      }
    } else if (r < 0.87) {
      const region = this.pick(this.cfg.regions);
      const tenant = this.pick(this.cfg.tenants);
      const ownWaiters = this.queue(region, tenant, false).length + this.queue(region, tenant, true).length;
      if (this.gates.tryTake(region, tenant)) {
        // A hedge never overtakes its own tenant's waiters (the others wait on their shares: checked in `check`).
        if (ownWaiters > 0) this.fail(`hedge of ${tenant} at ${region} taken with ${ownWaiters} of its own waiting`);
        this.held.push({ region, tenant, upload: false });
      }
    } else {
      this.now += Math.floor(this.rand() * 15);
      for (const region of this.cfg.regions) this.usable.set(region, this.rand() < 0.85);
      this.gates.sweep(this.now, (region) => this.usable.get(region) === true);
    }
    this.waiters.splice(0, Math.max(0, this.waiters.length - 500)); // keep the model small
  }

  check(where: string): void {
    // Routing reads each region's count by its place in the list: always what `outstanding` says.
    this.cfg.regions.forEach((region, i) => {
      if (this.gates.outstandingAt(i) !== this.gates.outstanding(region)) this.fail(`${where} ${region}: outstandingAt(${i}) ${this.gates.outstandingAt(i)}, outstanding ${this.gates.outstanding(region)}`);
    });
    for (const [region, gate] of internals(this.gates)) {
      const held = this.held.filter((h) => h.region === region);
      const at = `${where} ${region}`;
      let sumActive = 0;
      let sumQueued = 0;
      for (const [tenant, part] of gate.tenants) {
        sumActive += part.active;
        sumQueued += part.queued;
        const mine = held.filter((h) => h.tenant === tenant).length;
        if (part.active !== mine) this.fail(`${at}: tenant ${tenant} part.active ${part.active}, holds ${mine}`);
        if (part.waiting.size !== this.queue(region, tenant, false).length) this.fail(`${at}: tenant ${tenant} waiting ${part.waiting.size}, model ${this.queue(region, tenant, false).length}`);
        if (part.uploadsWaiting.size !== this.queue(region, tenant, true).length) this.fail(`${at}: tenant ${tenant} uploads waiting ${part.uploadsWaiting.size}, model ${this.queue(region, tenant, true).length}`);
        if (part.active > gate.tenantSlots) this.fail(`${at}: tenant ${tenant} holds ${part.active} > share ${gate.tenantSlots}`);
        if (part.queued > gate.tenantQueue) this.fail(`${at}: tenant ${tenant} queues ${part.queued} > share ${gate.tenantQueue}`);
        if (part.queued > 0 && !part.inRing) this.fail(`${at}: tenant ${tenant} waits but is out of the ring`);
        if (part.inRing !== gate.ring.includes(part)) this.fail(`${at}: tenant ${tenant} inRing ${part.inRing} disagrees with the ring`);
        // Starvation: a free slot and a waiter that may take it.
        if (gate.active < gate.slots) {
          if (part.waiting.size > 0 && part.active < gate.tenantSlots) this.fail(`${at}: slot free (${gate.active}/${gate.slots}) but tenant ${tenant} (${part.active}/${gate.tenantSlots}) has ${part.waiting.size} waiting`);
          if (part.uploadsWaiting.size > 0 && part.active < gate.tenantSlots && gate.uploadsActive < gate.uploadSlots) this.fail(`${at}: slot free but tenant ${tenant} has uploads waiting under both shares`);
        }
      }
      for (const tenant of this.cfg.tenants) {
        if (!gate.tenants.has(tenant) && held.some((h) => h.tenant === tenant)) this.fail(`${at}: tenant ${tenant} holds a slot but has no part (its leave would be lost)`);
      }
      for (const part of gate.ring) {
        if (![...gate.tenants.values()].includes(part)) this.fail(`${at}: a part in the ring is not in the tenants map`);
      }
      if (new Set(gate.ring).size !== gate.ring.length) this.fail(`${at}: a tenant twice in the ring`);
      if (gate.active !== held.length) this.fail(`${at}: active ${gate.active}, held ${held.length}`);
      if (gate.active !== sumActive) this.fail(`${at}: active ${gate.active} != sum of parts ${sumActive}`);
      const uploads = held.filter((h) => h.upload).length;
      if (gate.uploadsActive !== uploads) this.fail(`${at}: uploadsActive ${gate.uploadsActive}, held ${uploads}`);
      const queued = [...this.queues.entries()].filter(([k]) => k.startsWith(`${region}|`)).reduce((n, [, q]) => n + q.length, 0);
      if (gate.queued !== sumQueued) this.fail(`${at}: queued ${gate.queued} != sum of parts ${sumQueued}`);
      if (gate.queued !== queued) this.fail(`${at}: queued ${gate.queued}, model ${queued}`);
      if (gate.active > gate.slots) this.fail(`${at}: active ${gate.active} > slots ${gate.slots}`);
      if (gate.uploadsActive > gate.uploadSlots) this.fail(`${at}: uploads ${gate.uploadsActive} > ${gate.uploadSlots}`);
      if (gate.queued > this.cfg.maxQueue) this.fail(`${at}: queued ${gate.queued} > max ${this.cfg.maxQueue}`);
      if (gate.tenants.size > this.cfg.tenants.length) this.fail(`${at}: ${gate.tenants.size} tenant parts`);
    }
  }
}

function config(rand: () => number, reuseCancelled: boolean): Config {
  const regions = ['fra', 'nyc', 'sin'];
  const big = rand() < 0.3;
  const tenants = 'abcdefghijkl'.split('').slice(0, 1 + Math.floor(rand() * (big ? 12 : 5)));
  const slots: Record<string, number> = {};
  for (const r of regions) slots[r] = 1 + Math.floor(rand() * (big ? 16 : 8));
  return {
    regions,
    tenants,
    slots,
    maxQueue: Math.floor(rand() * (big ? 64 : 24)),
    uploadShare: [0, 0.25, 0.5, 1][Math.floor(rand() * 4)]!,
    tenantShare: [0, 0.25, 0.34, 0.5, 1][Math.floor(rand() * 5)]!,
    reuseCancelled,
  };
}

function run(seed: number, ops: number, reuseCancelled = false): string[] {
  const rand = seededRandom(seed);
  const h = new Harness(config(rand, reuseCancelled), rand);
  for (let i = 0; i < ops && h.errors.length === 0; i++) {
    h.step();
    h.check(`seed ${seed} op ${i}:`);
  }
  // Drain: everything held is given back, time passes: no tenant part, ring entry or waiter is left.
  if (h.errors.length === 0) {
    while (h.held.length > 0) h.leave(0);
    for (let i = 0; i < 3 && h.errors.length === 0; i++) {
      h.now += 1_000;
      for (const r of h.cfg.regions) h.usable.set(r, true);
      h.gates.sweep(h.now, () => true);
      while (h.held.length > 0) h.leave(0);
      h.check(`seed ${seed} drain ${i}:`);
    }
    h.gates.sweep(h.now + 1_000, () => true);
    for (const [region, gate] of internals(h.gates)) {
      if (gate.tenants.size !== 0 || gate.ring.length !== 0 || gate.active !== 0 || gate.queued !== 0) {
        h.fail(`seed ${seed} drained: ${region} keeps ${gate.tenants.size} parts, ring ${gate.ring.length}, active ${gate.active}, queued ${gate.queued}`);
      }
    }
  }
  return h.errors;
}

/** A waiter that only counts what it is told. */
const plain = (tenant: string, gateDeadline = Number.POSITIVE_INFINITY) => {
  const w = {
    tenant,
    upload: false,
    gateDeadline,
    gateQueued: false,
    told: [] as string[],
    admitted: () => w.told.push('admitted'),
    turnedAway: (reason: TurnAway) => w.told.push(reason),
  };
  return w;
};

/** CPU-bound (about 5 s each on a quiet host): the default 20 s ran out on a host at load 13. */
const MODEL_TIMEOUT_MS = 90_000;

describe('RegionGates (model-based)', () => {
  it('keeps its counts, shares, turns and callbacks right over 200 seeds x 2,000 random operations', () => {
    const errors: string[] = [];
    for (let seed = 1; seed <= 200 && errors.length === 0; seed++) errors.push(...run(seed, 2_000));
    expect(errors).toEqual([]);
  }, MODEL_TIMEOUT_MS);

  it('lets a waiter that was cancelled enter again (the same object) without being admitted twice', () => {
    const errors: string[] = [];
    for (let seed = 1; seed <= 200 && errors.length === 0; seed++) errors.push(...run(seed, 2_000, true));
    expect(errors).toEqual([]);
  }, MODEL_TIMEOUT_MS);

  it('admits a waiter cancelled at one region and queued again at another only there, once', () => {
    const g = new RegionGates({ regions: ['fra', 'nyc'], slots: () => 1, tenantShare: 1 });
    g.enter('fra', plain('acme'));
    g.enter('nyc', plain('acme'));
    const [w, x] = [plain('acme'), plain('acme')];
    g.enter('fra', w);
    g.enter('fra', x);
    g.cancel('fra', w); // its old place stays in fra's queue until skipped
    expect(g.enter('nyc', w)).toBe('queued');
    g.leave('fra', 'acme', false);
    expect(w.told).toEqual([]); // not admitted at fra, where it was cancelled
    expect(x.told).toEqual(['admitted']);
    expect(g.stats('fra')).toMatchObject({ active: 1, queued: 0 });
    g.cancel('fra', w); // not queued at fra: a no-op
    expect(g.stats('nyc')).toMatchObject({ active: 1, queued: 1 });
    g.leave('nyc', 'acme', false);
    expect(w.told).toEqual(['admitted']);
    expect(g.stats('nyc')).toMatchObject({ active: 1, queued: 0 });
  });

  // Complexity guards, not timings: the sizes are chosen so that quadratic work takes many seconds
  // and linear work a few tens of milliseconds, and the bounds sit far from both.
  it('sweeps many tenants timing out at once in linear time', () => {
    const tenants = 60_000;
    const g = new RegionGates({ regions: ['fra'], slots: () => 2, maxQueue: 2 * tenants });
    g.enter('fra', plain('x'));
    g.enter('fra', plain('y'));
    for (let i = 0; i < tenants; i++) g.enter('fra', plain(`t${i}`, 10));
    const started = performance.now();
    g.sweep(100, () => true);
    // Quadratic (one ring rebuild per tenant emptied), 20,000 took ~3.7 s and 40,000 27 s; linear, 60,000 take ~80 ms.
    expect(performance.now() - started).toBeLessThan(3_000);
    expect(g.stats('fra')).toMatchObject({ active: 2, queued: 0 });
  }, 60_000);

  it('passes many cancelled tenants in one pump in linear time', () => {
    const tenants = 160_000;
    const g = new RegionGates({ regions: ['fra'], slots: () => 3, maxQueue: 2 * tenants, tenantShare: 0.34 });
    for (const t of ['x', 'y', 'z', 'z']) g.enter('fra', plain(t)); // z waits at its share: first in turn
    const waiters = Array.from({ length: tenants }, (_, i) => plain(`t${i}`));
    for (const w of waiters) g.enter('fra', w);
    for (const w of waiters.slice(0, -1)) g.cancel('fra', w);
    const started = performance.now();
    g.leave('fra', 'x', false);
    // A splice per cancelled tenant (behind z's turn) was quadratic: 40,000 took ~0.9 s, so 160,000
    // some 14 s; one pass, a few ms.
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(waiters.at(-1)!.told).toEqual(['admitted']);
  }, 60_000);
});
