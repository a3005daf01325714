import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { GeoDatabaseError } from '../../src/core/errors.js';
import { mmdbDouble, mmdbUint64, writeMmdb } from '../../src/geoip/mmdb-writer.js';
import { MaxmindLocator, NoDatabaseLocator, type GeoEvent } from '../../src/geoip/maxmind-locator.js';
import { until } from '../support/until.js';

const FIXTURES = 'test/fixtures/geo';
const open: MaxmindLocator[] = [];
afterEach(() => open.splice(0).forEach((l) => l.close()));

async function locator(file: string, options: Parameters<typeof MaxmindLocator.open>[1] = {}) {
  const l = await MaxmindLocator.open(file, { watch: false, ...options });
  open.push(l);
  return l;
}

/** Writes `bytes` as `name` in a new temporary directory; the file's path. */
async function tempDatabase(name: string, bytes: Uint8Array): Promise<string> {
  const file = join(await mkdtemp(join(tmpdir(), 'edge-geo-')), name);
  await writeFile(file, bytes);
  return file;
}

/** The first address of a CIDR (what a lookup of the network itself returns). */
const firstAddress = (cidr: string) => cidr.split('/')[0]!;

interface JsonRecord {
  city?: { names?: { en?: string } };
  country?: { iso_code?: string };
  registered_country?: { iso_code?: string };
  location?: { latitude?: number; longitude?: number };
}

async function fixtureRecords(name: string): Promise<Array<[string, JsonRecord]>> {
  const json = JSON.parse(await readFile(join(FIXTURES, name), 'utf8')) as Array<Record<string, JsonRecord>>;
  return json.flatMap((entry) => Object.entries(entry));
}

describe('MaxmindLocator on MaxMind test databases', () => {
  it.each(['GeoIP2-City-Test', 'GeoLite2-City-Test'])('%s: every network with coordinates gives its city and coordinates from the JSON source', async (name) => {
    const l = await locator(join(FIXTURES, `${name}.mmdb`));
    const records = (await fixtureRecords(`${name}.json`)).filter(([, r]) => r.location?.latitude !== undefined);
    expect(records.length).toBeGreaterThan(20);
    for (const [cidr, r] of records) {
      // ::a.b.c.d/… networks in the JSON are the IPv4 space inside the IPv6 tree.
      const ip = firstAddress(cidr).replace(/^::(\d+\.\d+\.\d+\.\d+)$/, '$1');
      const loc = l.locate(ip);
      expect(loc, cidr).toMatchObject({
        source: 'geoip',
        lat: r.location!.latitude,
        lon: r.location!.longitude,
        country: r.country?.iso_code ?? r.registered_country?.iso_code ?? null,
        city: r.city?.names?.en ?? null,
      });
    }
  });

  it.each(['GeoIP2-Country-Test', 'GeoLite2-Country-Test'])('%s: countries without coordinates', async (name) => {
    const l = await locator(join(FIXTURES, `${name}.mmdb`));
    const records = (await fixtureRecords(`${name}.json`)).filter(([, r]) => r.country?.iso_code !== undefined);
    expect(records.length).toBeGreaterThan(20);
    for (const [cidr, r] of records) {
      const ip = firstAddress(cidr).replace(/^::(\d+\.\d+\.\d+\.\d+)$/, '$1');
      expect(l.locate(ip), cidr).toMatchObject({ source: 'geoip-country', country: r.country!.iso_code, lat: null, lon: null });
    }
  });

  it('classifies what the database does not know: loopback, private, unknown public, garbage', async () => {
    const l = await locator(join(FIXTURES, 'GeoIP2-City-Test.mmdb'));
    expect(l.locate('127.0.0.1').source).toBe('loopback');
    expect(l.locate('::1').source).toBe('loopback');
    expect(l.locate('10.2.3.4').source).toBe('private');
    expect(l.locate('192.168.1.1').source).toBe('private');
    expect(l.locate('fd12::1').source).toBe('private');
    expect(l.locate('100.64.0.1').source).toBe('private');
    expect(l.locate('1.1.1.1').source).toBe('unknown');
    expect(l.locate('not an address').source).toBe('unknown');
  });

  it('unmaps IPv4-mapped IPv6 but reports the address it was given', async () => {
    const l = await locator(join(FIXTURES, 'GeoIP2-City-Test.mmdb'));
    expect(l.locate('::ffff:81.2.69.160')).toMatchObject({ ip: '::ffff:81.2.69.160', city: 'London', source: 'geoip' });
  });

  it('serves repeated lookups from a bounded cache', async () => {
    const l = await locator(join(FIXTURES, 'GeoIP2-City-Test.mmdb'), { cacheSize: 2 });
    const first = l.locate('81.2.69.160');
    expect(l.locate('81.2.69.160')).toBe(first);
    l.locate('216.160.83.56');
    l.locate('89.160.20.112'); // evicts 81.2.69.160
    expect(l.locate('81.2.69.160')).not.toBe(first);
    expect(l.stats).toEqual({ lookups: 5, cacheHits: 1 });
  });

  // The key is what the caller was handed: the simulated orchestrator passes X-Forwarded-For as a
  // client wrote it, and explain passes stdin lines. Entries are counted, not weighed, so 100,000
  // remembered 16 KiB strings would hold 1.6 GB.
  it.each([
    ['text that is not an address', (i: number) => `${'x'.repeat(16_384)}${i % 2}`],
    ['an address with a zone id longer than any interface name', (i: number) => `fe80::1%${'e'.repeat(16_384)}${i % 2}`],
  ])('answers %s without remembering it', async (_name, input) => {
    const l = await locator(join(FIXTURES, 'GeoIP2-City-Test.mmdb'));
    for (let i = 0; i < 4; i++) expect(l.locate(input(i)).lat).toBeNull();
    expect(l.stats).toEqual({ lookups: 4, cacheHits: 0 });
  });
});

describe('MaxmindLocator refuses unusable databases, naming the file', () => {
  it.each([
    ['GeoIP2-City-Test-Broken-Double-Format.mmdb', /Broken-Double-Format\.mmdb: record for .*: coordinate .* absurdly close to zero/],
    ['GeoIP2-City-Test-Invalid-Node-Count.mmdb', /Invalid-Node-Count\.mmdb: (corrupt search tree|record for .* does not decode)/],
  ])('%s', async (name, message) => {
    const err = await MaxmindLocator.open(join(FIXTURES, name), { watch: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GeoDatabaseError);
    expect((err as Error).message).toMatch(message);
  });

  it('a missing file', async () => {
    await expect(MaxmindLocator.open('/nonexistent/city.mmdb')).rejects.toThrow('/nonexistent/city.mmdb: file not found');
  });

  it('a file that is not a MaxMind DB', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edge-geo-'));
    const file = join(dir, 'junk.mmdb');
    await writeFile(file, Buffer.from('this is not a database at all'.repeat(10)));
    await expect(MaxmindLocator.open(file)).rejects.toThrow(new RegExp(`${file}: not a MaxMind DB file`));
  });

  it('a database whose records have the wrong layout', async () => {
    const file = await tempDatabase('odd.mmdb', writeMmdb({ databaseType: 'Odd', ipVersion: 6, networks: [{ network: '8.8.8.0/24', data: { colour: 'blue' } }] }));
    await expect(MaxmindLocator.open(file)).rejects.toThrow(/odd\.mmdb: record for 8\.8\.8\.\d+: unrecognised record layout/);
  });

  it('an ASN database given for a City one, saying which type it is', async () => {
    const data = { autonomous_system_number: 15169, autonomous_system_organization: 'Example' };
    const file = await tempDatabase('GeoLite2-ASN.mmdb', writeMmdb({ databaseType: 'GeoLite2-ASN', ipVersion: 6, networks: [{ network: '8.8.8.0/24', data }, { network: '2001:db8::/32', data }] }));
    await expect(MaxmindLocator.open(file, { watch: false })).rejects.toThrow(
      /GeoLite2-ASN\.mmdb: record for .*: unrecognised record layout .*; the database's type is "GeoLite2-ASN", expected a City or Country database/,
    );
  });

  it.each([
    ['continent only', { continent: { code: 'EU' } }],
    ['traits only', { traits: { is_anycast: true } }],
  ])('a database whose records (%s) place no client', async (_name, data) => {
    const file = await tempDatabase('nowhere.mmdb', writeMmdb({ databaseType: 'Test-City', ipVersion: 6, networks: [{ network: '8.8.8.0/24', data }, { network: '2001:db8::/32', data }] }));
    await expect(MaxmindLocator.open(file, { watch: false })).rejects.toThrow(/nowhere\.mmdb: none of the \d+ records sampled names a country or coordinates/);
  });
});

describe('MaxmindLocator reads the flat DB-IP / ip-location-db layout', () => {
  it('maps top-level latitude, longitude, country_code and city', async () => {
    const file = await tempDatabase(
      'dbip-city.mmdb',
      writeMmdb({
        databaseType: 'DBIP-City-Lite',
        ipVersion: 6,
        networks: [
          { network: '203.0.113.0/24', data: { city: 'Sydney', country_code: 'AU', latitude: mmdbDouble(-33.8688), longitude: mmdbDouble(151.2093) } },
          { network: '2001:db8::/32', data: { country_code: 'DE' } },
        ],
      }),
    );
    const l = await locator(file);
    expect(l.locate('203.0.113.50')).toMatchObject({ country: 'AU', city: 'Sydney', lat: -33.8688, lon: 151.2093, source: 'geoip' });
    expect(l.locate('2001:db8::5')).toMatchObject({ country: 'DE', source: 'geoip-country' });
  });

  it('takes (0, 0), written for "coordinates unknown", as a country-only record, so the country fallback ranks the client', async () => {
    const file = await tempDatabase(
      'dbip-city.mmdb',
      writeMmdb({
        databaseType: 'DBIP-City-Lite',
        ipVersion: 6,
        networks: [{ network: '203.0.113.0/24', data: { country_code: 'GH', latitude: mmdbDouble(0), longitude: mmdbDouble(0) } }],
      }),
    );
    const l = await locator(file);
    expect(l.locate('203.0.113.9')).toMatchObject({ country: 'GH', lat: null, lon: null, source: 'geoip-country' });
  });
});

describe('MaxmindLocator on records that do not say where the client is', () => {
  it.each([
    ['an anycast network', { country: { iso_code: 'US' }, location: { latitude: mmdbDouble(37.751), longitude: mmdbDouble(-97.822) }, traits: { is_anycast: true } }],
    ['a satellite provider known only by its registered country', { registered_country: { iso_code: 'US' }, traits: { is_satellite_provider: true } }],
  ])('%s is unlocated (default region), not placed in the registrant\'s country', async (_name, data) => {
    const elsewhere = { country: { iso_code: 'DE' }, location: { latitude: mmdbDouble(50.11), longitude: mmdbDouble(8.68) } };
    const networks = [{ network: '198.51.100.0/24', data }, { network: '203.0.113.0/24', data: elsewhere }];
    const file = await tempDatabase('city.mmdb', writeMmdb({ databaseType: 'Test-City', ipVersion: 6, networks }));
    const l = await locator(file);
    expect(l.locate('198.51.100.7')).toMatchObject({ country: null, lat: null, lon: null, source: 'unknown' });
  });
});

describe('MaxmindLocator reload', () => {
  const cityDb = (city: string, lat: number, lon: number) =>
    writeMmdb({
      databaseType: 'Test-City',
      ipVersion: 6,
      networks: [{ network: '198.51.100.0/24', data: { city: { names: { en: city } }, country: { iso_code: 'XX' }, location: { latitude: mmdbDouble(lat), longitude: mmdbDouble(lon) } } }],
    });

  it('picks up a replaced file without a restart, and keeps the old database when the new one is bad', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edge-geo-'));
    const file = join(dir, 'city.mmdb');
    await writeFile(file, cityDb('Oldtown', 10, 10));
    const events: GeoEvent[] = [];
    const l = await locator(file, { watch: true, reloadDebounceMs: 50, onEvent: (e) => events.push(e) });
    expect(l.locate('198.51.100.7').city).toBe('Oldtown');

    // Replace by rename, as database updaters do.
    await writeFile(join(dir, 'city.mmdb.new'), cityDb('Newtown', 20, 20));
    await rename(join(dir, 'city.mmdb.new'), file);
    await until(() => events.filter((e) => e.type === 'loaded').length === 2);
    expect(l.locate('198.51.100.7')).toMatchObject({ city: 'Newtown', lat: 20 });

    // A broken replacement is refused; lookups go on with the previous database.
    await copyFile(join(FIXTURES, 'GeoIP2-City-Test-Broken-Double-Format.mmdb'), join(dir, 'broken.tmp'));
    await rename(join(dir, 'broken.tmp'), file);
    await until(() => events.some((e) => e.type === 'reload-failed'));
    expect(events.find((e) => e.type === 'reload-failed')).toMatchObject({ file, reason: expect.stringMatching(/absurdly close to zero/) });
    expect(l.locate('198.51.100.7')).toMatchObject({ city: 'Newtown' });
  });

  it('refuses a FIFO put in place of the database, keeping the one it has, and takes the next good one', async () => {
    // The FIFO's open() waited for a writer, and every later reload queued behind it, silently.
    const dir = await mkdtemp(join(tmpdir(), 'edge-geo-'));
    const file = join(dir, 'city.mmdb');
    await writeFile(file, cityDb('Oldtown', 10, 10));
    const events: GeoEvent[] = [];
    const l = await locator(file, { watch: true, reloadDebounceMs: 50, onEvent: (e) => events.push(e) });
    execFileSync('mkfifo', [join(dir, 'pipe.tmp')]);
    await rename(join(dir, 'pipe.tmp'), file);
    await until(() => events.some((e) => e.type === 'reload-failed'));
    expect(events.find((e) => e.type === 'reload-failed')).toMatchObject({ file, reason: expect.stringMatching(/expected a MaxMind DB file, found a FIFO, socket or device/) });
    expect(l.locate('198.51.100.7').city).toBe('Oldtown');
    await writeFile(join(dir, 'city.mmdb.new'), cityDb('Newtown', 20, 20));
    await rename(join(dir, 'city.mmdb.new'), file);
    await until(() => l.locate('198.51.100.7').city === 'Newtown');
  });

  it('follows a Kubernetes volume update: the file is a symlink through ..data, which is swapped', async () => {
    // The kubelet's AtomicWriter (ConfigMap, Secret, projected volumes): a new timestamped directory,
    // a `..data_tmp` symlink to it renamed over `..data`, the old one removed. `city.mmdb` never changes.
    const dir = await mkdtemp(join(tmpdir(), 'edge-geo-'));
    await mkdir(join(dir, '..v1'));
    await writeFile(join(dir, '..v1', 'city.mmdb'), cityDb('Oldtown', 10, 10));
    await symlink('..v1', join(dir, '..data'));
    await symlink('..data/city.mmdb', join(dir, 'city.mmdb'));
    const events: GeoEvent[] = [];
    const l = await locator(join(dir, 'city.mmdb'), { watch: true, reloadDebounceMs: 50, onEvent: (e) => events.push(e) });

    await mkdir(join(dir, '..v2'));
    await writeFile(join(dir, '..v2', 'city.mmdb'), cityDb('Newtown', 20, 20));
    await symlink('..v2', join(dir, '..data_tmp'));
    await rename(join(dir, '..data_tmp'), join(dir, '..data'));
    await rm(join(dir, '..v1'), { recursive: true });
    // Until the new database answers: a busy host may let the watch see the new directory and
    // symlink before the swap, and reload the old file once first.
    await until('the swapped volume to load', () => l.locate('198.51.100.7').city === 'Newtown');
    expect(events.filter((e) => e.type === 'reload-failed')).toEqual([]);
  });

  it('follows a directory that is itself a symlink swapped to another release, every time', async () => {
    // `ln -s releases/v2 live.tmp && mv -T live.tmp live`: nothing changes inside the directory the
    // watch was opened on; only its parent sees the swap.
    const base = await mkdtemp(join(tmpdir(), 'edge-geo-'));
    for (const [i, city] of ['One', 'Two', 'Three'].entries()) {
      await mkdir(join(base, `v${i + 1}`));
      await writeFile(join(base, `v${i + 1}`, 'city.mmdb'), cityDb(city, 10 + i, 10 + i));
    }
    await symlink('v1', join(base, 'live'));
    const events: GeoEvent[] = [];
    const l = await locator(join(base, 'live', 'city.mmdb'), { watch: true, reloadDebounceMs: 50, onEvent: (e) => events.push(e) });
    for (const [version, city] of [[2, 'Two'], [3, 'Three']] as const) {
      await symlink(`v${version}`, join(base, 'live.tmp'));
      await rename(join(base, 'live.tmp'), join(base, 'live'));
      await until(`release v${version} to load`, () => l.locate('198.51.100.7').city === city);
    }
  });

  it('follows a symlink to a file in another directory when that file is replaced', async () => {
    // `--geoip /etc/edge/city.mmdb` → /var/lib/GeoIP/GeoLite2-City.mmdb, which geoipupdate replaces
    // by rename: nothing changes in /etc/edge, so only the file's identity (checked every pollMs) tells.
    const shared = await mkdtemp(join(tmpdir(), 'edge-geo-'));
    const own = await mkdtemp(join(tmpdir(), 'edge-geo-'));
    await writeFile(join(shared, 'GeoLite2-City.mmdb'), cityDb('Oldtown', 10, 10));
    await symlink(join(shared, 'GeoLite2-City.mmdb'), join(own, 'city.mmdb'));
    const events: GeoEvent[] = [];
    const l = await locator(join(own, 'city.mmdb'), { watch: true, reloadDebounceMs: 50, pollMs: 50, onEvent: (e) => events.push(e) });

    await writeFile(join(shared, 'GeoLite2-City.mmdb.tmp'), cityDb('Newtown', 20, 20));
    await rename(join(shared, 'GeoLite2-City.mmdb.tmp'), join(shared, 'GeoLite2-City.mmdb'));
    await until('the replaced target to load', () => l.locate('198.51.100.7').city === 'Newtown');
    // Once taken, an unchanged file is not read again at every check.
    const loads = events.filter((e) => e.type === 'loaded').length;
    await new Promise((r) => setTimeout(r, 300));
    expect(events.filter((e) => e.type === 'loaded')).toHaveLength(loads);
  });

  it('answers every lookup while a reload is under way, from the database before or the one after, never from none', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edge-geo-'));
    const file = join(dir, 'city.mmdb');
    await writeFile(file, cityDb('A', 1, 1));
    // A cache of one, the 20 addresses below taken in turn: every lookup reads the database in use.
    const l = await locator(file, { cacheSize: 1 });
    const cities = ['A'];
    for (const city of ['B', 'C', 'D']) {
      await writeFile(join(dir, 'next.tmp'), cityDb(city, 2, 2));
      await rename(join(dir, 'next.tmp'), file);
      let done = false;
      const reload = l.reload().then(() => (done = true));
      // Lookups between every turn of the event loop the reload takes (it reads and checks the file).
      let turns = 0;
      while (!done) {
        for (let i = 0; i < 20; i++) expect([cities.at(-1), city]).toContain(l.locate(`198.51.100.${i}`).city);
        turns++;
        await new Promise((resolve) => setImmediate(resolve));
      }
      await reload;
      expect(turns).toBeGreaterThan(1);
      expect(l.locate('198.51.100.7').city).toBe(city);
      cities.push(city);
    }
  });

  it('leaves a client of a network whose record it cannot read unlocated, reporting the record, never failing the lookup', async () => {
    // The bad record (a uint64 country code, which the reader decodes as a BigInt) is 10.0.0.0/24,
    // with a good sibling network at each of the 16 branchings below 10/8: a load-time descent
    // reaches it once in 65,536, so the database loads, as a large one with one bad record would.
    const good = { country: { iso_code: 'DE' }, location: { latitude: mmdbDouble(50.1), longitude: mmdbDouble(8.7) } };
    const siblings = Array.from({ length: 16 }, (_, i) => {
      const bits = (10 << 24) | (1 << (23 - i)); // 10.128.0.0/9, 10.64.0.0/10, …, 10.0.1.0/24
      return { network: `${bits >>> 24}.${(bits >>> 16) & 255}.${(bits >>> 8) & 255}.0/${9 + i}`, data: good };
    });
    const networks = [...siblings, { network: '10.0.0.0/24', data: { country: { iso_code: mmdbUint64(1) } } }];
    const file = await tempDatabase('city.mmdb', writeMmdb({ databaseType: 'Test-City', ipVersion: 6, networks }));
    const events: GeoEvent[] = [];
    const l = await locator(file, { onEvent: (e) => events.push(e) });
    expect(l.locate('10.0.1.9')).toMatchObject({ country: 'DE', source: 'geoip' });
    expect(l.locate('10.0.0.7')).toMatchObject({ ip: '10.0.0.7', country: null, lat: null });
    expect(events).toContainEqual({ type: 'bad-record', ip: '10.0.0.7', reason: 'country code 1 (bigint) is not two capital letters' });
  });

  it('refuses a database whose sampled record cannot be read, naming the file and why', async () => {
    const file = await tempDatabase('bigint.mmdb', writeMmdb({ databaseType: 'Test-City', ipVersion: 6, networks: [{ network: '203.0.113.0/24', data: { country: { iso_code: mmdbUint64(1) } } }] }));
    const err = await MaxmindLocator.open(file, { watch: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GeoDatabaseError);
    expect((err as Error).message).toMatch(/bigint\.mmdb: record for 203\.0\.113\.\d+: country code 1 \(bigint\) is not two capital letters/);
  });
});

describe('NoDatabaseLocator', () => {
  it('locates nobody but still tells loopback and private addresses apart', () => {
    const l = new NoDatabaseLocator();
    expect(l.locate('81.2.69.160')).toMatchObject({ source: 'no-database', lat: null });
    expect(l.locate('::ffff:127.0.0.1').source).toBe('loopback');
    expect(l.locate('172.20.0.1').source).toBe('private');
  });
});

describe('MaxmindLocator with an IPv4-only database', () => {
  it('locates IPv4 clients (mapped ones too) and leaves IPv6 ones unlocated, rather than placing them by their first 32 bits', async () => {
    // Seen in review: the reader walked an IPv6 address's first 32 bits down the IPv4 tree, so a
    // Frankfurt address (2a00:…) came back from 42.0.0.0/8, in Korea, and was sent to Sydney.
    const events: GeoEvent[] = [];
    const file = await tempDatabase(
      'cc0-v4.mmdb',
      writeMmdb({
        databaseType: 'ipinfo-country-v4',
        ipVersion: 4,
        networks: [
          { network: '32.0.0.0/8', data: { country_code: 'US' } },
          { network: '42.0.0.0/8', data: { country_code: 'KR' } },
          { network: '203.0.113.0/24', data: { country_code: 'AU' } },
        ],
      }),
    );
    const l = await locator(file, { onEvent: (e) => events.push(e) });
    expect(events).toEqual([expect.objectContaining({ type: 'loaded', ipVersion: 4 })]);
    expect(l.locate('203.0.113.7')).toMatchObject({ country: 'AU', source: 'geoip-country' });
    expect(l.locate('::ffff:203.0.113.7')).toMatchObject({ country: 'AU', source: 'geoip-country' });
    for (const ip of ['2a00:1450:4001:80b::200e', '2001:4860:4860::8888']) expect(l.locate(ip), ip).toMatchObject({ country: null, lat: null, source: 'unknown' });
  });
});
