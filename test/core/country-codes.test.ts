import { describe, expect, it } from 'vitest';
import { COUNTRY_CODES, countryCodeProblem } from '../../src/core/country-codes.js';

describe('country codes', () => {
  it('holds the 249 codes ISO 3166-1 assigns, and Kosovo\'s XK', () => {
    expect(COUNTRY_CODES.size).toBe(250);
    // ICU names every region it knows and answers an unknown code with the code itself: a code
    // mistyped into the list as two letters nobody uses shows up here. ICU also names some codes
    // ISO does not assign to a country (reserved ones, groupings), which are listed apart.
    const names = new Intl.DisplayNames(['en'], { type: 'region', fallback: 'code' });
    const unnamed = [...COUNTRY_CODES].filter((code) => names.of(code) === code);
    expect(unnamed).toEqual([]);
    const namedButNoCountry = ['AC', 'CP', 'DG', 'EA', 'IC', 'TA', 'EZ', 'UN', 'QO', 'EU', 'ZZ'];
    expect(namedButNoCountry.filter((code) => COUNTRY_CODES.has(code))).toEqual([]);
    expect([...COUNTRY_CODES].every((code) => /^[A-Z]{2}$/.test(code))).toBe(true);
  });

  it('takes every country code a GeoIP database answers with', () => {
    for (const code of ['GB', 'US', 'DE', 'JP', 'AU', 'XK', 'SS', 'BQ', 'AX']) expect(countryCodeProblem(code)).toBeUndefined();
  });

  it('names the ISO code for a country written the way the UK and the EU write it', () => {
    expect(countryCodeProblem('UK')).toBe('expected an ISO 3166-1 alpha-2 country code; UK is not one, the country\'s code is GB');
    expect(countryCodeProblem('EL')).toBe('expected an ISO 3166-1 alpha-2 country code; EL is not one, the country\'s code is GR');
  });

  it('refuses codes no country has, continents, and what is not two capital letters', () => {
    for (const code of ['QQ', 'ZZ', 'EU', 'AP', 'A1']) expect(countryCodeProblem(code)).toMatch(/^expected an ISO 3166-1 alpha-2 country code/);
    for (const code of ['gb', 'GBR', 'G', '', 'G1']) expect(countryCodeProblem(code)).toBe('expected an ISO 3166-1 alpha-2 country code (two capital letters)');
  });
});
