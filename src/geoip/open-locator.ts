/** Builds the GeoLocator a command asked for: a validated MaxMind database, or none. */
import { GeoDatabaseError } from '../core/errors.js';
import type { GeoLocator } from '../core/geo-locator.js';
import { MaxmindLocator, NoDatabaseLocator, type GeoEvent } from './maxmind-locator.js';

export async function openLocator(
  geoip: string | null,
  options: { watch: boolean; onEvent?: (event: GeoEvent) => void; source?: string },
): Promise<GeoLocator & { close?(): void }> {
  if (geoip === null) return new NoDatabaseLocator();
  return MaxmindLocator.open(geoip, options).catch((err: unknown) => {
    throw namedBySource(err, options.source);
  });
}

/**
 * A database error named by where its path came from too (SharedSettings.geoipSource): "/srv/geo.mmdb:
 * file not found" did not say which flag, variable or regions file field to fix.
 */
export function namedBySource(err: unknown, source: string | undefined): unknown {
  return err instanceof GeoDatabaseError && err.source === undefined && source !== undefined ? new GeoDatabaseError(err.file, err.reason, source) : err;
}
