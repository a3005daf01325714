import { describe, expect, it } from 'vitest';
import { normalizeGeoRecord } from '../../src/geoip/normalize-record.js';

describe('normalizeGeoRecord', () => {
  it.each([
    [
      'GeoIP2 City (nested)',
      { city: { names: { en: 'London' } }, country: { iso_code: 'GB' }, location: { latitude: 51.5142, longitude: -0.0931 } },
      { country: 'GB', city: 'London', lat: 51.5142, lon: -0.0931 },
    ],
    ['GeoIP2 Country (nested, no location)', { country: { iso_code: 'SE' }, continent: { code: 'EU' } }, { country: 'SE', city: null, lat: null, lon: null }],
    ['registered country when country is absent', { registered_country: { iso_code: 'JP' } }, { country: 'JP', city: null, lat: null, lon: null }],
    [
      'an anycast network as unlocated: its registrant and centre are not where the client is',
      { country: { iso_code: 'US' }, registered_country: { iso_code: 'US' }, location: { latitude: 37.751, longitude: -97.822, accuracy_radius: 1000 }, traits: { is_anycast: true } },
      { country: null, city: null, lat: null, lon: null },
    ],
    [
      'a satellite provider without a country as unlocated, not as its registered country',
      { registered_country: { iso_code: 'US' }, traits: { is_satellite_provider: true } },
      { country: null, city: null, lat: null, lon: null },
    ],
    ['a satellite provider by the country MaxMind puts its user in', { country: { iso_code: 'NG' }, registered_country: { iso_code: 'US' }, traits: { is_satellite_provider: true } }, { country: 'NG', city: null, lat: null, lon: null }],
    ['traits only (anonymous-IP style records)', { traits: { is_anonymous_proxy: true } }, { country: null, city: null, lat: null, lon: null }],
    ['continent only', { continent: { code: 'AS' } }, { country: null, city: null, lat: null, lon: null }],
    [
      'DB-IP / ip-location-db flat city',
      { city: 'Sydney', country_code: 'AU', latitude: -33.8688, longitude: 151.2093, state1: 'NSW' },
      { country: 'AU', city: 'Sydney', lat: -33.8688, lon: 151.2093 },
    ],
    ['flat country only', { country_code: 'BR' }, { country: 'BR', city: null, lat: null, lon: null }],
    ['(0, 0), the "unknown" placeholder, as no coordinates (flat)', { country_code: 'GH', latitude: 0, longitude: 0 }, { country: 'GH', city: null, lat: null, lon: null }],
    ['(0, 0), the "unknown" placeholder, as no coordinates (nested)', { country: { iso_code: 'US' }, location: { latitude: 0, longitude: 0, accuracy_radius: 1000 } }, { country: 'US', city: null, lat: null, lon: null }],
    ['a latitude of 0 (the equator) as real', { country_code: 'EC', city: 'Quito', latitude: 0, longitude: -78.5 }, { country: 'EC', city: 'Quito', lat: 0, lon: -78.5 }],
    ['a longitude of 0 (Greenwich) as real', { country_code: 'GB', latitude: 51.48, longitude: 0 }, { country: 'GB', city: null, lat: 51.48, lon: 0 }],
  ])('reads %s', (_name, record, facts) => {
    expect(normalizeGeoRecord(record)).toEqual({ ok: true, facts });
  });

  it.each([
    ['not a map', 'GB', /not a map/],
    ['an unknown layout', { foo: 1 }, /unrecognised record layout/],
    ['latitude out of range', { location: { latitude: 91, longitude: 0 } }, /outside \[-90, 90\]/],
    ['longitude out of range', { location: { latitude: 0, longitude: -180.5 } }, /outside \[-180, 180\]/],
    ['a corrupt double (wrong byte layout)', { location: { latitude: 1.79e-52, longitude: 5.27e-91 } }, /absurdly close to zero/],
    ['NaN', { latitude: Number.NaN, longitude: 1, country_code: 'US' }, /not a finite number/],
    ['a string coordinate', { latitude: '51.5', longitude: '0.1', country_code: 'GB' }, /not a finite number/],
    ['latitude without longitude', { location: { latitude: 10 } }, /must come together/],
    ['a bad country code', { country: { iso_code: 'gbr' } }, /two capital letters/],
    // The reader decodes uint64 and uint128 as BigInt, which JSON.stringify throws on.
    ['a country code decoded as a BigInt', { country: { iso_code: 1n } }, /^country code 1 \(bigint\) is not two capital letters$/],
    ['a country code that is a map', { country_code: { en: 'GB' } }, /^country code a map is not two capital letters$/],
    ['a non-string city', { city: 42, country_code: 'US' }, /city name is not a string/],
  ])('refuses %s', (_name, record, reason) => {
    const result = normalizeGeoRecord(record);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(reason);
  });
});
