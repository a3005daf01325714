/**
 * Turns one GeoIP database record into country, city and coordinates, or says why it cannot.
 * Knows two layouts: MaxMind's nested GeoIP2/GeoLite2 City and Country records, and the flat
 * records of DB-IP / ip-location-db city files. Pure; never throws.
 */

export interface GeoFacts {
  readonly country: string | null;
  readonly city: string | null;
  readonly lat: number | null;
  readonly lon: number | null;
}

export type NormalizedRecord = { readonly ok: true; readonly facts: GeoFacts } | { readonly ok: false; readonly reason: string };

/** The reason for a record of neither layout: a database of another kind (ASN, ISP, anonymous IP) gives it for every record. */
export const UNRECOGNISED_LAYOUT = 'unrecognised record layout (neither GeoIP2 nested nor flat city fields)';

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Top-level maps of GeoIP2/GeoLite2 records; a record may carry any subset (e.g. only `traits`). */
const NESTED_KEYS = ['country', 'registered_country', 'represented_country', 'location', 'city', 'continent', 'subdivisions', 'postal', 'traits'];

export function normalizeGeoRecord(record: unknown): NormalizedRecord {
  if (!isObj(record)) return { ok: false, reason: 'record is not a map' };
  if (NESTED_KEYS.some((k) => isObj(record[k]))) return fromNested(record);
  if ('country_code' in record || 'latitude' in record) return fromFlat(record);
  return { ok: false, reason: UNRECOGNISED_LAYOUT };
}

function fromNested(r: Obj): NormalizedRecord {
  const traits = isObj(r.traits) ? r.traits : undefined;
  // An anycast network is announced from many places at once, so where MaxMind puts it (the
  // registrant's country and its centre) is not where this client is: the client is unlocated.
  if (traits?.is_anycast === true) return finish(undefined, undefined, undefined, undefined);
  // The registered country is where the ISP registered the block. Without `country` it stands in
  // for ordinary ISPs, but a satellite provider's users are anywhere under its footprint.
  const registered = traits?.is_satellite_provider === true ? undefined : r.registered_country;
  const country = isObj(r.country) ? r.country.iso_code : isObj(registered) ? registered.iso_code : undefined;
  const names = isObj(r.city) && isObj(r.city.names) ? r.city.names : undefined;
  const location = isObj(r.location) ? r.location : undefined;
  return finish(country, names?.en, location?.latitude, location?.longitude);
}

function fromFlat(r: Obj): NormalizedRecord {
  return finish(r.country_code, r.city, r.latitude, r.longitude);
}

function finish(country: unknown, city: unknown, lat: unknown, lon: unknown): NormalizedRecord {
  if (country !== undefined && (typeof country !== 'string' || !/^[A-Z]{2}$/.test(country))) {
    return { ok: false, reason: `country code ${valueText(country)} is not two capital letters` };
  }
  if (city !== undefined && typeof city !== 'string') return { ok: false, reason: 'city name is not a string' };
  if ((lat === undefined) !== (lon === undefined)) return { ok: false, reason: 'latitude and longitude must come together' };
  if (lat !== undefined) {
    const bad = badCoordinate(lat, 90) ?? badCoordinate(lon, 180);
    if (bad !== undefined) return { ok: false, reason: bad };
  }
  // (0, 0) is open sea in the Gulf of Guinea, where no client sits: databases (DB-IP, IP2Location,
  // ip-location-db) write it for "coordinates unknown". Taken as a place, it ranked regions from
  // there instead of from the client's country. One zero alone (the equator, Greenwich) is real.
  if (lat === 0 && lon === 0) lat = lon = undefined;
  return {
    ok: true,
    facts: {
      country: (country as string | undefined) ?? null,
      city: (city as string | undefined) || null,
      lat: (lat as number | undefined) ?? null,
      lon: (lon as number | undefined) ?? null,
    },
  };
}

/**
 * Range checks catch most corruption; the magnitude check catches doubles decoded with the wrong
 * byte layout, which land near zero (1e-52) rather than out of range. No real coordinate is that small.
 */
function badCoordinate(value: unknown, limit: number): string | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value)) return `coordinate ${String(value)} is not a finite number`;
  if (value < -limit || value > limit) return `coordinate ${value} is outside [-${limit}, ${limit}]`;
  if (value !== 0 && Math.abs(value) < 1e-6) return `coordinate ${value} is absurdly close to zero (corrupt double?)`;
  return undefined;
}

/**
 * A value from the database as a reason shows it. Not JSON.stringify: the reader decodes 64- and
 * 128-bit integers as BigInt, which it throws on, and a throw here failed every request from the
 * record's network with a 500.
 */
function valueText(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'object' && value !== null) return Array.isArray(value) ? 'an array' : 'a map';
  return `${String(value)} (${typeof value})`;
}
