/**
 * The country codes a GeoIP database answers with: ISO 3166-1 alpha-2's assigned codes, and XK,
 * which MaxMind gives Kosovo (a code ISO keeps free for such use). A routing rule keyed by any
 * other pair of capital letters can never match a client: "UK" for the United Kingdom (ISO's code
 * is GB) was taken, and its clients went on to the nearest region as if the rule were not there.
 */
const ASSIGNED = [
  'AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ',
  'BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ',
  'CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ',
  'DE DJ DK DM DO DZ',
  'EC EE EG EH ER ES ET',
  'FI FJ FK FM FO FR',
  'GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY',
  'HK HM HN HR HT HU',
  'ID IE IL IM IN IO IQ IR IS IT',
  'JE JM JO JP',
  'KE KG KH KI KM KN KP KR KW KY KZ',
  'LA LB LC LI LK LR LS LT LU LV LY',
  'MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ',
  'NA NC NE NF NG NI NL NO NP NR NU NZ',
  'OM',
  'PA PE PF PG PH PK PL PM PN PR PS PT PW PY',
  'QA',
  'RE RO RS RU RW',
  'SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ',
  'TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ',
  'UA UG UM US UY UZ',
  'VA VC VE VG VI VN VU',
  'WF WS',
  'XK',
  'YE YT',
  'ZA ZM ZW',
].join(' ');

export const COUNTRY_CODES: ReadonlySet<string> = new Set(ASSIGNED.split(' '));

/** Codes people write for a country whose ISO code differs (the EU's and the UK's own usage). */
const ISO_CODE_OF: ReadonlyMap<string, string> = new Map([
  ['UK', 'GB'], // the United Kingdom
  ['EL', 'GR'], // Greece, as the EU writes it
]);

/**
 * What is wrong with `code` as a country a client can be located in, or undefined when it is one:
 * "expected …" text for a configuration error.
 */
export function countryCodeProblem(code: string): string | undefined {
  if (COUNTRY_CODES.has(code)) return undefined;
  if (!/^[A-Z]{2}$/.test(code)) return 'expected an ISO 3166-1 alpha-2 country code (two capital letters)';
  const iso = ISO_CODE_OF.get(code);
  return iso === undefined
    ? `expected an ISO 3166-1 alpha-2 country code; ${code} is not one a GeoIP database answers with`
    : `expected an ISO 3166-1 alpha-2 country code; ${code} is not one, the country's code is ${iso}`;
}
