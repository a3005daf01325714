import { describe, expect, it } from 'vitest';
import type { GeoLocator } from '../../src/core/geo-locator.js';
import type { ClientLocation, FunctionRecord, RegionId, RegistrySnapshot } from '../../src/core/types.js';
import { createRouteDecider, idleShare, type RouteDeciderOptions } from '../../src/routing/route-decider.js';
import { healthMap, REGIONS, snapshotWith } from '../support/regions.js';

const at = (ip: string, lat: number | null, lon: number | null, country: string | null = null): ClientLocation => ({
  ip,
  country,
  city: null,
  lat,
  lon,
  source: lat === null ? (country === null ? 'unknown' : 'geoip-country') : 'geoip',
});

/** A table locator: each address has one fixed location object (like the real locator's cache). */
function tableLocator(entries: ClientLocation[]): GeoLocator & { calls: number } {
  const byIp = new Map(entries.map((e) => [e.ip, e]));
  return {
    calls: 0,
    locate(ip) {
      this.calls++;
      return byIp.get(ip) ?? at(ip, null, null);
    },
  };
}

const locator = tableLocator([
  at('198.51.100.1', 51.5074, -0.1278, 'GB'), // London
  at('198.51.100.2', 41.8781, -87.6298, 'US'), // Chicago
  at('198.51.100.3', null, null, 'JP'), // country only
]);

function decider(overrides: Partial<RouteDeciderOptions> = {}) {
  return createRouteDecider({
    regions: REGIONS,
    zone: 'telnyxcompute.com',
    locator,
    countryRegions: new Map([['JP', 'syd']]),
    defaultRegion: 'nyc',
    customDomains: new Map([['shop.example.com', { fn: 'shop', org: 'acme' }]]),
    unknownFunctions: 'forward',
    ...overrides,
  });
}

const fnRecord = (org: string, fn: string, extra: Partial<FunctionRecord> = {}): FunctionRecord => ({
  org,
  fn,
  regions: null,
  tier: 'standard',
  enabled: true,
  ...extra,
});

const directory = (...records: FunctionRecord[]) => {
  const byOrg = new Map<string, Map<string, FunctionRecord>>();
  for (const r of records) byOrg.set(r.org, (byOrg.get(r.org) ?? new Map()).set(r.fn, r));
  return byOrg;
};

describe('createRouteDecider', () => {
  it('routes a London client to Frankfurt, nearest first', () => {
    const d = decider().decide('echo-demo.telnyxcompute.com', '198.51.100.1', snapshotWith(), 0);
    expect(d).toMatchObject({ ok: true, fn: 'echo', org: 'demo', candidates: ['fra', 'nyc', 'atl', 'lax', 'syd'], reason: 'nearest' });
  });

  it('gives an unlisted function the same stand-in record on every request (its routing state is keyed by it)', () => {
    const d = decider();
    const first = d.decide('echo-demo.telnyxcompute.com', '198.51.100.1', snapshotWith(), 0);
    const second = d.decide('echo-demo.telnyxcompute.com', '198.51.100.2', snapshotWith(), 1);
    const other = d.decide('other-demo.telnyxcompute.com', '198.51.100.1', snapshotWith(), 2);
    if (!first.ok || !second.ok || !other.ok) throw new Error('expected routes');
    expect(second.fnRecord).toBe(first.fnRecord);
    expect(other.fnRecord).not.toBe(first.fnRecord);
    expect(first.fnRecord).toMatchObject({ org: 'demo', fn: 'echo', regions: null, enabled: true });
  });

  it('keeps one stand-in per unlisted function across requests for others in between, and serves the directory\'s record once the function is listed', () => {
    const d = decider();
    const host = (name: string) => `${name}.telnyxcompute.com`;
    const decideFor = (name: string, snapshot: RegistrySnapshot) => {
      const decision = d.decide(host(name), '198.51.100.1', snapshot, 0);
      if (!decision.ok) throw new Error(`expected a route for ${name}`);
      return decision.fnRecord;
    };
    const empty = snapshotWith();
    const echo = decideFor('echo-demo', empty);
    expect(decideFor('echo-demo', empty)).toBe(echo);
    // Another org's function of the same name, and another function of the same org, are others.
    const echoElsewhere = decideFor('echo-other', empty);
    const shopDemo = decideFor('shop-demo', empty);
    expect(echoElsewhere).not.toBe(echo);
    expect(echoElsewhere).toMatchObject({ org: 'other', fn: 'echo' });
    expect(shopDemo).toMatchObject({ org: 'demo', fn: 'shop' });
    expect(decideFor('echo-demo', empty)).toBe(echo);
    expect(decideFor('echo-other', empty)).toBe(echoElsewhere);
    // Listed now: the directory's record (its placement and tier), not the stand-in last handed out.
    const listed = fnRecord('demo', 'echo', { regions: new Set(['lax']), tier: 'extended' });
    const decision = d.decide(host('echo-demo'), '198.51.100.1', snapshotWith({ functions: directory(listed) }), 0);
    expect(decision).toMatchObject({ ok: true, candidates: ['lax'] });
    expect(decision.ok && decision.fnRecord).toBe(listed);
    // Gone from the directory again: the stand-in, as before.
    expect(decideFor('echo-demo', empty)).toBe(echo);
  });

  it('falls back to the country table when the database has no coordinates', () => {
    const d = decider().decide('echo-demo.telnyxcompute.com', '198.51.100.3', snapshotWith(), 0);
    expect(d).toMatchObject({ ok: true, candidates: ['syd', 'lax', 'atl', 'nyc', 'fra'], reason: 'fallback:country' });
  });

  it('falls back to the default region when nothing is known', () => {
    const d = decider().decide('echo-demo.telnyxcompute.com', '10.0.0.1', snapshotWith(), 0);
    expect(d).toMatchObject({ ok: true, candidates: ['nyc', 'atl', 'lax', 'fra', 'syd'], reason: 'fallback:no-geo' });
  });

  it('fails over from a fallback region like from any other', () => {
    const snapshot = snapshotWith({ regions: healthMap({ nyc: { status: 'down' } }) });
    const d = decider().decide('echo-demo.telnyxcompute.com', '10.0.0.1', snapshot, 0);
    expect(d).toMatchObject({ ok: true, candidates: ['atl', 'lax', 'fra', 'syd'], reason: 'failover:nyc-down' });
  });

  it('rejects a bad host before locating the client', () => {
    const counting = tableLocator([]);
    const d = decider({ locator: counting }).decide('nested.echo-demo.telnyxcompute.com', '198.51.100.1', snapshotWith(), 0);
    expect(d).toMatchObject({ ok: false, code: 'nested_subdomain' });
    expect(counting.calls).toBe(0);
  });

  it('resolves operator custom domains and registry custom domains', () => {
    const snapshot = snapshotWith({ domains: new Map([['api.other.org', { fn: 'api', org: 'other' }]]) });
    expect(decider().decide('shop.example.com', '198.51.100.1', snapshot, 0)).toMatchObject({ ok: true, fn: 'shop', org: 'acme' });
    expect(decider().decide('api.other.org', '198.51.100.1', snapshot, 0)).toMatchObject({ ok: true, fn: 'api', org: 'other' });
    expect(decider().decide('api.other.org', '198.51.100.1', snapshotWith(), 0)).toMatchObject({ ok: false, code: 'host_outside_zone' });
  });

  it('answers function_not_found for an unknown function when the policy is reject', () => {
    const d = decider({ unknownFunctions: 'reject' }).decide('echo-demo.telnyxcompute.com', '198.51.100.1', snapshotWith(), 0);
    expect(d).toMatchObject({ ok: false, code: 'function_not_found', fn: 'echo', org: 'demo' });
  });

  it('forwards an unknown function as deployed everywhere, standard tier, when the policy is forward', () => {
    const d = decider().decide('echo-demo.telnyxcompute.com', '198.51.100.1', snapshotWith(), 0);
    expect(d.ok && d.fnRecord).toEqual(fnRecord('demo', 'echo'));
  });

  it('forwards no unknown function before the directory is read: its org may have a residency rule not yet known (fails closed, 503)', () => {
    // Seen in review: the stand-in went to the nearest region anywhere, an org held to fra served from nyc.
    const unread = snapshotWith({ directoryUnread: true });
    const d = decider().decide('echo-euonly.telnyxcompute.com', '198.51.100.2', unread, 0);
    expect(d).toMatchObject({ ok: false, code: 'registry_unreachable', fn: 'echo', org: 'euonly' });
    // Once read, the rule holds for the stand-in too.
    const read = snapshotWith({ residency: new Map([['euonly', new Set(['fra'])]]) });
    expect(decider().decide('echo-euonly.telnyxcompute.com', '198.51.100.2', read, 0)).toMatchObject({ ok: true, candidates: ['fra'] });
  });

  it('answers a name a custom domain could be 503 before the directory is read, inside the zone too; a malformed one still 400', () => {
    // Seen in review: shop.<zone>, a custom domain the registry maps, got 404 missing_org while the
    // directory was unread, a permanent-looking answer where one outside the zone got 503.
    const unread = snapshotWith({ directoryUnread: true });
    for (const host of ['shop.telnyxcompute.com', 'a.b.telnyxcompute.com', 'telnyxcompute.com', 'my--x.telnyxcompute.com', 'shop.example.org']) {
      expect(decider().decide(host, '198.51.100.2', unread, 0), host).toMatchObject({ ok: false, code: 'registry_unreachable' });
    }
    expect(decider().decide('shop.telnyxcompute.com', '198.51.100.2', snapshotWith(), 0)).toMatchObject({ ok: false, code: 'missing_org' });
    expect(decider().decide('10.0.0.1', '198.51.100.2', unread, 0)).toMatchObject({ ok: false, code: 'ip_literal' });
    for (const host of ['bad_host!.telnyxcompute.com', 'bad_host!.x.telnyxcompute.com', 'a..telnyxcompute.com']) {
      expect(decider().decide(host, '198.51.100.2', unread, 0), host).toMatchObject({ ok: false, code: 'invalid_characters' });
    }
    expect(decider().decide(`${'a'.repeat(64)}.x.telnyxcompute.com`, '198.51.100.2', unread, 0)).toMatchObject({ ok: false, code: 'label_too_long' });
  });

  it('uses the directory: deployment regions, tier, disabled functions', () => {
    const functions = directory(
      fnRecord('acme', 'report', { regions: new Set(['lax', 'syd']), tier: 'extended' }),
      fnRecord('acme', 'old', { enabled: false }),
    );
    const snapshot = snapshotWith({ functions });
    const d = decider({ unknownFunctions: 'reject' }).decide('report-acme.telnyxcompute.com', '198.51.100.1', snapshot, 0);
    expect(d).toMatchObject({ ok: true, candidates: ['lax', 'syd'], reason: 'not-deployed' });
    expect(d.ok && d.fnRecord.tier).toBe('extended');
    expect(decider().decide('old-acme.telnyxcompute.com', '198.51.100.1', snapshot, 0)).toMatchObject({ ok: false, code: 'function_disabled' });
  });

  it('applies org residency', () => {
    const snapshot = snapshotWith({ residency: new Map([['euonly', new Set(['fra'])]]) });
    const d = decider().decide('api-euonly.telnyxcompute.com', '198.51.100.2', snapshot, 0);
    expect(d).toMatchObject({ ok: true, candidates: ['fra'], reason: 'residency' });
  });

  it('answers no_eligible_region when residency and deployment do not meet', () => {
    const snapshot = snapshotWith({
      residency: new Map([['euonly', new Set(['fra'])]]),
      functions: directory(fnRecord('euonly', 'api', { regions: new Set(['atl']) })),
    });
    expect(decider().decide('api-euonly.telnyxcompute.com', '198.51.100.2', snapshot, 0)).toMatchObject({ ok: false, code: 'no_eligible_region' });
  });

  it('routes by the regions a rule names that it knows, and nowhere under a rule that allows none (one the registry could not read)', () => {
    const known = snapshotWith({ residency: new Map([['euonly', new Set(['fra', 'mars'])]]) });
    expect(decider().decide('api-euonly.telnyxcompute.com', '198.51.100.2', known, 0)).toMatchObject({ ok: true, candidates: ['fra'], reason: 'residency' });
    const none = snapshotWith({ residency: new Map([['euonly', new Set<string>()]]) });
    // Said as what it is (explain, /api/route), not as a deployment outside the rule.
    expect(decider().decide('api-euonly.telnyxcompute.com', '198.51.100.2', none, 0)).toMatchObject({
      ok: false,
      code: 'no_eligible_region',
      message: "function api in org euonly may be served from no region: its org's residency rule allows none (the registry could not read it)",
    });
  });

  it('serves a function deployed partly in a region this router does not know from the regions it knows, and none when it knows none', () => {
    const partly = snapshotWith({ functions: directory(fnRecord('acme', 'api', { regions: new Set(['fra', 'mars']) })) });
    expect(decider().decide('api-acme.telnyxcompute.com', '198.51.100.2', partly, 0)).toMatchObject({ ok: true, candidates: ['fra'] });
    const unknownOnly = snapshotWith({ functions: directory(fnRecord('acme', 'api', { regions: new Set(['mars']) })) });
    // Deployed in a region its org may use (it has no rule): only not one this router knows.
    expect(decider().decide('api-acme.telnyxcompute.com', '198.51.100.2', unknownOnly, 0)).toMatchObject({
      ok: false,
      code: 'no_eligible_region',
      message: "function api in org acme is deployed, within its org's residency, only in regions this router's regions file lacks",
    });
    const ruled = snapshotWith({ residency: new Map([['acme', new Set(['fra', 'mars'])]]), functions: directory(fnRecord('acme', 'api', { regions: new Set(['atl', 'mars']) })) });
    expect(decider().decide('api-acme.telnyxcompute.com', '198.51.100.2', ruled, 0)).toMatchObject({ ok: false, message: expect.stringContaining("only in regions this router's regions file lacks") });
    const outside = snapshotWith({ residency: new Map([['acme', new Set(['fra'])]]), functions: directory(fnRecord('acme', 'api', { regions: new Set(['atl', 'mars']) })) });
    expect(decider().decide('api-acme.telnyxcompute.com', '198.51.100.2', outside, 0)).toMatchObject({ ok: false, message: 'function api in org acme is not deployed in any region its org may use' });
  });

  it('re-ranks when an operator changes a weight, and only then', () => {
    const d = decider();
    const host = 'echo-demo.telnyxcompute.com';
    expect(d.decide(host, '198.51.100.2', snapshotWith(), 0)).toMatchObject({ candidates: ['atl', 'nyc', 'lax', 'fra', 'syd'] });
    const heavier = snapshotWith({ regions: healthMap({ nyc: { weight: 2 } }) });
    expect(d.decide(host, '198.51.100.2', heavier, 0)).toMatchObject({ candidates: ['nyc', 'atl', 'lax', 'fra', 'syd'], reason: 'nearest' });
    expect(d.decide(host, '198.51.100.2', snapshotWith(), 0)).toMatchObject({ candidates: ['atl', 'nyc', 'lax', 'fra', 'syd'] });
  });

  it('follows each snapshot\'s health and its own load (read by region position) as snapshots replace each other', () => {
    const own: Record<string, number> = {};
    const d = decider({ localLoadAt: (i) => own[REGIONS[i]!.id] ?? 0 });
    const host = 'echo-demo.telnyxcompute.com';
    // Soft limit 8, hard 10. From London (198.51.100.1) the distance order is fra, nyc, atl, lax, syd.
    const steps: [Parameters<typeof healthMap>[0], Record<string, number>, RegionId[], string][] = [
      [{}, {}, ['fra', 'nyc', 'atl', 'lax', 'syd'], 'nearest'],
      [{ fra: { status: 'down' } }, {}, ['nyc', 'atl', 'lax', 'syd'], 'failover:fra-down'], // only health changed: no re-ranking, still read
      [{ fra: { status: 'down' } }, { nyc: 8 }, ['atl', 'lax', 'syd', 'nyc'], 'failover:fra-down'],
      [{ nyc: { drained: true } }, { fra: 10 }, ['atl', 'lax', 'syd'], 'spill:fra-hard-limit'],
      [{ atl: { status: 'degraded' }, lax: { inFlight: 10 } }, { syd: 9 }, ['fra', 'nyc', 'atl', 'syd'], 'nearest'],
      [{}, {}, ['fra', 'nyc', 'atl', 'lax', 'syd'], 'nearest'],
    ];
    for (const [patches, load, candidates, reason] of steps) {
      for (const k of Object.keys(own)) delete own[k];
      Object.assign(own, load);
      expect(d.decide(host, '198.51.100.1', snapshotWith({ regions: healthMap(patches) }), 0)).toMatchObject({ ok: true, candidates, reason });
    }
  });
});

describe('createRouteDecider, --routing latency', () => {
  const LONDON = '198.51.100.1';
  const api = fnRecord('acme', 'api');
  /** nyc holds `idle` idle warm containers of acme/api (reported at `reportAt`); fra none. */
  const warmIn = (idle: number, reportAt = 1_000, extra: Partial<Parameters<typeof snapshotWith>[0]> = {}) =>
    snapshotWith({
      functions: directory(api),
      regions: healthMap({ nyc: { heartbeatAt: reportAt, functionLoads: new Map([['acme/api', { idle, busy: 0, coldStartMs: 300 }]]) } }),
      ...extra,
    });

  it('sends a London request to an idle warm container in New York rather than cold-starting in Frankfurt, and says why', () => {
    const latency = decider({ routing: 'latency' });
    expect(latency.decide('api-acme.telnyxcompute.com', LONDON, warmIn(1), 0)).toMatchObject({ ok: true, candidates: ['nyc', 'fra', 'atl', 'lax', 'syd'], reason: 'warm:nyc' });
    // The same snapshot under nearest routing: Frankfurt.
    expect(decider().decide('api-acme.telnyxcompute.com', LONDON, warmIn(1), 0)).toMatchObject({ candidates: ['fra', 'nyc', 'atl', 'lax', 'syd'], reason: 'nearest' });
  });

  it('counts its own sends until the region reports again: a burst does not all land on one idle container', () => {
    const latency = decider({ routing: 'latency' });
    const snapshot = warmIn(1);
    const first = latency.decide('api-acme.telnyxcompute.com', LONDON, snapshot, 1_010);
    const second = latency.decide('api-acme.telnyxcompute.com', LONDON, snapshot, 1_011);
    expect([first.ok && first.reason, second.ok && second.reason]).toEqual(['warm:nyc', 'cold-nearest']);
    expect(second).toMatchObject({ candidates: ['fra', 'nyc', 'atl', 'lax', 'syd'] });
    // The first request ends: its container is free again.
    if (first.ok) latency.finished(first, snapshot, 1_030);
    expect(latency.decide('api-acme.telnyxcompute.com', LONDON, snapshot, 1_040)).toMatchObject({ reason: 'warm:nyc', sent: { region: 'nyc', sentAt: 1_040 } });
    // A new report (still one idle container) starts the count again, from the moment it was taken:
    // the request sent at 1,040 and still running held its container then, so the report counted it busy.
    expect(latency.decide('api-acme.telnyxcompute.com', LONDON, warmIn(1, 2_000), 2_005)).toMatchObject({ reason: 'warm:nyc' });
    expect(latency.decide('api-acme.telnyxcompute.com', LONDON, warmIn(1, 2_000), 2_006)).toMatchObject({ reason: 'cold-nearest' });
  });

  it('ends its count of a request when the wall clock stepped back meanwhile (a VM resumed, NTP stepping a fast clock)', () => {
    const latency = decider({ routing: 'latency' });
    const snapshot = warmIn(1);
    const first = latency.decide('api-acme.telnyxcompute.com', LONDON, snapshot, 10_000);
    expect(first).toMatchObject({ reason: 'warm:nyc' });
    if (first.ok) latency.finished(first, snapshot, 10_020);
    // The clock is 5 s behind from here on: every request that ends frees its container all the same.
    for (let k = 0; k < 3; k++) {
      const next = latency.decide('api-acme.telnyxcompute.com', LONDON, snapshot, 5_000 + k * 10);
      expect(next, `request ${k}`).toMatchObject({ reason: 'warm:nyc' });
      if (next.ok) latency.finished(next, snapshot, 5_005 + k * 10);
    }
  });

  /** nyc and atl report one idle container of acme/api each; fra none. */
  const nycAndAtlIdle = () =>
    snapshotWith({
      functions: directory(api),
      regions: healthMap({
        nyc: { heartbeatAt: 1_000, functionLoads: new Map([['acme/api', { idle: 1, busy: 0, coldStartMs: 300 }]]) },
        atl: { heartbeatAt: 1_000, functionLoads: new Map([['acme/api', { idle: 1, busy: 0, coldStartMs: 300 }]]) },
      }),
    });

  it('moves its count with a request that fails over: the first region\'s container is free again, the one it went on to is taken', () => {
    // nyc and atl each report one idle container; a London request is sent to nyc and fails over to atl.
    const latency = decider({ routing: 'latency' });
    const host = 'api-acme.telnyxcompute.com';
    const snapshot = nycAndAtlIdle();
    const first = latency.decide(host, LONDON, snapshot, 1_010);
    expect(first).toMatchObject({ reason: 'warm:nyc', sent: { region: 'nyc' } });
    if (!first.ok) return;
    const moved = latency.moved(first, 'atl', snapshot, 1_015);
    expect(moved.sent).toEqual({ region: 'atl', sentAt: 1_015, entry: first.sent!.entry });
    // While it runs in atl: nyc's container is idle again, atl's is taken.
    const second = latency.decide(host, LONDON, snapshot, 1_020);
    expect(second).toMatchObject({ reason: 'warm:nyc' });
    const third = latency.decide(host, LONDON, snapshot, 1_021);
    expect(third).toMatchObject({ reason: 'cold-nearest' });
    // It ends in atl: atl's container is free again (and nyc's stays taken by the second request).
    latency.finished(moved, snapshot, 1_030);
    expect(latency.decide(host, LONDON, snapshot, 1_040)).toMatchObject({ reason: 'warm:atl' });
    // Moving to the region already counted, or a decision nothing was counted for, changes nothing.
    if (second.ok) expect(latency.moved(second, 'nyc', snapshot, 1_050)).toBe(second);
    if (third.ok) expect(latency.moved({ ...third, sent: undefined }, 'nyc', snapshot, 1_050).sent).toBeUndefined();
  });

  it('counts a second copy of a request (a hedge) in its own region while the first runs on, until that copy is finished', () => {
    const latency = decider({ routing: 'latency' });
    const host = 'api-acme.telnyxcompute.com';
    const snapshot = nycAndAtlIdle();
    const first = latency.decide(host, LONDON, snapshot, 1_010);
    if (!first.ok) throw new Error('no decision');
    const hedge = latency.alsoSent(first, 'atl', snapshot, 1_012);
    expect([first.sent, hedge.sent]).toEqual([{ region: 'nyc', sentAt: 1_010, entry: expect.any(Number) }, { region: 'atl', sentAt: 1_012, entry: expect.any(Number) }]);
    expect(latency.decide(host, LONDON, snapshot, 1_020)).toMatchObject({ reason: 'cold-nearest' });
    latency.finished(hedge, snapshot, 1_030);
    expect(latency.decide(host, LONDON, snapshot, 1_040)).toMatchObject({ reason: 'warm:atl' });
    // Nothing counted, nothing to copy.
    expect(latency.alsoSent({ ...first, sent: undefined }, 'atl', snapshot, 1_050).sent).toBeUndefined();
  });

  it('keeps counting its sends when a full read decodes the function\'s record anew (an equal record is the same function)', () => {
    // nyc has one idle container, atl five. RedisRegistry decodes new record objects on every full
    // read; the count must follow the function, not the object, or nyc's one container is promised twice.
    const latency = decider({ routing: 'latency' });
    const health = healthMap({
      nyc: { heartbeatAt: 1_000, functionLoads: new Map([['acme/api', { idle: 1, busy: 0, coldStartMs: 300 }]]) },
      atl: { heartbeatAt: 1_000, functionLoads: new Map([['acme/api', { idle: 5, busy: 0, coldStartMs: 300 }]]) },
    });
    const before = snapshotWith({ functions: directory(fnRecord('acme', 'api')), regions: health });
    const reread = snapshotWith({ functions: directory(fnRecord('acme', 'api')), regions: health });
    const first = latency.decide('api-acme.telnyxcompute.com', LONDON, before, 1_010);
    const second = latency.decide('api-acme.telnyxcompute.com', LONDON, reread, 1_011);
    expect([first.ok && first.reason, second.ok && second.reason]).toEqual(['warm:nyc', 'warm:atl']);
    // Its end is counted against the function too, whichever record object the decision carries.
    if (first.ok) latency.finished(first, reread, 1_020);
    expect(latency.decide('api-acme.telnyxcompute.com', LONDON, reread, 1_030)).toMatchObject({ reason: 'warm:nyc' });
  });

  it('keeps ledger entries for listed functions only: a deleted function\'s is dropped (deployed again, it counts from its region\'s report alone)', () => {
    const latency = decider({ routing: 'latency', unknownFunctions: 'reject' });
    const health = healthMap({ nyc: { heartbeatAt: 1_000, functionLoads: new Map([['acme/api', { idle: 1, busy: 0, coldStartMs: 300 }]]) } });
    expect(latency.decide('api-acme.telnyxcompute.com', LONDON, snapshotWith({ functions: directory(api), regions: health }), 1_010)).toMatchObject({ reason: 'warm:nyc' });
    expect(latency.decide('api-acme.telnyxcompute.com', LONDON, snapshotWith({ functions: directory(), regions: health }), 1_011)).toMatchObject({ ok: false, code: 'function_not_found' });
    // The send before the deletion is gone with it (the ledger holds listed functions only).
    expect(latency.decide('api-acme.telnyxcompute.com', LONDON, snapshotWith({ functions: directory(api), regions: health }), 1_012)).toMatchObject({ reason: 'warm:nyc' });
  });

  it('a request whose function was deleted while it ran ends (or moves) without touching the ledger, even once the function is back', () => {
    const latency = decider({ routing: 'latency', unknownFunctions: 'reject' });
    const host = 'api-acme.telnyxcompute.com';
    const health = nycAndAtlIdle().regions;
    const listed = snapshotWith({ functions: directory(api), regions: health });
    const gone = snapshotWith({ functions: directory(), regions: health });
    const old = latency.decide(host, LONDON, listed, 1_010);
    if (!old.ok) throw new Error('no decision');
    expect(old).toMatchObject({ reason: 'warm:nyc', sent: { region: 'nyc' } });
    // Deleted: its entry goes. Moving and finishing the old request is a no-op (safe).
    expect(latency.decide(host, LONDON, gone, 1_011)).toMatchObject({ ok: false });
    const relisted = snapshotWith({ functions: directory(api), regions: health });
    // Deployed again: a new request takes nyc's one idle container.
    expect(latency.decide(host, LONDON, relisted, 1_012)).toMatchObject({ reason: 'warm:nyc', sent: { region: 'nyc' } });
    // The old request fails over to atl, then ends: neither may free the new request's nyc container.
    const moved = latency.moved(old, 'atl', relisted, 1_013);
    latency.finished(moved, relisted, 1_014);
    expect(latency.decide(host, LONDON, relisted, 1_015)).toMatchObject({ reason: 'warm:atl' });
  });

  it('counts a container the report caught busy as idle again once its own earlier request there is over, at most as many as the report counted busy', () => {
    const latency = decider({ routing: 'latency' });
    const host = 'api-acme.telnyxcompute.com';
    const nycReports = (idle: number, busy: number, reportAt: number) =>
      snapshotWith({ functions: directory(api), regions: healthMap({ nyc: { heartbeatAt: reportAt, functionLoads: new Map([['acme/api', { idle, busy, coldStartMs: 300 }]]) } }) });
    const reasons = (snapshot: RegistrySnapshot, n: number, at: number) => Array.from({ length: n }, () => latency.decide(host, LONDON, snapshot, at)).map((d) => d.ok && d.reason);

    // Two requests take nyc's two idle containers; nyc reports at 2,000 while both run: one busy,
    // and one already idle (it answered just before the report, its end not yet seen here).
    const [a, b] = [latency.decide(host, LONDON, nycReports(2, 0, 1_000), 1_990), latency.decide(host, LONDON, nycReports(2, 0, 1_000), 1_991)];
    expect([a.ok && a.reason, b.ok && b.reason]).toEqual(['warm:nyc', 'warm:nyc']);
    const during = nycReports(1, 1, 2_000);
    // Both end: the report counted one of them busy, so one container more is idle than it says, not two.
    if (a.ok) latency.finished(a, during, 2_003);
    if (b.ok) latency.finished(b, during, 2_004);
    expect(reasons(during, 3, 2_010)).toEqual(['warm:nyc', 'warm:nyc', 'cold-nearest']);
  });

  it('takes the end of a request that came between a report and its arrival into account when the report arrives', () => {
    const latency = decider({ routing: 'latency' });
    const host = 'api-acme.telnyxcompute.com';
    const nycReports = (idle: number, busy: number, reportAt: number) =>
      snapshotWith({ functions: directory(api), regions: healthMap({ nyc: { heartbeatAt: reportAt, functionLoads: new Map([['acme/api', { idle, busy, coldStartMs: 300 }]]) } }) });
    // One container in nyc, taken at 1,990; nyc reports at 2,000 (busy), the request ends at 2,004,
    // and the report reaches this router only at 2,008: the container is idle all the same.
    const before = nycReports(1, 0, 1_000);
    const a = latency.decide(host, LONDON, before, 1_990);
    expect(a).toMatchObject({ reason: 'warm:nyc' });
    if (a.ok) latency.finished(a, before, 2_004);
    const arrived = nycReports(0, 1, 2_000);
    expect(latency.decide(host, LONDON, arrived, 2_008)).toMatchObject({ reason: 'warm:nyc' });
    // A request sent after a report was taken (3,000) but before it arrived (3,008) holds a
    // container that report counted idle: it is taken.
    const fresh = decider({ routing: 'latency' });
    const b = fresh.decide(host, LONDON, nycReports(1, 0, 2_000), 3_003);
    expect(b).toMatchObject({ reason: 'warm:nyc' });
    expect(fresh.decide(host, LONDON, nycReports(1, 0, 3_000), 3_008)).toMatchObject({ reason: 'cold-nearest' });
  });

  it('says cold-nearest only where regions report their containers: with no report anywhere nothing is known cold', () => {
    const latency = decider({ routing: 'latency' });
    const unreported = snapshotWith({ functions: directory(api) });
    expect(latency.decide('api-acme.telnyxcompute.com', LONDON, unreported, 1_010)).toMatchObject({ reason: 'nearest', candidates: ['fra', 'nyc', 'atl', 'lax', 'syd'] });
    // Another function's report is enough: a region that reports its containers and lists none of this function's has none.
    const otherWarm = snapshotWith({ functions: directory(api), regions: healthMap({ nyc: { heartbeatAt: 1_000, functionLoads: new Map([['acme/other', { idle: 2, busy: 0, coldStartMs: 300 }]]) } }) });
    expect(latency.decide('api-acme.telnyxcompute.com', LONDON, otherWarm, 1_010)).toMatchObject({ reason: 'cold-nearest', candidates: ['fra', 'nyc', 'atl', 'lax', 'syd'] });
  });

  it('orders a function no region reports as readiness does, whatever its own requests in flight, and counts them once a report shows it', () => {
    const latency = decider({ routing: 'latency' });
    const nearest = decider();
    const host = 'api-acme.telnyxcompute.com';
    // Regions report containers (another function's), none of acme/api's.
    const unreported = snapshotWith({ functions: directory(api), regions: healthMap({ nyc: { heartbeatAt: 1_000, functionLoads: new Map([['acme/other', { idle: 2, busy: 0, coldStartMs: 300 }]]) } }) });
    const clients = [LONDON, '198.51.100.2', '198.51.100.3', '203.0.113.9'];
    const running: Extract<ReturnType<typeof latency.decide>, { ok: true }>[] = [];
    for (let k = 0; k < 12; k++) {
      const ip = clients[k % clients.length]!;
      const d = latency.decide(host, ip, unreported, 1_010 + k);
      const n = nearest.decide(host, ip, unreported, 1_010 + k);
      if (!d.ok || !n.ok) throw new Error('expected routes');
      expect(d.candidates).toEqual(n.candidates);
      expect(d.reason).toBe(n.reason === 'nearest' ? 'cold-nearest' : n.reason);
      expect(d.sent).toEqual({ region: d.candidates[0], sentAt: 1_010 + k, entry: expect.any(Number) });
      running.push(d);
      // Some end, some fail over elsewhere: none of it makes a region warm without a report.
      if (k % 3 === 1) latency.finished(running.shift()!, unreported, 1_020 + k);
      if (k % 4 === 2) running.push(latency.moved(running.pop()!, 'atl', unreported, 1_020 + k));
    }
    // London's requests still running in fra and nyc: a report taken before they were sent (nyc: one idle
    // container, fra: one) arrives; London's next request finds fra's taken by its own send and nyc's free.
    const london = decider({ routing: 'latency' });
    const sentToFra = london.decide(host, LONDON, unreported, 1_100);
    expect(sentToFra).toMatchObject({ ok: true, candidates: ['fra', 'nyc', 'atl', 'lax', 'syd'], sent: { region: 'fra' } });
    const reported = snapshotWith({
      functions: directory(api),
      regions: healthMap({
        fra: { heartbeatAt: 1_050, functionLoads: new Map([['acme/api', { idle: 1, busy: 0, coldStartMs: 300 }]]) },
        nyc: { heartbeatAt: 1_050, functionLoads: new Map([['acme/api', { idle: 1, busy: 0, coldStartMs: 300 }]]) },
      }),
    });
    expect(london.decide(host, LONDON, reported, 1_110)).toMatchObject({ ok: true, reason: 'warm:nyc', candidates: ['nyc', 'fra', 'atl', 'lax', 'syd'] });
  });

  it('without its own request finishing, a container the report caught busy stays busy until the next report', () => {
    const latency = decider({ routing: 'latency' });
    const snapshot = snapshotWith({ functions: directory(api), regions: healthMap({ nyc: { heartbeatAt: 1_000, functionLoads: new Map([['acme/api', { idle: 0, busy: 3, coldStartMs: 300 }]]) } }) });
    const d = latency.decide('api-acme.telnyxcompute.com', LONDON, snapshot, 1_010);
    expect(d).toMatchObject({ reason: 'cold-nearest', candidates: ['fra', 'nyc', 'atl', 'lax', 'syd'] });
    // Its own request (to fra) ending frees nothing in nyc.
    if (d.ok) latency.finished(d, snapshot, 1_020);
    expect(latency.decide('api-acme.telnyxcompute.com', LONDON, snapshot, 1_030)).toMatchObject({ reason: 'cold-nearest' });
  });

  it('names the cold region it passed over for a pre-warm, at most once per function and region per interval', () => {
    const latency = decider({ routing: 'latency', prewarmIntervalMs: 2_000 });
    const first = latency.decide('api-acme.telnyxcompute.com', LONDON, warmIn(5), 10_000);
    expect(first).toMatchObject({ reason: 'warm:nyc', prewarm: 'fra' });
    const again = latency.decide('api-acme.telnyxcompute.com', LONDON, warmIn(5), 11_000);
    expect(again).toMatchObject({ reason: 'warm:nyc' });
    expect(again.ok && again.prewarm).toBeUndefined();
    expect(latency.decide('api-acme.telnyxcompute.com', LONDON, warmIn(5), 12_000)).toMatchObject({ prewarm: 'fra' });
    // Without an interval (no pre-warm token configured) it never asks; nor for a cold-nearest pick.
    const off = decider({ routing: 'latency' }).decide('api-acme.telnyxcompute.com', LONDON, warmIn(5), 10_000);
    expect(off.ok && off.prewarm).toBeUndefined();
    const cold = latency.decide('api-acme.telnyxcompute.com', LONDON, warmIn(0), 20_000);
    expect(cold).toMatchObject({ reason: 'cold-nearest' });
    expect(cold.ok && cold.prewarm).toBeUndefined();
  });

  it('asks for a pre-warm again after the wall clock stepped back, not only once it has caught up with the last ask', () => {
    // Seen in review: asked at 10 s, the clock stepped back an hour: no pre-warm of fra for an hour,
    // every request passing over it paying the cold start.
    const latency = decider({ routing: 'latency', prewarmIntervalMs: 2_000 });
    expect(latency.decide('api-acme.telnyxcompute.com', LONDON, warmIn(5), 3_610_000)).toMatchObject({ prewarm: 'fra' });
    expect(latency.decide('api-acme.telnyxcompute.com', LONDON, warmIn(5), 10_000)).toMatchObject({ prewarm: 'fra' });
    const soon = latency.decide('api-acme.telnyxcompute.com', LONDON, warmIn(5), 11_000);
    expect(soon.ok && soon.prewarm).toBeUndefined();
  });

  it('does not count the container its own pre-warm is starting as idle once the report that caught it settles', () => {
    // London's request goes to New York (warm) and Frankfurt is asked to pre-warm (cold start 250 ms).
    // Frankfurt reports 100 ms later: the container still starting, counted busy. Its median request
    // is 5 ms, but that container is not a request about to end: until it has started, a London
    // request sent there finds no idle container and cold-starts a second one.
    const latency = decider({ routing: 'latency', prewarmIntervalMs: 2_000 });
    const host = 'api-acme.telnyxcompute.com';
    const nyc = { heartbeatAt: 10_000, latencyMs: { p50: 5, p99: 9 }, functionLoads: new Map([['acme/api', { idle: 3, busy: 0, coldStartMs: 300 }]]) };
    expect(latency.decide(host, LONDON, snapshotWith({ functions: directory(api), regions: healthMap({ nyc }) }), 10_010)).toMatchObject({ reason: 'warm:nyc', prewarm: 'fra' });
    const starting = snapshotWith({
      functions: directory(api),
      regions: healthMap({ nyc, fra: { heartbeatAt: 10_100, latencyMs: { p50: 5, p99: 9 }, functionLoads: new Map([['acme/api', { idle: 0, busy: 1, coldStartMs: 250 }]]) } }),
    });
    expect(latency.decide(host, LONDON, starting, 10_110)).toMatchObject({ reason: 'warm:nyc', sent: { region: 'nyc' } });
    // Once it has had its cold start's time, a busy container there settles as before (another router's request, most likely over).
    expect(latency.decide(host, LONDON, starting, 10_300)).toMatchObject({ reason: 'nearest', sent: { region: 'fra' } });
  });

  it('asks no pre-warm for a function missing from the directory (forwarded with a stand-in record)', () => {
    const latency = decider({ routing: 'latency', prewarmIntervalMs: 2_000 });
    const snapshot = snapshotWith({ regions: healthMap({ nyc: { heartbeatAt: 1_000, functionLoads: new Map([['acme/other', { idle: 1, busy: 0, coldStartMs: 300 }]]) } }) });
    const d = latency.decide('other-acme.telnyxcompute.com', LONDON, snapshot, 10_000);
    expect(d).toMatchObject({ ok: true, reason: 'warm:nyc' });
    expect(d.ok && d.prewarm).toBeUndefined();
  });

  it('keeps readiness\'s reason when the nearest region is warm itself (warm:<r> means a cold start avoided)', () => {
    const latency = decider({ routing: 'latency' });
    const both = snapshotWith({
      functions: directory(api),
      regions: healthMap({
        fra: { heartbeatAt: 1_000, functionLoads: new Map([['acme/api', { idle: 1, busy: 0, coldStartMs: 300 }]]) },
        nyc: { heartbeatAt: 1_000, functionLoads: new Map([['acme/api', { idle: 4, busy: 0, coldStartMs: 300 }]]) },
      }),
    });
    expect(latency.decide('api-acme.telnyxcompute.com', LONDON, both, 0)).toMatchObject({ candidates: ['fra', 'nyc', 'atl', 'lax', 'syd'], reason: 'nearest' });
  });

  it('neither says warm:<r> nor pre-warms when the region readiness ranked first (weighted up) had an idle container itself', () => {
    // New York is weighted 10: readiness ranks it first for a London client (5,570 km / 10 < 640 km).
    // Both it and Frankfurt hold idle containers; the estimate (distance alone) prefers Frankfurt.
    // No cold start is avoided there, and New York, with three idle containers, needs none started.
    const latency = decider({ routing: 'latency', prewarmIntervalMs: 2_000 });
    const bothWarm = snapshotWith({
      functions: directory(api),
      regions: healthMap({
        nyc: { weight: 10, heartbeatAt: 1_000, functionLoads: new Map([['acme/api', { idle: 3, busy: 0, coldStartMs: 300 }]]) },
        fra: { heartbeatAt: 1_000, functionLoads: new Map([['acme/api', { idle: 3, busy: 0, coldStartMs: 300 }]]) },
      }),
    });
    const d = latency.decide('api-acme.telnyxcompute.com', LONDON, bothWarm, 1_010);
    expect(d).toMatchObject({ ok: true, candidates: ['fra', 'nyc', 'atl', 'lax', 'syd'], reason: 'nearest', sent: { region: 'fra' } });
    expect(d.ok && d.prewarm).toBeUndefined();
    // Weighted up and cold, it is passed over for a warm region as usual: warm:<r>, and a pre-warm.
    const nycCold = snapshotWith({ functions: directory(api), regions: healthMap({ nyc: { weight: 10 }, fra: bothWarm.regions.get('fra')! }) });
    expect(latency.decide('api-acme.telnyxcompute.com', LONDON, nycCold, 1_020)).toMatchObject({ reason: 'warm:fra', prewarm: 'nyc' });
  });

  it('never overrides placement or residency: an org held to Frankfurt stays there, warm or not', () => {
    const latency = decider({ routing: 'latency' });
    const held = warmIn(3, 1_000, { residency: new Map([['acme', new Set(['fra'])]]) });
    expect(latency.decide('api-acme.telnyxcompute.com', LONDON, held, 0)).toMatchObject({ ok: true, candidates: ['fra'] });
  });

  it('does not move a request to a weight-0 region for its warm containers: weight 0 is a last resort', () => {
    // An operator weights New York to 0 to move traffic off it; it still holds idle containers
    // from before. Frankfurt is cold, Atlanta holds one idle container too.
    const latency = decider({ routing: 'latency' });
    const host = 'api-acme.telnyxcompute.com';
    const nycAtZero = (atlIdle: number) =>
      snapshotWith({
        functions: directory(api),
        regions: healthMap({
          nyc: { weight: 0, heartbeatAt: 1_000, functionLoads: new Map([['acme/api', { idle: 5, busy: 0, coldStartMs: 300 }]]) },
          ...(atlIdle > 0 ? { atl: { heartbeatAt: 1_000, functionLoads: new Map([['acme/api', { idle: atlIdle, busy: 0, coldStartMs: 300 }]]) } } : {}),
        }),
      });
    // Nothing warm among the weighted regions: the nearest of them cold-starts, New York stays last.
    expect(latency.decide(host, LONDON, nycAtZero(0), 1_010)).toMatchObject({ ok: true, candidates: ['fra', 'atl', 'lax', 'syd', 'nyc'] });
    // A weighted warm region is still preferred to a cold start.
    expect(latency.decide(host, LONDON, nycAtZero(1), 1_010)).toMatchObject({ ok: true, candidates: ['atl', 'fra', 'lax', 'syd', 'nyc'], reason: 'warm:atl' });
    // Where every region left is weighted 0, the warm one of them is still the better last resort.
    const onlyZero = snapshotWith({
      functions: directory(api),
      regions: healthMap({
        fra: { weight: 0 },
        atl: { status: 'down' },
        lax: { status: 'down' },
        syd: { status: 'down' },
        nyc: { weight: 0, heartbeatAt: 1_000, functionLoads: new Map([['acme/api', { idle: 1, busy: 0, coldStartMs: 300 }]]) },
      }),
    });
    expect(latency.decide(host, LONDON, onlyZero, 1_010)).toMatchObject({ ok: true, candidates: ['nyc', 'fra'], reason: 'warm:nyc' });
  });

  it('lists each region\'s estimate for explain', () => {
    const estimates: import('../../src/routing/estimate-answer.js').AnswerEstimate[] = [];
    decider({ routing: 'latency' }).decide('api-acme.telnyxcompute.com', LONDON, warmIn(1), 0, undefined, estimates);
    expect(estimates[0]).toMatchObject({ region: 'nyc', idleWarm: 1, expectedMs: expect.closeTo(55.7, 0) });
    expect(estimates.map((e) => e.region)).toEqual(['nyc', 'fra', 'atl', 'lax', 'syd']);
  });
});

describe('createRouteDecider, deadline admission', () => {
  const LONDON = '198.51.100.1';
  const host = 'api-acme.telnyxcompute.com';
  const tierTimeoutMs = { standard: 30_000, extended: 60_000 };
  /** Every region at `inFlight` requests (hard limit 10) with a median request time of `p50` ms. */
  const full = (inFlight: number, p50: number, records = directory(fnRecord('acme', 'api'))) =>
    snapshotWith({
      functions: records,
      regions: healthMap(Object.fromEntries(['atl', 'nyc', 'lax', 'fra', 'syd'].map((id) => [id, { inFlight, latencyMs: { p50, p99: p50 * 2 } }]))),
    });

  it.each(['nearest', 'latency'] as const)('refuses at once (%s routing) what every full region could only time out, with when to retry', (routing) => {
    const d = decider({ routing, tierTimeoutMs });
    // 400 in flight on 10 containers of 1 s requests: about 39 s of queue anywhere, past 30 s.
    expect(d.decide(host, LONDON, full(400, 1_000), 0)).toMatchObject({ ok: false, code: 'deadline_unreachable', retryAfterS: 10, message: expect.stringContaining('past its 30 s limit') });
    // The extended tier's 60 s fits it; a shorter queue fits the standard tier.
    expect(d.decide(host, LONDON, full(400, 1_000, directory(fnRecord('acme', 'api', { tier: 'extended' }))), 0)).toMatchObject({ ok: true, candidates: ['fra', 'nyc', 'atl', 'lax', 'syd'] });
    expect(d.decide(host, LONDON, full(200, 1_000), 0)).toMatchObject({ ok: true });
  });

  it('admits when one region has room, when nothing is known of request times, and when it is not asked to', () => {
    const oneFree = snapshotWith({
      functions: directory(fnRecord('acme', 'api')),
      regions: healthMap({ ...Object.fromEntries(['atl', 'nyc', 'lax', 'fra'].map((id) => [id, { inFlight: 400, latencyMs: { p50: 1_000, p99: 2_000 } }])), syd: { inFlight: 2 } }),
    });
    expect(decider({ tierTimeoutMs }).decide(host, LONDON, oneFree, 0)).toMatchObject({ ok: true, candidates: ['syd'] });
    expect(decider({ tierTimeoutMs }).decide(host, LONDON, full(400, 0), 0)).toMatchObject({ ok: true });
    expect(decider().decide(host, LONDON, full(400, 1_000), 0)).toMatchObject({ ok: true });
  });

  it.each(['nearest', 'latency'] as const)('sends first (%s routing) the region it admitted the request on, when a nearer full one is expected past the limit', (routing) => {
    // Every region full; fra (nearest London) and the others about 30.8 s of queue, nyc 0.1 s.
    const snapshot = snapshotWith({
      functions: directory(fnRecord('acme', 'api')),
      regions: healthMap(
        Object.fromEntries(['atl', 'nyc', 'lax', 'fra', 'syd'].map((id) => [id, id === 'nyc' ? { inFlight: 10, serviceMs: 1_000, latencyMs: { p50: 1_000, p99: 2_000 } } : { inFlight: 20, serviceMs: 28_000, latencyMs: { p50: 28_000, p99: 30_000 } }])),
      ),
    });
    expect(decider({ routing, tierTimeoutMs }).decide(host, LONDON, snapshot, 0)).toMatchObject({ ok: true, candidates: ['nyc', 'fra', 'atl', 'lax', 'syd'], reason: 'deadline:nyc' });
  });

  it('reads the queue in service times where a region reports one, in median request times where it does not', () => {
    // 400 in flight on 10 containers. A median request time of 10 s that is mostly queueing (each
    // request is served in 500 ms): about 20 s of queue, which fits; the median alone says 390 s.
    const withService = (serviceMs?: number) =>
      snapshotWith({
        functions: directory(fnRecord('acme', 'api')),
        regions: healthMap(Object.fromEntries(['atl', 'nyc', 'lax', 'fra', 'syd'].map((id) => [id, { inFlight: 400, latencyMs: { p50: 10_000, p99: 20_000 }, ...(serviceMs === undefined ? {} : { serviceMs }) }]))),
      });
    expect(decider({ tierTimeoutMs }).decide(host, LONDON, withService(500), 0)).toMatchObject({ ok: true });
    expect(decider({ tierTimeoutMs }).decide(host, LONDON, withService(), 0)).toMatchObject({ ok: false, code: 'deadline_unreachable', retryAfterS: 60 });
    // A service time that says the queue is long is believed too (1 s: about 39 s of queue).
    expect(decider({ tierTimeoutMs }).decide(host, LONDON, withService(1_000), 0)).toMatchObject({ ok: false, code: 'deadline_unreachable', retryAfterS: 10 });
  });
});

describe('createRouteDecider, cold-start hedging', () => {
  const LONDON = '198.51.100.1';
  const host = 'api-acme.telnyxcompute.com';
  const hedged = fnRecord('acme', 'api', { hedge: true });
  /** Idle warm containers of acme/api per region (reported at 1,000). */
  const warmth = (idle: Partial<Record<string, number>>, record = hedged, patches: Parameters<typeof healthMap>[0] = {}) =>
    snapshotWith({
      functions: directory(record),
      regions: healthMap(
        Object.fromEntries(
          ['atl', 'nyc', 'lax', 'fra', 'syd'].map((id) => [id, { heartbeatAt: 1_000, ...(idle[id] === undefined ? {} : { functionLoads: new Map([['acme/api', { idle: idle[id]!, busy: 0, coldStartMs: 300 }]]) }), ...patches[id] }]),
        ),
      ),
    });

  it('races a cold pick from the first region with an idle warm container, after the pick\'s round trip plus the hedge delay', () => {
    // Nearest routing picks Frankfurt (640 km: 6 ms) though it is cold; New York has one idle.
    expect(decider().decide(host, LONDON, warmth({ nyc: 1, atl: 3 }), 0)).toMatchObject({ candidates: ['fra', 'nyc', 'atl', 'lax', 'syd'], hedge: { region: 'nyc', afterMs: 6 + 50 } });
    expect(decider({ hedgeDelayMs: 120 }).decide(host, LONDON, warmth({ atl: 3 }), 0)).toMatchObject({ hedge: { region: 'atl', afterMs: 126 } });
  });

  it.each<[string, Partial<Record<string, number>>, FunctionRecord, Parameters<typeof healthMap>[0]]>([
    ['the pick is warm itself', { fra: 1, nyc: 4 }, hedged, {}],
    ['nothing is warm anywhere', {}, hedged, {}],
    ['the function has not opted in', { nyc: 2 }, fnRecord('acme', 'api'), {}],
    ['the only warm region is over its soft limit (spill, not a place to add load)', { nyc: 2 }, hedged, { nyc: { inFlight: 9 } }],
  ])('sends no hedge when %s', (_what, idle, record, patches) => {
    const d = decider().decide(host, LONDON, warmth(idle, record, patches), 0);
    expect(d.ok && d.hedge).toBeUndefined();
  });

  it('does not race a request from a weight-0 region (a last resort), but from a weighted warm one', () => {
    const zero = decider().decide(host, LONDON, warmth({ nyc: 1 }, hedged, { nyc: { weight: 0 } }), 0);
    expect(zero).toMatchObject({ candidates: ['fra', 'atl', 'lax', 'syd', 'nyc'] });
    expect(zero.ok && zero.hedge).toBeUndefined();
    expect(decider().decide(host, LONDON, warmth({ nyc: 1, atl: 1 }, hedged, { nyc: { weight: 0 } }), 0)).toMatchObject({ hedge: { region: 'atl' } });
  });

  it('shows the hedge to explain (a trace) without counting the request as sent', async () => {
    const { describeDecision } = await import('../../src/routing/describe-decision.js');
    const explained = describeDecision(decider(), warmth({ nyc: 1 }), host, LONDON, 0);
    expect(explained).toMatchObject({ ok: true, body: { region: 'fra', hedge: { region: 'nyc', afterMs: 56 } } });
    // Sends are counted under latency routing only: there, nyc's one idle container draws London's
    // request. Explained ten times, it is still there for a real request, which takes it.
    const d = decider({ routing: 'latency' });
    for (let i = 0; i < 10; i++) expect(describeDecision(d, warmth({ nyc: 1 }), host, LONDON, 0)).toMatchObject({ ok: true, body: { region: 'nyc' } });
    expect(d.decide(host, LONDON, warmth({ nyc: 1 }), 0)).toMatchObject({ reason: 'warm:nyc', sent: { region: 'nyc' } });
    // Counted: the next real request finds it taken.
    expect(d.decide(host, LONDON, warmth({ nyc: 1 }), 0)).not.toMatchObject({ reason: 'warm:nyc' });
  });

  it('hedges under latency routing too, when the estimate still picks a cold region', () => {
    // At 10 ms per 100 km, Sydney's idle container is 1.7 s away: Frankfurt cold-starts, Sydney races it.
    const d = decider({ routing: 'latency', msPer100Km: 10 }).decide(host, LONDON, warmth({ syd: 2 }), 0);
    expect(d).toMatchObject({ reason: 'cold-nearest', candidates: ['fra', 'nyc', 'atl', 'lax', 'syd'], hedge: { region: 'syd', afterMs: 64 + 50 } });
  });
});

describe('createRouteDecider, --workers N: each worker\'s share of idle containers', () => {
  const LONDON = '198.51.100.1';
  const host = 'api-acme.telnyxcompute.com';
  const warmInNyc = (idle: number) =>
    snapshotWith({
      functions: directory(fnRecord('acme', 'api')),
      regions: healthMap({ nyc: { heartbeatAt: 1_000, functionLoads: new Map([['acme/api', { idle, busy: 0, coldStartMs: 300 }]]) } }),
    });
  /** How many requests in a row one worker sends to nyc's idle containers before it goes cold-nearest. */
  const warmRun = (slot: number, of: number, idle: number) => {
    const d = decider({ routing: 'latency', idleShare: { slot, of } });
    const snapshot = warmInNyc(idle); // one report: the worker's own sends count against it
    let warm = 0;
    while (warm <= idle && (d.decide(host, LONDON, snapshot, 0) as { reason?: string }).reason === 'warm:nyc') warm++;
    return warm;
  };

  it.each([
    [1, 2, [1, 0]],
    [3, 2, [2, 1]],
    [4, 2, [2, 2]],
    [5, 3, [2, 2, 1]],
    [0, 2, [0, 0]],
  ])('%i idle over %i workers: shares %j, adding up to the region\'s count', (idle, of, shares) => {
    const seen = Array.from({ length: of }, (_, slot) => warmRun(slot, of, idle));
    expect(seen).toEqual(shares);
    expect(seen.reduce((a, b) => a + b, 0)).toBe(idle);
    for (let slot = 0; slot < of; slot++) expect(idleShare(idle, { slot, of })).toBe(shares[slot]);
  });

  it('splits the containers a report caught busy too: once they settle, the workers count 3 busy as 2 + 1, not 3 each', () => {
    // nyc: nothing idle, 3 busy (other routers' requests), median request 20 ms; asked 30 ms after the report.
    const snapshot = snapshotWith({
      functions: directory(fnRecord('acme', 'api')),
      regions: healthMap({ nyc: { heartbeatAt: 1_000, latencyMs: { p50: 20, p99: 40 }, functionLoads: new Map([['acme/api', { idle: 0, busy: 3, coldStartMs: 300 }]]) } }),
    });
    const settledRun = (slot: number) => {
      const d = decider({ routing: 'latency', idleShare: { slot, of: 2 } });
      let warm = 0;
      while (warm <= 3 && (d.decide(host, LONDON, snapshot, 1_030) as { reason?: string }).reason === 'warm:nyc') warm++;
      return warm;
    };
    expect([settledRun(0), settledRun(1)]).toEqual([2, 1]);
    // Before they settle (10 ms after the report), nothing is idle for either worker.
    const early = decider({ routing: 'latency', idleShare: { slot: 0, of: 2 } });
    expect(early.decide(host, LONDON, snapshot, 1_010)).toMatchObject({ reason: 'cold-nearest' });
  });

  it('settles a report\'s busy containers after the region\'s service time when it reports one, not its median request time', () => {
    // nyc: nothing idle, 3 busy; requests there take 2 s from arrival (queued) but hold a container 20 ms.
    const snapshot = snapshotWith({
      functions: directory(fnRecord('acme', 'api')),
      regions: healthMap({ nyc: { heartbeatAt: 1_000, latencyMs: { p50: 2_000, p99: 4_000 }, serviceMs: 20, functionLoads: new Map([['acme/api', { idle: 0, busy: 3, coldStartMs: 300 }]]) } }),
    });
    expect(decider({ routing: 'latency' }).decide(host, LONDON, snapshot, 1_030)).toMatchObject({ reason: 'warm:nyc' });
    expect(decider({ routing: 'latency' }).decide(host, LONDON, snapshot, 1_010)).toMatchObject({ reason: 'cold-nearest' });
  });
});
