import { describe, expect, it } from 'vitest';
import type { RegionId } from '../../src/core/types.js';
import { pickRegions, type RegionTrace } from '../../src/routing/pick-region.js';
import { rankRegions } from '../../src/routing/rank-regions.js';
import { healthMap, REGIONS, type HealthPatch } from '../support/regions.js';

// From Chicago the distance order is atl, nyc, lax, fra, syd.
const CHICAGO = rankRegions(REGIONS, 41.8781, -87.6298, () => 1);
const NOW = 1_800_000_000_000;

function pick(
  patches: Record<RegionId, HealthPatch> = {},
  placement: { deployedIn?: RegionId[]; allowedIn?: RegionId[] } = {},
) {
  return pickRegions({
    ranking: CHICAGO,
    health: healthMap(patches),
    deployedIn: placement.deployedIn ? new Set(placement.deployedIn) : null,
    allowedIn: placement.allowedIn ? new Set(placement.allowedIn) : undefined,
    nowMs: NOW,
    anchor: 'nearest',
  });
}

describe('pickRegions', () => {
  it.each<[string, Record<RegionId, HealthPatch>, { deployedIn?: RegionId[]; allowedIn?: RegionId[] }, RegionId[], string]>([
    ['all healthy: nearest first', {}, {}, ['atl', 'nyc', 'lax', 'fra', 'syd'], 'nearest'],
    ['nearest down', { atl: { status: 'down' } }, {}, ['nyc', 'lax', 'fra', 'syd'], 'failover:atl-down'],
    ['nearest draining by shutdown', { atl: { status: 'draining' } }, {}, ['nyc', 'lax', 'fra', 'syd'], 'failover:atl-draining'],
    ['nearest drained by an operator although healthy', { atl: { drained: true } }, {}, ['nyc', 'lax', 'fra', 'syd'], 'failover:atl-draining'],
    ['nearest ejected', { atl: { ejectedUntil: NOW + 1 } }, {}, ['nyc', 'lax', 'fra', 'syd'], 'failover:atl-ejected'],
    ['an ejection that has expired', { atl: { ejectedUntil: NOW } }, {}, ['atl', 'nyc', 'lax', 'fra', 'syd'], 'nearest'],
    ['nearest at its soft limit spills but stays a candidate', { atl: { inFlight: 8 } }, {}, ['nyc', 'lax', 'fra', 'syd', 'atl'], 'spill:atl-soft-limit'],
    ['nearest degraded goes after healthy ones', { atl: { status: 'degraded' } }, {}, ['nyc', 'lax', 'fra', 'syd', 'atl'], 'failover:atl-degraded'],
    ['nearest at its hard limit is not a candidate', { atl: { inFlight: 10 } }, {}, ['nyc', 'lax', 'fra', 'syd'], 'spill:atl-hard-limit'],
    [
      'soft-limit regions keep distance order after the free ones',
      { atl: { inFlight: 9 }, nyc: { inFlight: 8 } },
      {},
      ['lax', 'fra', 'syd', 'atl', 'nyc'],
      'spill:atl-soft-limit',
    ],
    [
      'every region at its soft limit: nearest still wins',
      { atl: { inFlight: 8 }, nyc: { inFlight: 8 }, lax: { inFlight: 8 }, fra: { inFlight: 8 }, syd: { inFlight: 8 } },
      {},
      ['atl', 'nyc', 'lax', 'fra', 'syd'],
      'nearest',
    ],
    [
      'every region at its hard limit: all of them, nearest first',
      { atl: { inFlight: 10 }, nyc: { inFlight: 12 }, lax: { inFlight: 10 }, fra: { inFlight: 10 }, syd: { inFlight: 10 } },
      {},
      ['atl', 'nyc', 'lax', 'fra', 'syd'],
      'nearest',
    ],
    [
      'a hard-limited region is skipped while any other has room',
      { atl: { inFlight: 10 }, nyc: { inFlight: 10 }, lax: { inFlight: 10 }, fra: { inFlight: 10 } },
      {},
      ['syd'],
      'spill:atl-hard-limit',
    ],
    ['residency excludes the nearest', {}, { allowedIn: ['fra', 'syd'] }, ['fra', 'syd'], 'residency'],
    ['not deployed in the nearest', {}, { deployedIn: ['lax', 'syd'] }, ['lax', 'syd'], 'not-deployed'],
    ['residency and deployment intersect', {}, { deployedIn: ['nyc', 'fra'], allowedIn: ['fra', 'syd'] }, ['fra'], 'residency'],
    [
      'panic: nothing healthy → every placement-eligible region in distance order',
      { atl: { status: 'down' }, nyc: { status: 'down' }, lax: { drained: true }, fra: { ejectedUntil: NOW + 5 }, syd: { status: 'down' } },
      {},
      ['atl', 'nyc', 'lax', 'fra', 'syd'],
      'panic',
    ],
    [
      'panic still honours residency',
      { atl: { status: 'down' }, nyc: { status: 'down' }, lax: { status: 'down' }, fra: { status: 'down' }, syd: { status: 'down' } },
      { allowedIn: ['fra', 'syd'] },
      ['fra', 'syd'],
      'panic',
    ],
    ['no region the org may use has the function', {}, { deployedIn: ['atl'], allowedIn: ['fra'] }, [], 'residency'],
  ])('%s', (_name, patches, placement, candidates, reason) => {
    expect(pick(patches, placement)).toMatchObject({ candidates, reason });
  });

  it('says how many leading candidates are below their soft limit (what latency routing may reorder)', () => {
    const spill = pickRegions({ ranking: CHICAGO, health: healthMap({ atl: { inFlight: 8 } }), deployedIn: null, allowedIn: undefined, nowMs: NOW, anchor: 'nearest' });
    expect(spill).toMatchObject({ candidates: ['nyc', 'lax', 'fra', 'syd', 'atl'], belowSoft: 4 });
    const panic = pickRegions({ ranking: CHICAGO, health: healthMap({ atl: { status: 'down' }, nyc: { status: 'down' }, lax: { status: 'down' }, fra: { status: 'down' }, syd: { status: 'down' } }), deployedIn: null, allowedIn: undefined, nowMs: NOW, anchor: 'nearest' });
    expect(panic).toMatchObject({ reason: 'panic', belowSoft: 0 });
  });

  it('treats a region missing from the snapshot as down', () => {
    const health = healthMap();
    health.delete('atl');
    const result = pickRegions({ ranking: CHICAGO, health, deployedIn: null, allowedIn: undefined, nowMs: NOW, anchor: 'nearest' });
    expect(result).toMatchObject({ candidates: ['nyc', 'lax', 'fra', 'syd'], reason: 'failover:atl-down' });
  });

  it('reports the fallback anchor when the first-ranked region is chosen', () => {
    const result = pickRegions({ ranking: CHICAGO, health: healthMap(), deployedIn: null, allowedIn: undefined, nowMs: NOW, anchor: 'fallback:no-geo' });
    expect(result.reason).toBe('fallback:no-geo');
  });

  it('traces every region with its distance, status and why it was skipped or demoted', () => {
    const trace: RegionTrace[] = [];
    pickRegions({
      ranking: CHICAGO,
      health: healthMap({ atl: { status: 'down' }, nyc: { inFlight: 9 } }),
      deployedIn: new Set(['atl', 'nyc', 'lax', 'fra']),
      allowedIn: undefined,
      nowMs: NOW,
      anchor: 'nearest',
      trace,
    });
    expect(trace.map((t) => [t.region, t.status, t.skipped, t.demoted])).toEqual([
      ['atl', 'down', 'down', undefined],
      ['nyc', 'up', undefined, 'soft-limit'],
      ['lax', 'up', undefined, undefined],
      ['fra', 'up', undefined, undefined],
      ['syd', 'up', 'not-deployed', undefined],
    ]);
    expect(trace[0]!.distanceKm).toBe(Math.round(CHICAGO[0]!.distanceKm));
  });
  // Soft 8, hard 10 per region. The registry's count lags a heartbeat and never sees requests
  // stuck at this router; the router's own outstanding count (dispatched + queued) is the floor.
  it.each<[string, number, Record<RegionId, number>, RegionId[], string]>([
    ['own load below soft: nearest', 0, { atl: 7 }, ['atl', 'nyc', 'lax', 'fra', 'syd'], 'nearest'],
    ['own load at soft spills though the region reports 0', 0, { atl: 8 }, ['nyc', 'lax', 'fra', 'syd', 'atl'], 'spill:atl-soft-limit'],
    ['own load at hard drops the region though it reports 0', 0, { atl: 10 }, ['nyc', 'lax', 'fra', 'syd'], 'spill:atl-hard-limit'],
    ['a higher report wins over a lower own count', 10, { atl: 1 }, ['nyc', 'lax', 'fra', 'syd'], 'spill:atl-hard-limit'],
  ])('load is the larger of reported and own: %s', (_name, reported, own, candidates, reason) => {
    const result = pickRegions({
      ranking: CHICAGO,
      health: healthMap({ atl: { inFlight: reported } }),
      deployedIn: null,
      allowedIn: undefined,
      nowMs: NOW,
      anchor: 'nearest',
      localLoad: (id) => own[id] ?? 0,
    });
    expect(result).toMatchObject({ candidates, reason });
  });

  // The request path passes health and its own load by a ranked region's index (its place in the
  // configured list), not by id. From London and Sydney the distance order is not the list's.
  describe('by index, as the request path reads them: the same answers as by id', () => {
    const RANKINGS = {
      chicago: CHICAGO,
      london: rankRegions(REGIONS, 51.5074, -0.1278, () => 1),
      sydney: rankRegions(REGIONS, -33.8688, 151.2093, (id) => (id === 'lax' ? 3 : 1)),
    };
    const CASES: [string, Record<RegionId, HealthPatch>, Record<RegionId, number>, { deployedIn?: RegionId[]; allowedIn?: RegionId[] }][] = [
      ['all healthy and idle', {}, {}, {}],
      ['one down, one draining, one ejected', { fra: { status: 'down' }, nyc: { drained: true }, syd: { ejectedUntil: NOW + 1 } }, {}, {}],
      ['own loads at soft and hard limits', {}, { fra: 8, nyc: 10, syd: 9 }, {}],
      ['reported loads beside own ones', { atl: { inFlight: 8 }, lax: { inFlight: 10 } }, { atl: 2, syd: 8 }, {}],
      ['degraded', { fra: { status: 'degraded' }, syd: { status: 'degraded' } }, {}, {}],
      ['every region full', {}, { atl: 10, nyc: 10, lax: 10, fra: 10, syd: 11 }, {}],
      ['nothing healthy: panic', { atl: { status: 'down' }, nyc: { status: 'down' }, lax: { status: 'down' }, fra: { status: 'down' }, syd: { status: 'down' } }, {}, { allowedIn: ['fra', 'syd', 'nyc'] }],
      ['placement', { nyc: { status: 'down' } }, { lax: 9 }, { deployedIn: ['nyc', 'lax', 'syd'], allowedIn: ['nyc', 'lax', 'fra'] }],
    ];
    const cases = Object.entries(RANKINGS).flatMap(([from, ranking]) => CASES.map(([name, patches, own, placement]) => [`from ${from}: ${name}`, ranking, patches, own, placement] as const));

    it.each(cases)('%s', (_name, ranking, patches, own, placement) => {
      const health = healthMap(patches);
      health.delete('lax'); // and one region nobody reports
      const common = {
        ranking,
        deployedIn: placement.deployedIn ? new Set(placement.deployedIn) : null,
        allowedIn: placement.allowedIn ? new Set(placement.allowedIn) : undefined,
        nowMs: NOW,
        anchor: 'nearest' as const,
      };
      const byIdTrace: RegionTrace[] = [];
      const byId = pickRegions({ ...common, health, localLoad: (id) => own[id] ?? 0, trace: byIdTrace });
      const byIndexTrace: RegionTrace[] = [];
      const byIndex = pickRegions({
        ...common,
        // Given the map too, as the decider does; with healthAt it must not be read.
        health: new Map(),
        healthAt: REGIONS.map((r) => health.get(r.id)),
        localLoad: () => {
          throw new Error('read by id although localLoadAt was given');
        },
        localLoadAt: (index) => own[REGIONS[index]!.id] ?? 0,
        trace: byIndexTrace,
      });
      expect(byIndex).toEqual(byId);
      expect(byIndexTrace).toEqual(byIdTrace);
    });

    it('reads each ranked region at its place in the list, not at its place in the ranking', () => {
      const london = RANKINGS.london;
      expect(london.map((r) => r.region.id)).not.toEqual(REGIONS.map((r) => r.id));
      for (const r of london) expect(REGIONS[r.index]).toBe(r.region);
      // Only Frankfurt, the nearest to London, is down: read at the wrong place, another region would be.
      const healthAt = REGIONS.map((r) => ({ ...healthMap().get(r.id)!, ...(r.id === 'fra' ? { status: 'down' as const } : {}) }));
      const result = pickRegions({ ranking: london, health: new Map(), healthAt, deployedIn: null, allowedIn: undefined, nowMs: NOW, anchor: 'nearest', localLoadAt: () => 0 });
      expect(result.reason).toBe('failover:fra-down');
      expect(result.candidates).toEqual(london.map((r) => r.region.id).filter((id) => id !== 'fra'));
    });
  });
});
