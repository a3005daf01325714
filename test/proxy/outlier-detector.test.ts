import { describe, expect, it } from 'vitest';
import { OutlierDetector, tenantOfFailure } from '../../src/proxy/outlier-detector.js';

function detector(options: Partial<ConstructorParameters<typeof OutlierDetector>[0]> = {}) {
  let now = 1_000_000;
  const d = new OutlierDetector({ regionCount: 5, consecutiveFailures: 3, baseEjectionMs: 10_000, maxEjectionMs: 25_000, ...options, now: () => now });
  return { d, advance: (ms: number) => (now += ms), now: () => now };
}

describe('OutlierDetector', () => {
  it('ejects after consecutive failures only', () => {
    const { d, now } = detector();
    expect(d.failure('fra', 'ECONNREFUSED')).toBeUndefined();
    expect(d.failure('fra', 'ECONNREFUSED')).toBeUndefined();
    expect(d.failure('fra', 'status 503')).toEqual({ region: 'fra', until: now() + 10_000, count: 1, cause: '3 consecutive failures (last: status 503)', last: 'status 503' });
  });

  it('a success resets the streak', () => {
    const { d } = detector();
    d.failure('fra', 'x');
    d.failure('fra', 'x');
    d.success('fra');
    expect(d.failure('fra', 'x')).toBeUndefined();
    expect(d.failure('fra', 'x')).toBeUndefined();
    expect(d.failure('fra', 'x')).toBeDefined();
  });

  it('ejects for longer each time, up to the cap', () => {
    const { d, advance, now } = detector();
    const eject = () => {
      let e;
      for (let i = 0; i < 3; i++) e = d.failure('fra', 'x');
      return e;
    };
    expect(eject()!.until - now()).toBe(10_000);
    advance(10_001);
    expect(eject()!.until - now()).toBe(20_000);
    advance(20_001);
    expect(eject()!.until - now()).toBe(25_000); // 30 s capped at 25 s
  });

  // Cap 25 s, base 10 s. After the first ejection (10 s) the region is back at +10 s.
  it.each([
    { case: 'back and clean for longer than the cap, with successes', backMs: 25_001, successes: 3, expectedMs: 10_000 },
    { case: 'back and clean for longer than the cap, without traffic', backMs: 25_001, successes: 0, expectedMs: 10_000 },
    { case: 'back for less than the cap', backMs: 5_000, successes: 3, expectedMs: 20_000 },
  ])('judges the next ejection by how long the region has been back: $case', ({ backMs, successes, expectedMs }) => {
    const { d, advance, now } = detector();
    for (let i = 0; i < 3; i++) d.failure('fra', 'x');
    advance(10_000 + backMs);
    for (let i = 0; i < successes; i++) d.success('fra');
    let e;
    for (let i = 0; i < 3; i++) e = d.failure('fra', 'x');
    expect(e!.until - now()).toBe(expectedMs);
  });

  it('keeps a region that fails again as its capped ejection ends at the cap', () => {
    const { d, advance, now } = detector();
    const eject = () => {
      let e;
      for (let i = 0; i < 3; i++) e = d.failure('fra', 'x');
      return e!;
    };
    eject();
    advance(10_001);
    eject();
    advance(20_001);
    expect(eject().until - now()).toBe(25_000);
    advance(25_001); // the capped ejection is over: the region fails at once, with a success among its failures
    d.failure('fra', 'x');
    d.success('fra');
    expect(eject().until - now()).toBe(25_000);
  });

  it('ignores failures while a region is already ejected', () => {
    const { d } = detector();
    for (let i = 0; i < 3; i++) d.failure('fra', 'x');
    for (let i = 0; i < 10; i++) expect(d.failure('fra', 'x')).toBeUndefined();
  });

  it('never ejects more than the allowed fraction of regions', () => {
    const { d } = detector({ maxEjectedFraction: 0.4 }); // 2 of 5
    const eject = (r: string) => {
      let e;
      for (let i = 0; i < 3; i++) e = d.failure(r, 'x');
      return e;
    };
    expect(eject('atl')).toBeDefined();
    expect(eject('nyc')).toBeDefined();
    expect(eject('lax')).toBeUndefined();
  });

  it('counts regions other processes ejected (the registry\'s word) toward the bound', () => {
    // Counted alone, each router ejected up to 3 of 5, and two together ejected all five: panic everywhere.
    const elsewhere = new Set(['atl', 'nyc', 'lax']);
    const { d } = detector({ shared: { regions: ['atl', 'nyc', 'lax', 'fra', 'syd'], ejectedElsewhere: (r) => elsewhere.has(r) } });
    const eject = (r: string) => {
      let e;
      for (let i = 0; i < 3; i++) e = d.failure(r, 'x') ?? e;
      return e;
    };
    expect(eject('fra')).toBeUndefined();
    // Once one comes back, there is room again; its own ejection and the registry's copy count once.
    elsewhere.delete('lax');
    expect(eject('fra')).toBeDefined();
    elsewhere.add('fra');
    expect(eject('syd')).toBeUndefined();
  });

  it('lets a region back at once when an active health signal says it recovered', () => {
    const { d } = detector();
    for (let i = 0; i < 3; i++) d.failure('fra', 'x');
    expect(d.reinstate('fra')).toBe(true);
    expect(d.reinstate('fra')).toBe(false);
    expect(d.failure('fra', 'x')).toBeUndefined(); // the streak starts over
  });
});

describe('OutlierDetector and tenants', () => {
  it("counts one tenant's timeouts once in a streak, however many of its requests time out", () => {
    const { d } = detector();
    for (let i = 0; i < 10; i++) expect(d.failure('fra', 'deadline', 'mallory')).toBeUndefined();
    // The region's own failures still add to the streak the tenant's one timeout began.
    expect(d.failure('fra', 'ECONNRESET')).toBeUndefined();
    expect(d.failure('fra', 'status 503')).toBeDefined();
  });

  it('remembers no more tenants than a streak needs while the cap on ejected regions holds an ejection back', () => {
    const { d } = detector({ maxEjectedFraction: 0.2 }); // 1 of 5
    for (let i = 0; i < 3; i++) d.failure('atl', 'x');
    // lax's streak is past the threshold, its ejection held back: a thousand organisations time out there.
    for (let i = 0; i < 1_000; i++) expect(d.failure('lax', 'deadline', `org${i}`)).toBeUndefined();
    const remembered = (d as unknown as { records: Map<string, { timedOut?: Set<string> }> }).records.get('lax')!.timedOut!;
    expect(remembered.size).toBe(3);
  });

  it("adds up timeouts across tenants, and lets a tenant count again in the next streak", () => {
    const { d } = detector();
    expect(d.failure('fra', 'deadline', 'a')).toBeUndefined();
    d.success('fra');
    expect(d.failure('fra', 'deadline', 'a')).toBeUndefined();
    expect(d.failure('fra', 'deadline', 'b')).toBeUndefined();
    expect(d.failure('fra', 'deadline', 'a')).toBeUndefined();
    expect(d.failure('fra', 'UND_ERR_HEADERS_TIMEOUT', 'c')).toMatchObject({ region: 'fra', last: 'UND_ERR_HEADERS_TIMEOUT' });
  });

  it.each([
    ['deadline', 'org1'],
    ['EDGE_DEADLINE', 'org1'],
    ['UND_ERR_HEADERS_TIMEOUT', 'org1'],
    ['UND_ERR_BODY_TIMEOUT', 'org1'],
    ['ECONNREFUSED', undefined],
    ['status 503', undefined],
    ['ERR_TLS_CERT_ALTNAME_INVALID', undefined],
  ])('attributes %s to the tenant: %s', (cause, tenant) => {
    expect(tenantOfFailure(cause, 'org1')).toBe(tenant);
  });
});
