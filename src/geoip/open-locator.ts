/** Builds the GeoLocator a command asked for: a validated MaxMind database, or none. */
import type { GeoLocator } from '../core/geo-locator.js';
import { MaxmindLocator, NoDatabaseLocator, type GeoEvent } from './maxmind-locator.js';

export async function openLocator(
  geoip: string | null,
  options: { watch: boolean; onEvent?: (event: GeoEvent) => void },
): Promise<GeoLocator & { close?(): void }> {
  if (geoip === null) return new NoDatabaseLocator();
  return MaxmindLocator.open(geoip, options);
}
