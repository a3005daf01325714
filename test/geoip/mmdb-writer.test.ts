import { describe, it, expect } from 'vitest';
import { Reader, type Response } from 'maxmind';
import {
  MMDB_METADATA_MARKER,
  MmdbTyped,
  mmdbDouble,
  mmdbFloat,
  mmdbInt32,
  mmdbUint16,
  mmdbUint32,
  mmdbUint64,
  writeMmdb,
  type MmdbNetwork,
  type MmdbValue,
  type MmdbWriterOptions,
} from '../../src/geoip/mmdb-writer.js';

const EPOCH = 1_700_000_000;

function build(networks: MmdbNetwork[], extra: Partial<MmdbWriterOptions> = {}): Buffer {
  return writeMmdb({ databaseType: 'Test-DB', ipVersion: 6, buildEpoch: EPOCH, networks, ...extra });
}

function open(buf: Buffer): Reader<Response> {
  return new Reader<Response>(buf);
}

/** The data section bytes, located from the metadata the real reader parsed. */
function dataSection(buf: Buffer): Buffer {
  const { nodeCount, recordSize } = open(buf).metadata;
  return buf.subarray((nodeCount * recordSize) / 4 + 16, buf.lastIndexOf(MMDB_METADATA_MARKER));
}

const cityRecord = {
  city: { geoname_id: 3448439, names: { en: 'São Paulo', pt: 'São Paulo', ja: 'サンパウロ' } },
  country: { iso_code: 'BR', is_in_european_union: false, names: { en: 'Brazil' } },
  location: { latitude: mmdbDouble(-23.5475), longitude: mmdbDouble(-46.63611), accuracy_radius: mmdbUint16(20) },
  subdivisions: [{ iso_code: 'SP', names: { en: 'São Paulo' } }, { iso_code: 'XX', names: { en: 'Nowhere' } }],
  tags: [],
};
const cityDecoded = {
  ...cityRecord,
  location: { latitude: -23.5475, longitude: -46.63611, accuracy_radius: 20 },
};

describe('writeMmdb round trip through mmdb-lib', () => {
  const shapes = [24, 28, 32].flatMap((recordSize) => [4, 6].map((ipVersion) => ({ recordSize, ipVersion })));

  it.each(shapes)('recordSize $recordSize, IPv$ipVersion', ({ recordSize, ipVersion }) => {
    const networks: MmdbNetwork[] = [
      { network: '0.0.0.0/1', data: { name: 'low-half' } },
      { network: '81.2.69.0/24', data: cityRecord },
      { network: '10.0.0.0/8', data: { name: 'ten' } },
      { network: '192.0.2.7/32', data: 'host' },
    ];
    if (ipVersion === 6) {
      networks.push({ network: '2001:db8::/32', data: { name: 'doc' } }, { network: 'ffff:ffff::/128', data: 1 });
    }
    const reader = open(build(networks, { ipVersion: ipVersion as 4 | 6, recordSize: recordSize as 24 | 28 | 32 }));

    expect(reader.metadata.recordSize).toBe(recordSize);
    expect(reader.metadata.ipVersion).toBe(ipVersion);
    expect(reader.get('81.2.69.142')).toEqual(cityDecoded);
    expect(reader.getWithPrefixLength('81.2.69.1')).toEqual([cityDecoded, 24]);
    expect(reader.get('10.200.1.1')).toEqual({ name: 'ten' });
    expect(reader.getWithPrefixLength('192.0.2.7')).toEqual(['host', 32]);
    expect(reader.get('192.0.2.8')).toBeNull();
    expect(reader.get('64.1.1.1')).toEqual({ name: 'low-half' });
    expect(reader.get('128.0.0.0')).toBeNull();
    expect(reader.get('255.255.255.255')).toBeNull();
    if (ipVersion === 6) {
      expect(reader.getWithPrefixLength('2001:db8:1::1')).toEqual([{ name: 'doc' }, 32]);
      expect(reader.get('ffff:ffff::')).toBe(1);
      expect(reader.get('ffff:ffff::1')).toBeNull();
      expect(reader.get('2001:db9::')).toBeNull();
      // IPv4 networks live under ::/96, so the IPv4-compatible spelling finds them too.
      expect(reader.get('::81.2.69.142')).toEqual(cityDecoded);
      // No ::ffff:0:0/96 alias is written.
      expect(reader.get('::ffff:81.2.69.142')).toBeNull();
    }
  });

  it('stores every scalar type the reader knows', () => {
    const reader = open(
      build([
        {
          network: '1.0.0.0/8',
          data: {
            u16: mmdbUint16(65535),
            u32: mmdbUint32(4294967295),
            u64: mmdbUint64(2n ** 64n - 1n),
            u64small: mmdbUint64(7),
            i32min: mmdbInt32(-(2 ** 31)),
            i32max: mmdbInt32(2 ** 31 - 1),
            i32pos: mmdbInt32(300),
            double: mmdbDouble(3),
            float: mmdbFloat(1.1),
            plainInt: 123456,
            plainZero: 0,
            plainNegative: -42,
            plainFraction: 0.25,
            plainHuge: 2 ** 40,
            plainVeryNegative: -(2 ** 40),
            yes: true,
            no: false,
            empty: '',
            nested: [[1, [2, ['deep']]], { a: { b: { c: 'Zürich 東京 🌍' } } }],
          },
        },
      ]),
    );
    expect(reader.get('1.2.3.4')).toEqual({
      u16: 65535,
      u32: 4294967295,
      u64: 2n ** 64n - 1n,
      u64small: 7n,
      i32min: -(2 ** 31),
      i32max: 2 ** 31 - 1,
      i32pos: 300,
      double: 3,
      float: Math.fround(1.1),
      plainInt: 123456,
      plainZero: 0,
      plainNegative: -42,
      plainFraction: 0.25,
      plainHuge: 2 ** 40,
      plainVeryNegative: -(2 ** 40),
      yes: true,
      no: false,
      empty: '',
      nested: [[1, [2, ['deep']]], { a: { b: { c: 'Zürich 東京 🌍' } } }],
    });
  });

  it.each([
    ['uint16 258', mmdbUint16(258), 'a20102'],
    ['uint16 0 (no payload)', mmdbUint16(0), 'a0'],
    ['plain 0 as uint32', 0, 'c0'],
    ['plain 300 as uint32', 300, 'c2012c'],
    ['plain 2^32-1 as uint32', 4294967295, 'c4ffffffff'],
    ['uint32 from bigint', mmdbUint32(1n), 'c101'],
    ['plain -1 as int32 (extended type 8)', -1, '0401ffffffff'],
    ['int32 5', mmdbInt32(5), '010105'],
    ['uint64 2^40 (extended type 9)', mmdbUint64(2n ** 40n), '0602010000000000'],
    ['plain 1.5 as double', 1.5, '683ff8000000000000'],
    ['plain 2^40 as double', 2 ** 40, '684270000000000000'],
    ['float 1.5 (extended type 15)', mmdbFloat(1.5), '04083fc00000'],
    ['true (extended type 14)', true, '0107'],
    ['false', false, '0007'],
    ['string', 'ab', '426162'],
    ['map', { a: 1 }, 'e14161c101'],
    ['empty map', {}, 'e0'],
    ['array (extended type 11)', [1], '0104c101'],
    ['empty array', [], '0004'],
  ] as Array<[string, MmdbValue, string]>)('encodes %s as the spec says', (_name, value, hex) => {
    const buf = build([{ network: '1.0.0.0/8', data: value }], { ipVersion: 4 });
    expect(dataSection(buf).toString('hex')).toBe(hex);
    const expected = value instanceof MmdbTyped ? (value.kind === 'uint64' ? BigInt(value.value) : Number(value.value)) : value;
    expect(open(buf).get('1.1.1.1')).toEqual(expected);
  });

  it.each([
    [0, '40'],
    [28, '5c'],
    [29, '5d00'],
    [284, '5dff'],
    [285, '5e0000'],
    [65820, '5effff'],
    [65821, '5f000000'],
    [70000, '5f001053'],
  ])('uses the right size encoding for a %i-byte string', (length, header) => {
    const text = 'é'.repeat(length / 2) + (length % 2 ? 'x' : '');
    const buf = build([{ network: '1.0.0.0/8', data: text }], { ipVersion: 4 });
    expect(dataSection(buf).subarray(0, header.length / 2).toString('hex')).toBe(header);
    expect(dataSection(buf).length).toBe(header.length / 2 + length);
    expect(open(buf).get('1.1.1.1')).toBe(text);
  });
});

describe('writeMmdb deduplication', () => {
  // Every other /16, so no two networks are siblings that could be merged.
  const spread = (count: number, data: (i: number) => MmdbValue): MmdbNetwork[] =>
    Array.from({ length: count }, (_, i) => ({ network: `10.${i * 2}.0.0/16`, data: data(i) }));

  it('encodes identical records once', () => {
    const one = build(spread(1, () => cityRecord), { ipVersion: 4 });
    const same = build(spread(64, () => cityRecord), { ipVersion: 4 });
    const distinct = build(spread(64, (i) => ({ ...cityRecord, id: i })), { ipVersion: 4 });

    expect(dataSection(same).length).toBe(dataSection(one).length);
    expect(same.length).toBeLessThan(distinct.length / 2);
    const reader = open(same);
    for (let i = 0; i < 64; i++) expect(reader.get(`10.${i * 2}.5.5`)).toEqual(cityDecoded);
    expect(reader.get('10.1.0.0')).toBeNull();
  });

  it('points at repeated values inside and across records instead of repeating them', () => {
    const long = 'x'.repeat(20);
    const buf = build([{ network: '1.0.0.0/8', data: { a: long, b: long } }], { ipVersion: 4 });
    // map(2) "a" string(20) "b" pointer→3 (the map byte and "a" take offsets 0-2)
    expect(dataSection(buf).toString('hex')).toBe(`e24161${'54' + '78'.repeat(20)}41622003`);
    expect(open(buf).get('1.1.1.1')).toEqual({ a: long, b: long });

    // Two records sharing a big sub-map: the second refers to the first's copy.
    const shared = build(
      [
        { network: '1.0.0.0/8', data: { names: cityRecord.city.names, id: 1 } },
        { network: '3.0.0.0/8', data: { names: cityRecord.city.names, id: 2 } },
      ],
      { ipVersion: 4 },
    );
    const single = build([{ network: '1.0.0.0/8', data: { names: cityRecord.city.names, id: 1 } }], { ipVersion: 4 });
    expect(dataSection(shared).length).toBeLessThan(dataSection(single).length + 12);
    expect(open(shared).get('3.3.3.3')).toEqual({ names: cityRecord.city.names, id: 2 });
    expect(open(shared).get('1.1.1.1')).toEqual({ names: cityRecord.city.names, id: 1 });
  });

  it.each([
    ['1-byte', 100],
    ['2-byte', 3000],
    ['3-byte', 600_000],
  ])('uses %s-offset pointers when the first copy sits far into the data section', (_name, padding) => {
    const shared = { label: 'shared value that is long enough to point at' };
    const buf = build(
      [
        { network: '1.0.0.0/8', data: 'p'.repeat(padding) },
        { network: '3.0.0.0/8', data: { first: shared } },
        { network: '5.0.0.0/8', data: { second: shared } },
      ],
      { ipVersion: 4 },
    );
    const reader = open(buf);
    expect(reader.get('3.3.3.3')).toEqual({ first: shared });
    expect(reader.get('5.5.5.5')).toEqual({ second: shared });
    const sharedBytes = 1 + 6 + 1 + shared.label.length;
    // The second record is its map byte, its key and a pointer: far less than another copy.
    expect(dataSection(buf).length).toBeLessThan(padding + 5 + 7 + sharedBytes + 14);
  });

  it('tells typed values apart from equal-looking plain ones', () => {
    const reader = open(
      build(
        [
          { network: '1.0.0.0/8', data: { v: 5 } },
          { network: '3.0.0.0/8', data: { v: mmdbUint64(5) } },
          { network: '5.0.0.0/8', data: { v: mmdbDouble(5) } },
        ],
        { ipVersion: 4 },
      ),
    );
    expect(reader.get('1.1.1.1')).toEqual({ v: 5 });
    expect(reader.get('3.3.3.3')).toEqual({ v: 5n });
    expect(reader.get('5.5.5.5')).toEqual({ v: 5 });
  });
});

describe('writeMmdb overlap rule: networks apply in order, last write wins', () => {
  it('a later, more specific network overrides part of an earlier, broader one', () => {
    const reader = open(
      build(
        [
          { network: '10.0.0.0/8', data: 'broad' },
          { network: '10.1.0.0/16', data: 'specific' },
        ],
        { ipVersion: 4 },
      ),
    );
    expect(reader.getWithPrefixLength('10.1.2.3')).toEqual(['specific', 16]);
    expect(reader.get('10.0.0.1')).toBe('broad');
    expect(reader.get('10.255.255.255')).toBe('broad');
    expect(reader.get('11.0.0.0')).toBeNull();
  });

  it('a later, broader network replaces earlier, more specific ones', () => {
    const overridden = build(
      [
        { network: '10.1.0.0/16', data: 'specific' },
        { network: '10.0.0.0/8', data: 'broad' },
      ],
      { ipVersion: 4 },
    );
    const reader = open(overridden);
    expect(reader.getWithPrefixLength('10.1.2.3')).toEqual(['broad', 8]);
    expect(reader.metadata.nodeCount).toBe(open(build([{ network: '10.0.0.0/8', data: 'broad' }], { ipVersion: 4 })).metadata.nodeCount);
    // The overridden record is not written at all.
    expect(overridden.includes(Buffer.from('specific'))).toBe(false);
  });

  it('the same network twice keeps the last record', () => {
    const reader = open(
      build(
        [
          { network: '2001:db8::/32', data: 'first' },
          { network: '2001:db8::/32', data: 'second' },
        ],
        { ipVersion: 6 },
      ),
    );
    expect(reader.get('2001:db8::1')).toBe('second');
  });

  it('an IPv6 network covering ::/96 overrides earlier IPv4 networks in an IPv6 database', () => {
    const reader = open(
      build([
        { network: '1.2.3.0/24', data: 'v4' },
        { network: '5.0.0.0/8', data: 'v4-late' },
        { network: '::/64', data: 'v6' },
        { network: '5.0.0.0/8', data: 'v4-later' },
      ]),
    );
    expect(reader.get('1.2.3.4')).toBe('v6');
    expect(reader.get('::1')).toBe('v6');
    expect(reader.get('5.6.7.8')).toBe('v4-later');
  });

  it('merges sibling networks that end up with the same record', () => {
    const halves = build(
      [
        { network: '10.0.0.0/9', data: 'same' },
        { network: '10.128.0.0/9', data: 'same' },
      ],
      { ipVersion: 4 },
    );
    const whole = build([{ network: '10.0.0.0/8', data: 'same' }], { ipVersion: 4 });
    expect(open(halves).getWithPrefixLength('10.200.0.1')).toEqual(['same', 8]);
    expect(halves.equals(whole)).toBe(true);
  });
});

describe('writeMmdb search tree shape and metadata', () => {
  it.each([
    [4, '10.0.0.0/8', 8],
    [4, '10.1.2.3/32', 32],
    [4, '0.0.0.0/0', 1],
    [4, '0.0.0.0/1', 1],
    [6, '10.0.0.0/8', 104],
    [6, '2001:db8::/32', 32],
    [6, '::/0', 1],
  ] as const)('IPv%i database with %s has %i node(s)', (ipVersion, network, nodeCount) => {
    const buf = build([{ network, data: 'x' }], { ipVersion });
    const reader = open(buf);
    expect(reader.metadata.nodeCount).toBe(nodeCount);
    expect(buf.lastIndexOf(MMDB_METADATA_MARKER)).toBe(nodeCount * 7 + 16 + 2);
  });

  it('writes the metadata map', () => {
    const buf = writeMmdb({
      databaseType: 'GeoIP2-City-Sim',
      description: { en: 'Simulated city database', de: 'Simulierte Datenbank' },
      languages: ['en', 'de', 'pt-BR'],
      ipVersion: 6,
      recordSize: 32,
      buildEpoch: EPOCH,
      networks: [{ network: '10.0.0.0/8', data: 'x' }],
    });
    const { metadata } = open(buf);
    expect(metadata).toEqual({
      binaryFormatMajorVersion: 2,
      binaryFormatMinorVersion: 0,
      buildEpoch: new Date(EPOCH * 1000),
      databaseType: 'GeoIP2-City-Sim',
      description: { en: 'Simulated city database', de: 'Simulierte Datenbank' },
      ipVersion: 6,
      languages: ['en', 'de', 'pt-BR'],
      nodeByteSize: 8,
      nodeCount: 104,
      recordSize: 32,
      searchTreeSize: 832,
      treeDepth: 128,
    });
    // The search tree is followed by exactly 16 zero bytes.
    expect(buf.subarray(832, 848).equals(Buffer.alloc(16))).toBe(true);
  });

  it('defaults to 28-bit records, empty languages and description, and the current time', () => {
    const before = Math.floor(Date.now() / 1000);
    const { metadata } = open(writeMmdb({ databaseType: 'T', ipVersion: 4, networks: [] }));
    const after = Math.ceil(Date.now() / 1000);
    expect(metadata.recordSize).toBe(28);
    expect(metadata.languages).toEqual([]);
    expect(metadata.description).toEqual({});
    expect(metadata.buildEpoch.getTime()).toBeGreaterThanOrEqual(before * 1000);
    expect(metadata.buildEpoch.getTime()).toBeLessThanOrEqual(after * 1000);
  });

  it('writes a valid database with no networks: one empty root node, every lookup null', () => {
    const reader = open(build([]));
    expect(reader.metadata.nodeCount).toBe(1);
    expect(reader.get('1.2.3.4')).toBeNull();
    expect(reader.get('2001:db8::1')).toBeNull();
  });

  it('is deterministic given buildEpoch', () => {
    const networks: MmdbNetwork[] = [
      { network: '81.2.69.0/24', data: cityRecord },
      { network: '2001:db8::/32', data: { name: 'doc' } },
    ];
    expect(build(networks).equals(build(networks))).toBe(true);
  });

  it('accepts every IPv6 spelling', () => {
    const reader = open(
      build([
        { network: '2001:DB8:0:0::/64', data: 'upper' },
        { network: '1:2:3:4:5:6:7:8/128', data: 'full' },
        { network: '::1.2.3.0/120', data: 'embedded-v4' },
        { network: 'fe80::/10', data: 'link-local' },
        { network: '::ffff:0:0/96', data: 'mapped' },
      ]),
    );
    expect(reader.get('2001:db8::5')).toBe('upper');
    expect(reader.get('1:2:3:4:5:6:7:8')).toBe('full');
    expect(reader.get('1.2.3.4')).toBe('embedded-v4');
    expect(reader.get('fe80::1')).toBe('link-local');
    expect(reader.get('::ffff:9.9.9.9')).toBe('mapped');
  });

  it('refuses a database too large for 24-bit records', () => {
    // The second record lands beyond 2^24 bytes into the data section.
    const networks: MmdbNetwork[] = [
      { network: '0.0.0.0/1', data: 'x'.repeat(16_800_000) },
      { network: '128.0.0.0/1', data: 'y' },
    ];
    expect(() => build(networks, { ipVersion: 4, recordSize: 24 })).toThrow(/too large for 24-bit records/);
    expect(open(build(networks, { ipVersion: 4, recordSize: 28 })).get('200.0.0.0')).toBe('y');
  });
});

describe('writeMmdb input errors', () => {
  it.each([
    ['missing prefix length', '10.0.0.0', /invalid CIDR "10\.0\.0\.0": missing "\/prefix-length"/],
    ['IPv4 prefix over 32', '10.0.0.0/33', /prefix length must be an integer from 0 to 32/],
    ['IPv6 prefix over 128', '2001:db8::/129', /prefix length must be an integer from 0 to 128/],
    ['non-numeric prefix', '10.0.0.0/a', /prefix length/],
    ['prefix with a leading zero', '10.0.0.0/08', /prefix length/],
    ['empty prefix', '10.0.0.0/', /prefix length/],
    ['two slashes', '10.0.0.0/8/8', /prefix length/],
    ['octet over 255', '256.0.0.0/8', /"256\.0\.0\.0" is not an IPv4 address/],
    ['three octets', '10.0.0/8', /not an IPv4 address/],
    ['octet with a leading zero', '010.0.0.0/8', /not an IPv4 address/],
    ['a hostname', 'example.com/8', /not an IPv4 address/],
    ['empty string', '', /missing "\/prefix-length"/],
    ['host bits set', '10.0.0.1/8', /host bits are set/],
    ['IPv6 host bits set', '2001:db8::1/64', /host bits are set/],
    ['triple colon', '2001:db8:::/48', /not an IPv6 address/],
    ['two "::"', '1::2::3/128', /not an IPv6 address/],
    ['nine groups', '1:2:3:4:5:6:7:8:9/128', /not an IPv6 address/],
    ['"::" standing for no groups', '1:2:3:4::5:6:7:8/128', /not an IPv6 address/],
    ['seven groups without "::"', '1:2:3:4:5:6:7/112', /not an IPv6 address/],
    ['a five-digit group', '12345::/16', /not an IPv6 address/],
    ['a zone id', 'fe80::1%eth0/128', /not an IPv6 address/],
    ['IPv4 before "::"', '1.2.3.4::/128', /not an IPv6 address/],
    ['IPv6 network in an IPv4 database', '2001:db8::/32', /IPv6 network "2001:db8::\/32" cannot be stored in an IPv4 database/],
  ])('rejects %s', (_name, network, message) => {
    expect(() => build([{ network, data: 'x' }], { ipVersion: 4 })).toThrow(message);
  });

  it('names the offending entry', () => {
    const networks: MmdbNetwork[] = [
      { network: '1.0.0.0/8', data: 'a' },
      { network: '2.0.0.0/8', data: 'b' },
      { network: '3.0.0.0/8', data: 'c' },
      { network: 'nope', data: 'd' },
    ];
    expect(() => build(networks)).toThrow(/^networks\[3\]\.network: invalid CIDR "nope"/);
    expect(() => build([{ network: 42 as unknown as string, data: 'x' }])).toThrow(/networks\[0\]\.network must be a CIDR string, got number 42/);
    expect(() => build([null as unknown as MmdbNetwork])).toThrow(/networks\[0\] must be an object/);
  });

  const circular: Record<string, unknown> = { a: 1 };
  circular.self = { back: circular };

  it.each([
    ['undefined', undefined, /cannot encode networks\[0\]\.data: undefined is not a storable value/],
    ['null', null, /data: null is not a storable value/],
    ['a nested undefined', { a: { b: undefined } }, /data\.a\.b: undefined/],
    ['a null in an array', [1, null], /data\[1\]: null/],
    ['an odd key', { 'a b': null }, /data\["a b"\]: null/],
    ['NaN', NaN, /NaN is not a finite number \(use mmdbDouble\(\)/],
    ['Infinity', Infinity, /Infinity is not a finite number/],
    ['a bigint', 5n, /bigint needs a type; wrap it with mmdbUint64\(\)/],
    ['a function', () => 1, /a function is not a storable value/],
    ['a symbol', Symbol('s'), /a symbol is not a storable value/],
    ['a Date', new Date(0), /an instance of Date is not a plain object/],
    ['a Map', new Map(), /an instance of Map is not a plain object/],
    ['a Buffer', Buffer.from('x'), /an instance of Buffer is not a plain object/],
    ['a circular structure', circular, /data\.self\.back: circular reference/],
    ['uint16 65536', mmdbUint16(65536), /65536 is out of range for uint16/],
    ['uint16 -1', mmdbUint16(-1), /out of range for uint16/],
    ['uint32 2^32', mmdbUint32(2 ** 32), /out of range for uint32/],
    ['uint64 -1', mmdbUint64(-1n), /out of range for uint64/],
    ['uint64 2^64', mmdbUint64(2n ** 64n), /out of range for uint64/],
    ['int32 2^31', mmdbInt32(2 ** 31), /out of range for int32/],
    ['int32 -2^31-1', mmdbInt32(-(2 ** 31) - 1), /out of range for int32/],
    ['int32 1.5', mmdbInt32(1.5), /int32 needs an integer, got 1\.5/],
    ['uint16 NaN', mmdbUint16(NaN), /uint16 needs an integer, got NaN/],
    ['double from a string', mmdbDouble('1' as unknown as number), /double needs a number, got string 1/],
  ])('rejects data that is %s', (_name, data, message) => {
    expect(() => build([{ network: '1.0.0.0/8', data: data as MmdbValue }])).toThrow(message);
  });

  it.each([
    ['ipVersion 5', { ipVersion: 5 }, /ipVersion must be 4 or 6, got 5/],
    ['recordSize 26', { recordSize: 26 }, /recordSize must be 24, 28 or 32, got 26/],
    ['an empty databaseType', { databaseType: '' }, /databaseType must be a non-empty string/],
    ['networks that are not an array', { networks: {} }, /networks must be an array/],
    ['a negative buildEpoch', { buildEpoch: -1 }, /buildEpoch must be a non-negative integer/],
    ['a fractional buildEpoch', { buildEpoch: 1.5 }, /buildEpoch must be a non-negative integer/],
    ['languages that are not strings', { languages: [1] }, /languages must be an array of strings/],
    ['a description that is not strings', { description: { en: 1 } }, /description must map language codes to strings/],
  ])('rejects options with %s', (_name, override, message) => {
    const options = { databaseType: 'T', ipVersion: 4, networks: [], ...override } as unknown as MmdbWriterOptions;
    expect(() => writeMmdb(options)).toThrow(message);
  });
});
