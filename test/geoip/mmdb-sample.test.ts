import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Reader, type Response } from 'maxmind';
import { sampleMmdbNetworks, type MmdbSampleResult } from '../../src/geoip/mmdb-sample.js';
import { MMDB_METADATA_MARKER, writeMmdb, type MmdbNetwork } from '../../src/geoip/mmdb-writer.js';

const fixture = (name: string): Buffer => readFileSync(fileURLToPath(new URL(`../fixtures/geo/${name}`, import.meta.url)));

function addressesOf(result: MmdbSampleResult): string[] {
  if (!result.ok) throw new Error(`expected ok, got: ${result.reason}`);
  return result.addresses;
}

/** A hand-made database with 24-bit records: tree, separator, data, metadata marker (no metadata map needed). */
function rawDb(nodes: Array<[number, number]>, data: Buffer = Buffer.alloc(0)): Buffer {
  const tree = Buffer.alloc(nodes.length * 6);
  nodes.forEach(([left, right], i) => {
    tree.writeUIntBE(left, i * 6, 3);
    tree.writeUIntBE(right, i * 6 + 3, 3);
  });
  return Buffer.concat([tree, Buffer.alloc(16), data, MMDB_METADATA_MARKER]);
}

describe('sampleMmdbNetworks on the MaxMind test databases', () => {
  it.each(['GeoIP2-City-Test.mmdb', 'GeoIP2-Country-Test.mmdb', 'GeoLite2-City-Test.mmdb', 'GeoLite2-Country-Test.mmdb'])(
    '%s: every sampled address resolves to a record',
    (name) => {
      const buf = fixture(name);
      const reader = new Reader<Response>(buf);
      const addresses = addressesOf(sampleMmdbNetworks(buf, reader.metadata, { seed: 1 }));

      expect(addresses.length).toBeGreaterThan(20);
      expect(new Set(addresses).size).toBe(addresses.length);
      // IPv4 networks (found under ::/96) come back dotted, the rest as IPv6.
      expect(addresses.some((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a))).toBe(true);
      expect(addresses.some((a) => a.includes(':'))).toBe(true);
      let withContinent = 0;
      for (const address of addresses) {
        const record = reader.get(address);
        expect(record, address).toBeTypeOf('object');
        expect(record, address).not.toBeNull();
        if (record !== null && 'continent' in record) withContinent++;
      }
      // Most records are geographic; a few (anycast networks) carry only { traits: { is_anycast: true } }.
      expect(withContinent).toBeGreaterThan(addresses.length * 0.8);
    },
  );

  it('finds more networks with more samples', () => {
    const buf = fixture('GeoIP2-City-Test.mmdb');
    const { metadata } = new Reader<Response>(buf);
    const few = addressesOf(sampleMmdbNetworks(buf, metadata, { samples: 16, seed: 3 }));
    const many = addressesOf(sampleMmdbNetworks(buf, metadata, { samples: 4096, seed: 3 }));
    expect(few.length).toBeLessThanOrEqual(16);
    expect(many.length).toBeGreaterThan(few.length * 5);
    // A descent can reach one of the 16 nodes whose records are both empty (MaxMind's writer
    // leaves them where reserved networks were removed): it then backs up, so each finds data.
    for (let seed = 0; seed < 20; seed++) {
      expect(addressesOf(sampleMmdbNetworks(buf, metadata, { samples: 1, seed }))).toHaveLength(1);
    }
  });

  it('rejects GeoIP2-City-Test-Invalid-Node-Count.mmdb, which mmdb-lib opens but cannot look up in', () => {
    const buf = fixture('GeoIP2-City-Test-Invalid-Node-Count.mmdb');
    // The reader trusts node_count (100000): construction succeeds, lookups then read garbage.
    const reader = new Reader<Response>(buf);
    expect(reader.metadata.nodeCount).toBe(100_000);
    expect(() => reader.get('81.2.69.142')).toThrow();

    expect(sampleMmdbNetworks(buf, reader.metadata)).toEqual({
      ok: false,
      reason:
        'node count 100000 is larger than the file can hold: a 700000-byte search tree plus separator ' +
        'would run past the metadata at byte 22571 (file is 22876 bytes)',
    });
  });

  it('passes GeoIP2-City-Test-Broken-Double-Format.mmdb: its tree is sound, only its doubles are wrong', () => {
    // The sampler checks structure only; the caller's record check must catch the garbage coordinates.
    const buf = fixture('GeoIP2-City-Test-Broken-Double-Format.mmdb');
    const reader = new Reader<Response>(buf);
    const addresses = addressesOf(sampleMmdbNetworks(buf, reader.metadata, { seed: 1 }));
    const latitudes = addresses.map((a) => (reader.get(a) as { location?: { latitude?: number } } | null)?.location?.latitude);
    expect(latitudes.every((lat) => lat === undefined || (lat !== 0 && Math.abs(lat) < 1e-30))).toBe(true);
    expect(latitudes.some((lat) => lat !== undefined)).toBe(true);
  });

  it('is deterministic for a seed and varies with it', () => {
    const buf = fixture('GeoIP2-City-Test.mmdb');
    const { metadata } = new Reader<Response>(buf);
    const run = (seed?: number): string[] => addressesOf(sampleMmdbNetworks(buf, metadata, seed === undefined ? {} : { seed }));
    expect(run(42)).toEqual(run(42));
    expect(run()).toEqual(run(0));
    expect(run(42)).not.toEqual(run(43));
  });
});

describe('sampleMmdbNetworks on databases from writeMmdb', () => {
  const shapes = [24, 28, 32].flatMap((recordSize) => [4, 6].map((ipVersion) => ({ recordSize, ipVersion })));

  it.each(shapes)('finds exactly the written networks (recordSize $recordSize, IPv$ipVersion)', ({ recordSize, ipVersion }) => {
    const networks: MmdbNetwork[] = [
      { network: '10.0.0.0/8', data: { id: 'ten' } },
      { network: '81.2.69.0/24', data: { id: 'london' } },
      { network: '192.0.2.7/32', data: { id: 'host' } },
      { network: '0.0.0.0/32', data: { id: 'zero' } },
      { network: '255.255.255.0/24', data: { id: 'top' } },
    ];
    if (ipVersion === 6) {
      networks.push(
        { network: '2001:db8::/32', data: { id: 'doc' } },
        { network: '2a02:ed00::/29', data: { id: 'isp' } },
        { network: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128', data: { id: 'last' } },
        { network: '1:0:0:1::/64', data: { id: 'groups' } },
      );
    }
    const buf = writeMmdb({
      databaseType: 'T',
      ipVersion: ipVersion as 4 | 6,
      recordSize: recordSize as 24 | 28 | 32,
      buildEpoch: 0,
      networks,
    });
    const reader = new Reader<Response>(buf);
    const addresses = addressesOf(sampleMmdbNetworks(buf, reader.metadata, { samples: 2048, seed: 7 }));

    // Without overlaps each network is one leaf, and its address is the network address.
    expect([...addresses].sort()).toEqual(networks.map((n) => n.network.split('/')[0]).sort());
    for (const address of addresses) expect(reader.get(address)).not.toBeNull();
  });

  it('covers every part of a network that a later, more specific one split', () => {
    const buf = writeMmdb({
      databaseType: 'T',
      ipVersion: 6,
      buildEpoch: 0,
      networks: [
        { network: '10.0.0.0/8', data: 'broad' },
        { network: '10.1.0.0/16', data: 'specific' },
      ],
    });
    const reader = new Reader<Response>(buf);
    // The smallest remainders are reached by 1 descent in 256 on average.
    const addresses = addressesOf(sampleMmdbNetworks(buf, reader.metadata, { samples: 4096, seed: 1 }));
    // 10.0.0.0/8 minus 10.1.0.0/16 leaves one remainder for each of the 8 bits in between.
    expect(addresses.filter((a) => (reader.get(a) as unknown) === 'broad').sort()).toEqual(
      ['10.0.0.0', '10.2.0.0', '10.4.0.0', '10.8.0.0', '10.16.0.0', '10.32.0.0', '10.64.0.0', '10.128.0.0'].sort(),
    );
    expect(addresses.filter((a) => (reader.get(a) as unknown) === 'specific')).toEqual(['10.1.0.0']);
  });

  it('returns no addresses for a database without networks', () => {
    const buf = writeMmdb({ databaseType: 'T', ipVersion: 6, networks: [] });
    expect(sampleMmdbNetworks(buf, new Reader<Response>(buf).metadata)).toEqual({ ok: true, addresses: [] });
  });

  it.each([
    ['a short all-zero path', ['::/64'], ['::']],
    ['a full-length path outside ::/96', ['::1:0:0/96', '1.0.0.0/8'], ['1.0.0.0', '::1:0:0']],
    ['IPv4-mapped addresses (not ::/96)', ['::ffff:0:0/96', '2001:db8::/32'], ['2001:db8::', '::ffff:0:0']],
    ['a full IPv6 address', ['1:2:3:4:5:6:7:8/128', 'fe80::/10'], ['1:2:3:4:5:6:7:8', 'fe80::']],
  ])('formats %s', (_name, cidrs, expected) => {
    const buf = writeMmdb({ databaseType: 'T', ipVersion: 6, networks: cidrs.map((network) => ({ network, data: network })) });
    const reader = new Reader<Response>(buf);
    const addresses = addressesOf(sampleMmdbNetworks(buf, reader.metadata));
    expect([...addresses].sort()).toEqual(expected);
    expect(addresses.map((a) => reader.get(a)).sort()).toEqual([...cidrs].sort());
  });
});

describe('sampleMmdbNetworks on damaged input', () => {
  const v6 = { nodeCount: 1, recordSize: 24, ipVersion: 6 };
  const v4 = { ...v6, ipVersion: 4 };

  it('reports a missing metadata marker for empty and truncated files', () => {
    const buf = fixture('GeoIP2-City-Test.mmdb');
    const { metadata } = new Reader<Response>(buf);
    const marker = buf.lastIndexOf(MMDB_METADATA_MARKER);
    for (const length of [0, 10, 1000, metadata.searchTreeSize, marker, marker + 5]) {
      expect(sampleMmdbNetworks(buf.subarray(0, length), metadata)).toEqual({
        ok: false,
        reason: 'no metadata marker found (truncated or not a MaxMind DB)',
      });
    }
  });

  it('reports data pointers past a truncated data section', () => {
    const buf = fixture('GeoIP2-City-Test.mmdb');
    const { metadata } = new Reader<Response>(buf);
    const dataStart = metadata.searchTreeSize + 16;
    const cut = Buffer.concat([buf.subarray(0, dataStart + 200), buf.subarray(buf.lastIndexOf(MMDB_METADATA_MARKER))]);
    const result = sampleMmdbNetworks(cut, metadata);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toMatch(
      new RegExp(`^node \\d+ points to data at byte \\d+, outside the data section \\(bytes ${dataStart} to ${dataStart + 199}\\)$`),
    );
  });

  it('reports a node count the file cannot hold', () => {
    const buf = rawDb([[1, 1]]);
    expect(sampleMmdbNetworks(buf, { ...v6, nodeCount: 1 })).toEqual({ ok: true, addresses: [] });
    expect(sampleMmdbNetworks(buf, { ...v6, nodeCount: 2 })).toEqual({
      ok: false,
      reason:
        'node count 2 is larger than the file can hold: a 12-byte search tree plus separator ' +
        'would run past the metadata at byte 22 (file is 36 bytes)',
    });
  });

  it.each([
    ['a cycle in an IPv6 tree', [[0, 1]], v6, /^a descent went deeper than 128 bits without reaching data \(node 0\)/],
    ['a cycle in an IPv4 tree', [[0, 0]], v4, /^a descent went deeper than 32 bits/],
    ['a two-node loop', [[1, 2], [0, 2]], { ...v6, nodeCount: 2 }, /deeper than 128 bits/],
    ['a pointer into the separator', [[2, 1]], v6, /^node 0 points to data at byte 7, outside the data section \(bytes 22 to 25\)$/],
    ['a pointer past the data section', [[1, 1 + 16 + 4]], v6, /^node 0 points to data at byte 26, outside the data section \(bytes 22 to 25\)$/],
  ] as Array<[string, Array<[number, number]>, typeof v6, RegExp]>)('reports %s', (_name, nodes, metadata, reason) => {
    const result = sampleMmdbNetworks(rawDb(nodes, Buffer.from('4161c101', 'hex')), metadata);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toMatch(reason);
  });

  it('accepts data at the full depth of 32 or 128 bits, and a dead-end node', () => {
    // A chain of nodes taking the left branch down to a data record at the last bit.
    const chain = (depth: number): Array<[number, number]> =>
      Array.from({ length: depth }, (_, i) => [i + 1 < depth ? i + 1 : depth + 16, depth]);
    expect(sampleMmdbNetworks(rawDb(chain(32), Buffer.from('40', 'hex')), { ...v4, nodeCount: 32 })).toEqual({
      ok: true,
      addresses: ['0.0.0.0'],
    });
    expect(sampleMmdbNetworks(rawDb(chain(128), Buffer.from('40', 'hex')), { ...v6, nodeCount: 128 })).toEqual({
      ok: true,
      addresses: ['0.0.0.0'],
    });
    expect(sampleMmdbNetworks(rawDb(chain(33), Buffer.from('40', 'hex')), { ...v4, nodeCount: 33 })).toMatchObject({ ok: false });
  });

  it('backs out of dead ends (nodes whose records are both empty)', () => {
    // Node 1 is a dead end: every descent ends up at 128.0.0.0/1, whatever it tries first.
    for (let seed = 0; seed < 10; seed++) {
      expect(sampleMmdbNetworks(rawDb([[1, 2 + 16], [2, 2]], Buffer.from('40', 'hex')), { ...v4, nodeCount: 2 }, { seed })).toEqual({
        ok: true,
        addresses: ['128.0.0.0'],
      });
    }
    // Only dead ends below the root: nothing to sample, but nothing wrong either.
    expect(sampleMmdbNetworks(rawDb([[1, 3], [2, 3], [3, 3]]), { ...v4, nodeCount: 3 })).toEqual({ ok: true, addresses: [] });
    // A dead end deep down one branch of a two-network tree: both networks are still found.
    const nodes: Array<[number, number]> = [
      [1, 2], // 0: left → 1, right → 2
      [3, 5 + 16], // 1: 0x… left → dead node 3, right → data (64.0.0.0/2)
      [4, 5], // 2: 1x… left → node 4, right → empty
      [5, 5], // 3: dead end
      [5, 5 + 16], // 4: 10x… right → data (160.0.0.0/3)
    ];
    const found = addressesOf(sampleMmdbNetworks(rawDb(nodes, Buffer.from('40', 'hex')), { ...v4, nodeCount: 5 }, { samples: 64 }));
    expect([...found].sort()).toEqual(['160.0.0.0', '64.0.0.0']);
  });

  it.each([
    ['record size 30', { ...v6, recordSize: 30 }, 'unsupported record size 30'],
    ['IP version 5', { ...v6, ipVersion: 5 }, 'unsupported IP version 5'],
    ['node count 0', { ...v6, nodeCount: 0 }, 'invalid node count 0'],
    ['node count -1', { ...v6, nodeCount: -1 }, 'invalid node count -1'],
    ['node count 1.5', { ...v6, nodeCount: 1.5 }, 'invalid node count 1.5'],
    ['node count NaN', { ...v6, nodeCount: NaN }, 'invalid node count NaN'],
  ])('rejects metadata with %s', (_name, metadata, reason) => {
    expect(sampleMmdbNetworks(rawDb([[1, 1]]), metadata)).toEqual({ ok: false, reason });
  });

  it.each([
    ['samples 0', { samples: 0 }, 'samples must be a positive integer, got 0'],
    ['samples 1.5', { samples: 1.5 }, 'samples must be a positive integer, got 1.5'],
    ['seed NaN', { seed: NaN }, 'seed must be a finite number, got NaN'],
  ])('rejects options with %s', (_name, options, reason) => {
    expect(sampleMmdbNetworks(rawDb([[1, 1]]), v6, options)).toEqual({ ok: false, reason });
  });

  it('never throws on garbage, whatever the metadata claims', () => {
    let state = 12345;
    const byte = (): number => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state >>> 24;
    };
    const outcomes = { ok: 0, failed: 0 };
    for (let round = 0; round < 200; round++) {
      const garbage = Buffer.from(Array.from({ length: 64 + (round % 7) * 300 }, byte));
      const buf = round % 5 === 0 ? garbage : Buffer.concat([garbage, MMDB_METADATA_MARKER, garbage.subarray(0, round % 13)]);
      const metadata = { nodeCount: 1 + (round % 97), recordSize: [24, 28, 32][round % 3] as number, ipVersion: round % 2 ? 4 : 6 };
      const result = sampleMmdbNetworks(buf, metadata, { samples: 32, seed: round });
      if (result.ok) {
        outcomes.ok++;
        for (const address of result.addresses) expect(address).toMatch(/^[\d.]+$|:/);
      } else {
        outcomes.failed++;
        expect(result.reason.length).toBeGreaterThan(10);
      }
    }
    expect(outcomes.failed).toBeGreaterThan(100);
    // Not a Buffer, no metadata: still a result, not an exception.
    expect(sampleMmdbNetworks('nope' as unknown as Buffer, v6)).toEqual({ ok: false, reason: 'the database is not a Buffer' });
    expect(sampleMmdbNetworks(rawDb([[1, 1]]), null as unknown as typeof v6)).toEqual({ ok: false, reason: 'metadata is missing' });
  });
});
