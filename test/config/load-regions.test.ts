import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRegionsFile, parseRegionsConfig } from '../../src/config/load-regions.js';
import { ConfigError } from '../../src/core/errors.js';

const valid = () => ({
  defaultRegion: 'atl',
  countryRegions: { GB: 'fra' },
  customDomains: { 'api.example.com': { fn: 'checkout', org: 'acme1' } },
  regions: [
    { id: 'atl', name: 'Atlanta', lat: 33.749, lon: -84.388, orchestrators: ['http://127.0.0.1:7001/'], capacity: { soft: 8, hard: 10 } },
    { id: 'fra', name: 'Frankfurt', lat: 50.11, lon: 8.68, orchestrators: ['https://fra.internal'], capacity: { soft: 8, hard: 10 }, weight: 2 },
  ],
});

function errorOf(mutate: (cfg: ReturnType<typeof valid> & Record<string, unknown>) => void): string {
  const cfg = valid() as ReturnType<typeof valid> & Record<string, unknown>;
  mutate(cfg);
  try {
    parseRegionsConfig('regions.json', cfg);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('parseRegionsConfig', () => {
  it('accepts a valid file, applies defaults and freezes the result', () => {
    const cfg = parseRegionsConfig('regions.json', valid());
    expect(cfg.regions.map((r) => [r.id, r.weight, r.orchestrators[0]])).toEqual([
      ['atl', 1, 'http://127.0.0.1:7001'],
      ['fra', 2, 'https://fra.internal'],
    ]);
    expect(cfg.countryRegions.get('GB')).toBe('fra');
    expect(cfg.customDomains.get('api.example.com')).toEqual({ fn: 'checkout', org: 'acme1' });
    expect(Object.isFrozen(cfg)).toBe(true);
    expect(Object.isFrozen(cfg.regions[0])).toBe(true);
  });

  it('accepts custom domains under punycode (IDN) top-level domains, which is how a Host header carries them', () => {
    const cfg = valid();
    Object.assign(cfg.customDomains, { 'shop.example.xn--p1ai': { fn: 'store', org: 'acme1' }, 'xn--bcher-kva.example.xn--fiqs8s': { fn: 'books', org: 'acme1' } });
    const parsed = parseRegionsConfig('regions.json', cfg);
    expect(parsed.customDomains.get('shop.example.xn--p1ai')).toEqual({ fn: 'store', org: 'acme1' });
    expect(parsed.customDomains.get('xn--bcher-kva.example.xn--fiqs8s')).toEqual({ fn: 'books', org: 'acme1' });
  });

  it.each<[string, (c: any) => void, string]>([
    ['latitude out of range', (c) => (c.regions[1].lat = 95), 'regions.json: regions[1].lat: expected a number in [-90, 90]'],
    ['latitude not a number', (c) => (c.regions[0].lat = '33'), 'regions.json: regions[0].lat: expected a number in [-90, 90]'],
    ['longitude out of range', (c) => (c.regions[0].lon = -181), 'regions.json: regions[0].lon: expected a number in [-180, 180]'],
    ['missing name', (c) => delete c.regions[0].name, 'regions.json: regions[0].name: expected a display name'],
    ['unknown field in a region', (c) => (c.regions[0].colour = 'red'), 'regions.json: regions[0]: unknown field(s) "colour"'],
    ['unknown top-level field', (c) => (c.region = []), 'regions.json: (top level): unknown field(s) "region"'],
    ['bad region id', (c) => (c.regions[0].id = 'ATL'), 'regions.json: regions[0].id: expected a region id'],
    ['duplicate ids', (c) => (c.regions[1].id = 'atl'), 'regions.json: regions[1].id: duplicate region id "atl"'],
    ['one orchestrator twice in a region, spelt differently', (c) => (c.regions[1].orchestrators = ['https://fra.internal', 'HTTPS://FRA.internal:443/']), 'regions.json: regions[1].orchestrators[1]: expected an orchestrator not listed before, got https://fra.internal again (orchestrators[0])'],
    ['a country code "__proto__" (zod skips the key)', (c) => Object.defineProperty(c.countryRegions, '__proto__', { value: 'NOT VALID', enumerable: true }), 'regions.json: countryRegions.__proto__: expected an ISO 3166-1 alpha-2 country code'],
    ['a custom domain "__proto__" (zod skips the key)', (c) => Object.defineProperty(c.customDomains, '__proto__', { value: { fn: 'BAD FN', org: 'y' }, enumerable: true }), 'regions.json: customDomains["__proto__"]: expected a lower-case DNS name'],
    ['soft above hard', (c) => (c.regions[0].capacity = { soft: 11, hard: 10 }), 'regions.json: regions[0].capacity.soft: expected capacity.soft ≤ capacity.hard'],
    ['fractional capacity', (c) => (c.regions[0].capacity.hard = 2.5), 'regions.json: regions[0].capacity.hard: expected a whole number from 1 to 10000000'],
    // Past what a heartbeat may carry: every report of the region refused, and it never came up.
    ['capacity past a heartbeat\'s bound', (c) => (c.regions[0].capacity.hard = 10_000_001), 'regions.json: regions[0].capacity.hard: expected a whole number from 1 to 10000000'],
    ['negative weight', (c) => (c.regions[0].weight = -1), 'regions.json: regions[0].weight: expected a number in [0, 100]'],
    ['no orchestrators', (c) => (c.regions[0].orchestrators = []), 'regions.json: regions[0].orchestrators: expected at least one orchestrator URL'],
    ['orchestrator not http', (c) => (c.regions[0].orchestrators = ['ftp://x']), 'regions.json: regions[0].orchestrators[0]: expected an http(s) origin such as http://10.0.0.5:7001, got "ftp://x"'],
    ['orchestrator not a URL', (c) => (c.regions[0].orchestrators = ['127.0.0.1:7001']), 'regions.json: regions[0].orchestrators[0]: expected an http(s) origin such as http://10.0.0.5:7001, got "127.0.0.1:7001"'],
    ['orchestrator with credentials', (c) => (c.regions[0].orchestrators = ['http://u:p@x']), 'regions.json: regions[0].orchestrators[0]: expected an http(s) origin without credentials, got "http://x/" (its credentials not shown)'],
    // A token as the whole user info, or in any query parameter: no password rule masks it.
    ['orchestrator with a token for a user name', (c) => (c.regions[0].orchestrators = ['https://tok_live_abc123@orch.example:7001']), 'regions.json: regions[0].orchestrators[0]: expected an http(s) origin without credentials, got "https://orch.example:7001/" (its credentials not shown)'],
    // One that does not parse (a port typo, a stray space) too.
    ['orchestrator with a token and a bad port', (c) => (c.regions[0].orchestrators = ['https://tok_live_abc123@orch.example:700001']), 'regions.json: regions[0].orchestrators[0]: expected an http(s) origin such as http://10.0.0.5:7001, got "https://orch.example:700001" (its credentials not shown)'],
    ['orchestrator with a space and a token in its query', (c) => (c.regions[0].orchestrators = ['https://orch example/?token=abc']), 'regions.json: regions[0].orchestrators[0]: expected an http(s) origin such as http://10.0.0.5:7001, got "https://orch example/" (its query or fragment not shown)'],
    ['orchestrator with a token in its query', (c) => (c.regions[0].orchestrators = ['https://orch.example:7001/?token=abc123']), 'regions.json: regions[0].orchestrators[0]: expected an http(s) origin without a query or fragment, got "https://orch.example:7001/" (its query or fragment not shown)'],
    ['orchestrator with a password only', (c) => (c.regions[1].orchestrators = ['http://:s3cret@127.0.0.1:7001']), 'regions.json: regions[1].orchestrators[0]: expected an http(s) origin without credentials, got "http://127.0.0.1:7001/" (its credentials not shown)'],
    ['orchestrator with a path', (c) => (c.regions[0].orchestrators = ['http://127.0.0.1:7001/api']), 'regions.json: regions[0].orchestrators[0]: expected an http(s) origin without a path, got "http://127.0.0.1:7001/api"'],
    ['orchestrator with a query', (c) => (c.regions[0].orchestrators = ['http://127.0.0.1:7001/?a=1']), 'regions.json: regions[0].orchestrators[0]: expected an http(s) origin without a query or fragment'],
    ['empty geoip path', (c) => (c.geoip = ''), 'regions.json: geoip: expected a path to a .mmdb file, or "none"'],
    ['unknown default region', (c) => (c.defaultRegion = 'syd'), 'regions.json: defaultRegion: expected one of the region ids (atl, fra), got "syd"'],
    ['country mapped to an unknown region', (c) => (c.countryRegions.JP = 'syd'), 'regions.json: countryRegions.JP: expected one of the region ids, got "syd"'],
    ['bad country code', (c) => (c.countryRegions.gb = 'fra'), 'regions.json: countryRegions.gb: expected an ISO 3166-1 alpha-2 country code'],
    ['the UK as "UK" (its ISO code is GB): no client is ever located there', (c) => (c.countryRegions.UK = 'fra'), 'regions.json: countryRegions.UK: expected an ISO 3166-1 alpha-2 country code; UK is not one, the country\'s code is GB'],
    ['two capital letters no country has', (c) => (c.countryRegions.QQ = 'fra'), 'regions.json: countryRegions.QQ: expected an ISO 3166-1 alpha-2 country code; QQ is not one a GeoIP database answers with'],
    ['bad custom domain', (c) => (c.customDomains['API.example.com:443'] = { fn: 'a', org: 'b' }), 'regions.json: customDomains["API.example.com:443"]: expected a lower-case DNS name'],
    ['custom domain under a TLD with a digit that is not punycode', (c) => (c.customDomains['x.example.c0m'] = { fn: 'a', org: 'b' }), 'regions.json: customDomains["x.example.c0m"]: expected a lower-case DNS name'],
    ['custom domain under a punycode TLD ending in a hyphen', (c) => (c.customDomains['x.example.xn--p1ai-'] = { fn: 'a', org: 'b' }), 'regions.json: customDomains["x.example.xn--p1ai-"]: expected a lower-case DNS name'],
    ['custom domain with a bad org', (c) => (c.customDomains['x.example.com'] = { fn: 'a', org: 'b-c' }), 'regions.json: customDomains["x.example.com"].org: expected an org id of [a-z0-9]'],
    ['custom domain for a function name no registry holds', (c) => (c.customDomains['x.example.com'] = { fn: 'a'.repeat(63), org: 'b' }), 'regions.json: customDomains["x.example.com"].fn: expected a function name of at most 62 characters'],
    ['custom domain for an org id no registry holds', (c) => (c.customDomains['x.example.com'] = { fn: 'a', org: 'b'.repeat(64) }), 'regions.json: customDomains["x.example.com"].org: expected an org id of at most 63 characters'],
    ['no regions', (c) => (c.regions = []), 'regions.json: regions: expected at least one region'],
    ['regions not a list', (c) => (c.regions = {}), 'regions.json: regions: expected a list of regions'],
  ])('rejects %s', (_name, mutate, message) => {
    const error = errorOf(mutate);
    expect(error).toContain(message);
    expect(error).not.toContain('s3cret');
  });
});

describe('parseRegionsConfig, given very many mistakes', () => {
  it('names the first ten, then says how many more, like the schema errors', () => {
    const lines = errorOf((c) => Object.assign(c, { countryRegions: Object.fromEntries(Array.from({ length: 2_000 }, (_, i) => [`x${i}`, 'fra'])) })).split('\n');
    expect(lines).toHaveLength(11);
    expect(lines[0]).toBe('regions.json: countryRegions.x0: expected an ISO 3166-1 alpha-2 country code (two capital letters)');
    expect(lines[10]).toBe('regions.json: … and 1990 more problems');
    const schemaLines = errorOf((c) => Object.assign(c, { regions: Array.from({ length: 50 }, () => ({})) })).split('\n');
    expect(schemaLines).toHaveLength(11);
    expect(schemaLines[10]).toMatch(/^regions\.json: … and \d+ more problems$/);
  });
});

describe('loadRegionsFile', () => {
  it('loads the bundled regions.json: the five regions', async () => {
    const cfg = await loadRegionsFile('regions.json');
    expect(cfg.regions.map((r) => r.id)).toEqual(['atl', 'nyc', 'lax', 'fra', 'syd']);
    expect(cfg.regions.map((r) => r.name)).toEqual(['Atlanta', 'New York', 'Los Angeles', 'Frankfurt', 'Sydney']);
    // The text it checked, which a cluster's workers are given (not the file read again).
    expect(cfg.text).toBe(await readFile('regions.json', 'utf8'));
  });

  it('names the file when it is missing or not JSON', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edge-cfg-'));
    await expect(loadRegionsFile(join(dir, 'nope.json'))).rejects.toThrow(`${join(dir, 'nope.json')}: file not found`);
    // A cluster worker reads the primary's copy: a copy that is gone is named, not the original.
    await expect(loadRegionsFile(join(dir, 'regions.json'), join(dir, 'gone', 'regions.json'))).rejects.toThrow(`${join(dir, 'regions.json')}: the copy this router's workers read (${join(dir, 'gone', 'regions.json')}) is gone: removed by a temp-file cleaner?`);
    const bad = join(dir, 'bad.json');
    await writeFile(bad, '{ "regions": [ }');
    await expect(loadRegionsFile(bad)).rejects.toThrow(new RegExp(`^${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not valid JSON`));
  });

  it('says where the JSON breaks in one line, by line and column', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edge-cfg-'));
    const file = join(dir, 'trail.json');
    const text = JSON.stringify(valid(), null, 2).replace(/\n}$/, ',\n}');
    await writeFile(file, text);
    const lines = text.split('\n').length;
    await expect(loadRegionsFile(file)).rejects.toThrow(new ConfigError(`${file}: not valid JSON at line ${lines}, column 1: expected a field name in double quotes, found "}"`));
  });

  it('reads a file that starts with a byte-order mark', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edge-cfg-'));
    const file = join(dir, 'bom.json');
    await writeFile(file, `\uFEFF${JSON.stringify(valid())}`);
    expect((await loadRegionsFile(file)).regions.map((r) => r.id)).toEqual(['atl', 'fra']);
  });
});
