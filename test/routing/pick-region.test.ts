import { describe, expect, it } from 'vitest';
import type { RegionId } from '../../src/core/types.js';
import { pickRegions, type RegionTrace } from '../../src/routing/pick-region.js';
import { rankRegions } from '../../src/routing/rank-regions.js';
import type { RegionHealth } from '../../src/core/types.js';
import { healthMap, REGIONS, type HealthPatch } from '../support/regions.js';

// From Chicago the distance order is atl, nyc, lax, fra, syd.
const CHICAGO = rankRegions(REGIONS, 41.8781, -87.6298, () => 1);
const NOW = 1_800_000_000_000;

/** Health by a region's place in REGIONS, as the decider hands it over. */
const byPlace = (health: ReadonlyMap<RegionId, RegionHealth>) => REGIONS.map((r) => health.get(r.id));

function pick(
  patches: Record<RegionId, HealthPatch> = {},
  placement: { deployedIn?: RegionId[]; allowedIn?: RegionId[] } = {},
) {
  return pickRegions({
    ranking: CHICAGO,
    healthAt: byPlace(healthMap(patches)),
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
    const spill = pickRegions({ ranking: CHICAGO, healthAt: byPlace(healthMap({ atl: { inFlight: 8 } })), deployedIn: null, allowedIn: undefined, nowMs: NOW, anchor: 'nearest' });
    expect(spill).toMatchObject({ candidates: ['nyc', 'lax', 'fra', 'syd', 'atl'], belowSoft: 4 });
    const panic = pickRegions({ ranking: CHICAGO, healthAt: byPlace(healthMap({ atl: { status: 'down' }, nyc: { status: 'down' }, lax: { status: 'down' }, fra: { status: 'down' }, syd: { status: 'down' } })), deployedIn: null, allowedIn: undefined, nowMs: NOW, anchor: 'nearest' });
    expect(panic).toMatchObject({ reason: 'panic', belowSoft: 0 });
  });

  it('treats a region missing from the snapshot as down', () => {
    const health = healthMap();
    health.delete('atl');
    const result = pickRegions({ ranking: CHICAGO, healthAt: byPlace(health), deployedIn: null, allowedIn: undefined, nowMs: NOW, anchor: 'nearest' });
    expect(result).toMatchObject({ candidates: ['nyc', 'lax', 'fra', 'syd'], reason: 'failover:atl-down' });
  });

  it('reports the fallback anchor when the first-ranked region is chosen', () => {
    const result = pickRegions({ ranking: CHICAGO, healthAt: byPlace(healthMap()), deployedIn: null, allowedIn: undefined, nowMs: NOW, anchor: 'fallback:no-geo' });
    expect(result.reason).toBe('fallback:no-geo');
  });

  it('traces every region with its distance, status and why it was skipped or demoted', () => {
    const trace: RegionTrace[] = [];
    pickRegions({
      ranking: CHICAGO,
      healthAt: byPlace(healthMap({ atl: { status: 'down' }, nyc: { inFlight: 9 } })),
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
      healthAt: byPlace(healthMap({ atl: { inFlight: reported } })),
      deployedIn: null,
      allowedIn: undefined,
      nowMs: NOW,
      anchor: 'nearest',
      localLoadAt: (index) => own[REGIONS[index]!.id] ?? 0,
    });
    expect(result).toMatchObject({ candidates, reason });
  });

  // Health and own load are read by a ranked region's index (its place in the configured list),
  // not its place in the ranking. From London the distance order is not the list's.
  describe('by index', () => {
    const london = rankRegions(REGIONS, 51.5074, -0.1278, () => 1);
    const common = { ranking: london, deployedIn: null, allowedIn: undefined, nowMs: NOW, anchor: 'nearest' as const };

    it('ranks in an order that is not the list\'s, each ranked region carrying its place in the list', () => {
      expect(london.map((r) => r.region.id)).not.toEqual(REGIONS.map((r) => r.id));
      for (const r of london) expect(REGIONS[r.index]).toBe(r.region);
    });

    it('reads health at a region\'s place in the list, not at its place in the ranking', () => {
      // Only Frankfurt, the nearest to London, is down: read at the wrong place, another region would be.
      const result = pickRegions({ ...common, healthAt: byPlace(healthMap({ fra: { status: 'down' } })), localLoadAt: () => 0 });
      expect(result.reason).toBe('failover:fra-down');
      expect(result.candidates).toEqual(london.map((r) => r.region.id).filter((id) => id !== 'fra'));
    });

    it('reads its own load at a region\'s place in the list, not at its place in the ranking', () => {
      const own: Record<RegionId, number> = { fra: 10 };
      const asked: number[] = [];
      const result = pickRegions({
        ...common,
        healthAt: byPlace(healthMap()),
        localLoadAt: (index) => {
          asked.push(index);
          return own[REGIONS[index]!.id] ?? 0;
        },
      });
      expect(result).toMatchObject({ candidates: ['nyc', 'atl', 'lax', 'syd'], reason: 'spill:fra-hard-limit' });
      expect(asked).toEqual(london.map((r) => r.index));
    });
  });
});
