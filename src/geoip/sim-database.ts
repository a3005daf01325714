/**
 * Builds the simulation's GeoIP database: each client metro's loopback subnet becomes a
 * GeoIP2-City-shaped record, so the router reads it through the same code as a real database.
 */
import { mmdbDouble, writeMmdb } from './mmdb-writer.js';

/** What the database needs of a metro (the simulation's ClientMetro fits). */
export interface MetroRecord {
  readonly subnet: string;
  readonly city: string;
  readonly country: string;
  readonly continent: string;
  readonly lat: number;
  readonly lon: number;
}

export function buildSimDatabase(metros: readonly MetroRecord[], buildEpoch = 1_767_225_600 /* 2026-01-01 */): Buffer {
  return writeMmdb({
    databaseType: 'EdgeRouter-Sim-City',
    description: { en: 'edge-router simulation: loopback subnets mapped to client metros' },
    languages: ['en'],
    ipVersion: 6,
    recordSize: 28,
    buildEpoch,
    networks: metros.map((m) => ({
      network: m.subnet,
      data: {
        city: { names: { en: m.city } },
        continent: { code: m.continent },
        country: { iso_code: m.country },
        location: { latitude: mmdbDouble(m.lat), longitude: mmdbDouble(m.lon), accuracy_radius: 20 },
      },
    })),
  });
}
