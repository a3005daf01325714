/**
 * Proximity ranking: orders regions by great-circle distance to a point, scaled by weight.
 * Ranking only — whether a region can take traffic is pick-region's business.
 */
import type { RegionConfig, RegionId } from '../core/types.js';
import { greatCircleKm } from './distance.js';

export interface RankedRegion {
  readonly region: RegionConfig;
  /** The region's position in the list that was ranked: state kept per region in arrays is read by it. */
  readonly index: number;
  readonly distanceKm: number;
  readonly weight: number;
}

/**
 * Effective distance is `distanceKm / weight`: weight 2 makes a region rank as if half as far,
 * weight 0 ranks it after every weighted region. Ties break on higher weight, then on region id,
 * so the same inputs always give the same order.
 */
export function rankRegions(
  regions: readonly RegionConfig[],
  lat: number,
  lon: number,
  weightOf: (id: RegionId) => number = (id) => regions.find((r) => r.id === id)?.weight ?? 1,
): RankedRegion[] {
  const ranked: RankedRegion[] = regions.map((region, index) => ({
    region,
    index,
    distanceKm: greatCircleKm(lat, lon, region.lat, region.lon),
    weight: weightOf(region.id),
  }));
  ranked.sort(compareRanked);
  return ranked;
}

function effective(r: RankedRegion): number {
  return r.weight > 0 ? r.distanceKm / r.weight : Number.POSITIVE_INFINITY;
}

export function compareRanked(a: RankedRegion, b: RankedRegion): number {
  const ea = effective(a);
  const eb = effective(b);
  if (ea !== eb) return ea < eb ? -1 : 1;
  if (a.weight !== b.weight) return b.weight - a.weight;
  if (ea === Number.POSITIVE_INFINITY && a.distanceKm !== b.distanceKm) return a.distanceKm - b.distanceKm;
  return a.region.id < b.region.id ? -1 : a.region.id > b.region.id ? 1 : 0;
}
