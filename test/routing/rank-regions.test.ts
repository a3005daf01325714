import { describe, expect, it } from 'vitest';
import { greatCircleKm } from '../../src/routing/distance.js';
import { rankRegions } from '../../src/routing/rank-regions.js';
import { REGIONS } from '../support/regions.js';

describe('greatCircleKm', () => {
  it.each([
    // Reference distances (great-circle, spherical Earth), ±0.5 %.
    ['London → New York', 51.5074, -0.1278, 40.7128, -74.006, 5570],
    ['Atlanta → Los Angeles', 33.749, -84.388, 34.0522, -118.2437, 3110],
    ['Frankfurt → Sydney', 50.1109, 8.6821, -33.8688, 151.2093, 16490],
    ['antipodes', 0, 0, 0, 180, 20015],
  ])('%s ≈ %d km', (_name, lat1, lon1, lat2, lon2, km) => {
    expect(greatCircleKm(lat1, lon1, lat2, lon2)).toBeGreaterThan(km * 0.995);
    expect(greatCircleKm(lat1, lon1, lat2, lon2)).toBeLessThan(km * 1.005);
  });

  it('is zero for the same point and symmetric', () => {
    expect(greatCircleKm(10, 20, 10, 20)).toBe(0);
    expect(greatCircleKm(1, 2, 3, 4)).toBeCloseTo(greatCircleKm(3, 4, 1, 2), 9);
  });
});

describe('rankRegions', () => {
  const order = (lat: number, lon: number, weights: Record<string, number> = {}) =>
    rankRegions(REGIONS, lat, lon, (id) => weights[id] ?? 1).map((r) => r.region.id);

  it.each([
    ['London', 51.5074, -0.1278, ['fra', 'nyc', 'atl', 'lax', 'syd']],
    ['Chicago', 41.8781, -87.6298, ['atl', 'nyc', 'lax', 'fra', 'syd']],
    ['Seattle', 47.6062, -122.3321, ['lax', 'atl', 'nyc', 'fra', 'syd']],
    ['Tokyo', 35.6762, 139.6503, ['syd', 'lax', 'fra', 'nyc', 'atl']],
    ['Boston', 42.3601, -71.0589, ['nyc', 'atl', 'lax', 'fra', 'syd']],
  ])('orders regions by distance from %s', (_name, lat, lon, expected) => {
    expect(order(lat, lon)).toEqual(expected);
  });

  it('a weight of 2 makes a region rank as if half as far', () => {
    // From Chicago: atl ≈ 945 km, nyc ≈ 1145 km; nyc at weight 2 ranks at ≈ 572 km.
    expect(order(41.8781, -87.6298, { nyc: 2 }).slice(0, 2)).toEqual(['nyc', 'atl']);
  });

  it('weight 0 ranks a region after every weighted one, still in distance order among themselves', () => {
    expect(order(51.5074, -0.1278, { fra: 0, nyc: 0 })).toEqual(['atl', 'lax', 'syd', 'fra', 'nyc']);
  });

  it('breaks exact ties on higher weight, then on region id', () => {
    const twins = [
      { ...REGIONS[0]!, id: 'bbb', lat: 0, lon: 10 },
      { ...REGIONS[0]!, id: 'aaa', lat: 0, lon: -10 },
      { ...REGIONS[0]!, id: 'ccc', lat: 0, lon: 10 },
    ];
    expect(rankRegions(twins, 0, 0, () => 1).map((r) => r.region.id)).toEqual(['aaa', 'bbb', 'ccc']);
    expect(rankRegions(twins, 0, 0, (id) => (id === 'ccc' ? 2 : 1)).map((r) => r.region.id)[0]).toBe('ccc');
  });

  it('carries each region\'s place in the list it was given (readiness reads per-region state by it)', () => {
    const ranked = rankRegions(REGIONS, -33.8688, 151.2093, () => 1); // from Sydney: syd first, atl not
    expect(ranked.map((r) => r.region.id)).not.toEqual(REGIONS.map((r) => r.id));
    for (const r of ranked) expect(REGIONS[r.index]).toBe(r.region);
  });
});
