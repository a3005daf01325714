// Samples addresses that lead to data records by random descents through a MaxMind DB search tree, bounds-checking every step.
//
// The raw walk exists to validate a database at load time: a reader library trusts the tree and
// fails (or reads garbage) only when a lookup happens to hit the damage, so the loader samples
// addresses here and then looks each one up with the real reader. A descent starts at node 0,
// picks a random non-empty record at every node and stops at the first data pointer; the bits
// taken become the network address (host bits zero) of the network that pointer covers. A node
// whose records are both empty is a dead end: the descent backs up and tries another branch.

import { seededRandom } from '../core/seeded-random.js';
import { thrownText } from '../core/errors.js';

export interface MmdbSampleMetadata {
  nodeCount: number;
  recordSize: number;
  ipVersion: number;
}

export interface MmdbSampleOptions {
  /**
   * Number of random descents (default 256). Each ends at data unless no data is reachable at
   * all, so the result holds at most this many (distinct) addresses.
   */
  samples?: number;
  /** PRNG seed (default 0): the same buffer, metadata and seed always give the same addresses. */
  seed?: number;
}

export type MmdbSampleResult = { ok: true; addresses: string[] } | { ok: false; reason: string };

const METADATA_MARKER = Buffer.concat([Buffer.from([0xab, 0xcd, 0xef]), Buffer.from('MaxMind.com', 'ascii')]);
const DATA_SECTION_SEPARATOR_SIZE = 16;
const IPV4_SUBTREE_DEPTH = 96;

/**
 * Returns the distinct addresses found by `samples` random descents, in discovery order, or the
 * first structural problem met. Never throws. A tree whose root holds no data gives no addresses.
 */
export function sampleMmdbNetworks(buffer: Buffer, metadata: MmdbSampleMetadata, options: MmdbSampleOptions = {}): MmdbSampleResult {
  try {
    return sample(buffer, metadata, options);
  } catch (err) {
    // Only reachable through a bug or absurd input (e.g. a getter that throws); keep the promise.
    return { ok: false, reason: `sampling failed: ${thrownText(err)}` };
  }
}

function sample(buffer: Buffer, metadata: MmdbSampleMetadata, options: MmdbSampleOptions): MmdbSampleResult {
  const fail = (reason: string): MmdbSampleResult => ({ ok: false, reason });
  const samples = options.samples ?? 256;
  const seed = options.seed ?? 0;
  if (!Number.isSafeInteger(samples) || samples < 1) return fail(`samples must be a positive integer, got ${String(samples)}`);
  if (!Number.isFinite(seed)) return fail(`seed must be a finite number, got ${String(seed)}`);

  const layout = checkLayout(buffer, metadata);
  if (typeof layout === 'string') return fail(layout);
  const { nodeCount, nodeByteSize, searchTreeSize, dataStart, dataEnd, ipVersion, maxDepth, readRecords } = layout;

  const random = seededRandom(seed);
  const addresses = new Set<string>();
  // Records (node * 2 + bit) known to lead only to nodes whose records are both empty. MaxMind's
  // own databases have such dead ends where reserved networks were removed; remembering them
  // lets every descent end at data instead of most of them ending nowhere. Each backtrack retires
  // one record for good, so all the backing out costs at most two steps per record in the tree.
  const dead = new Set<number>();
  for (let n = 0; n < samples; n++) {
    const nodes: number[] = []; // nodes on the current path, root first
    const bits: Array<0 | 1> = []; // the branch taken at each of them
    let node = 0;
    for (;;) {
      if (nodes.length >= maxDepth) {
        return fail(`a descent went deeper than ${maxDepth} bits without reaching data (node ${node}); the tree has a cycle or is corrupt`);
      }
      const offset = node * nodeByteSize;
      if (offset + nodeByteSize > searchTreeSize) {
        return fail(`node ${node} lies at byte ${offset}, beyond the ${searchTreeSize}-byte search tree`);
      }
      const records = readRecords(offset);
      const live = ([0, 1] as const).filter((bit) => records[bit] !== nodeCount && !dead.has(node * 2 + bit));
      if (live.length === 0) {
        const parent = nodes.pop();
        const parentBit = bits.pop();
        // The root itself leads nowhere (any more): there is nothing left to sample.
        if (parent === undefined || parentBit === undefined) return { ok: true, addresses: [...addresses] };
        dead.add(parent * 2 + parentBit);
        node = parent; // Resume from the parent, whose other record may still lead to data.
        continue;
      }
      const bit = live.length === 1 ? (live[0] as 0 | 1) : random() < 0.5 ? 0 : 1;
      const next = records[bit];
      nodes.push(node);
      bits.push(bit);
      if (next < nodeCount) {
        node = next;
        continue;
      }
      // A data pointer: record value - node count - 16 is the offset within the data section.
      const resolved = next - nodeCount - DATA_SECTION_SEPARATOR_SIZE + dataStart;
      if (resolved < dataStart || resolved >= dataEnd) {
        return fail(
          `node ${node} points to data at byte ${resolved}, outside the data section (bytes ${dataStart} to ${dataEnd - 1})`,
        );
      }
      addresses.add(formatAddress(bits, ipVersion));
      break;
    }
  }
  return { ok: true, addresses: [...addresses] };
}

interface Layout {
  nodeCount: number;
  nodeByteSize: number;
  searchTreeSize: number;
  dataStart: number;
  /** Where the metadata marker begins: the data section ends just before it. */
  dataEnd: number;
  ipVersion: 4 | 6;
  maxDepth: 32 | 128;
  readRecords: (offset: number) => [number, number];
}

/** Checks the metadata against the buffer; returns the section boundaries or why they are impossible. */
function checkLayout(buffer: Buffer, metadata: MmdbSampleMetadata): Layout | string {
  if (!Buffer.isBuffer(buffer)) return 'the database is not a Buffer';
  if (typeof metadata !== 'object' || metadata === null) return 'metadata is missing';
  const { nodeCount, recordSize, ipVersion } = metadata;
  if (recordSize !== 24 && recordSize !== 28 && recordSize !== 32) return `unsupported record size ${String(recordSize)}`;
  if (ipVersion !== 4 && ipVersion !== 6) return `unsupported IP version ${String(ipVersion)}`;
  if (!Number.isSafeInteger(nodeCount) || nodeCount < 1) return `invalid node count ${String(nodeCount)}`;
  const dataEnd = buffer.lastIndexOf(METADATA_MARKER);
  if (dataEnd < 0) return 'no metadata marker found (truncated or not a MaxMind DB)';
  const nodeByteSize = recordSize / 4;
  const searchTreeSize = nodeCount * nodeByteSize;
  const dataStart = searchTreeSize + DATA_SECTION_SEPARATOR_SIZE;
  if (dataStart > dataEnd) {
    return (
      `node count ${nodeCount} is larger than the file can hold: a ${searchTreeSize}-byte search tree plus separator ` +
      `would run past the metadata at byte ${dataEnd} (file is ${buffer.length} bytes)`
    );
  }
  return {
    nodeCount,
    nodeByteSize,
    searchTreeSize,
    dataStart,
    dataEnd,
    ipVersion,
    maxDepth: ipVersion === 4 ? 32 : 128,
    readRecords: recordReader(buffer, recordSize),
  };
}

/** Reads a node's left and right records; the caller guarantees the node lies inside the tree. */
function recordReader(buffer: Buffer, recordSize: 24 | 28 | 32): (offset: number) => [number, number] {
  switch (recordSize) {
    case 24:
      return (at) => [buffer.readUIntBE(at, 3), buffer.readUIntBE(at + 3, 3)];
    case 28:
      return (at) => {
        const middle = buffer[at + 3] as number;
        return [(middle >> 4) * 2 ** 24 + buffer.readUIntBE(at, 3), (middle & 0x0f) * 2 ** 24 + buffer.readUIntBE(at + 4, 3)];
      };
    case 32:
      return (at) => [buffer.readUInt32BE(at), buffer.readUInt32BE(at + 4)];
  }
}

/** The network address of a path: IPv4 in an IPv4 tree or inside ::/96 of an IPv6 one, else IPv6. */
function formatAddress(bits: Array<0 | 1>, ipVersion: 4 | 6): string {
  const bytes = new Uint8Array(ipVersion === 4 ? 4 : 16);
  bits.forEach((bit, i) => {
    bytes[i >> 3] = (bytes[i >> 3] as number) | (bit << (7 - (i & 7)));
  });
  if (ipVersion === 4) return bytes.join('.');
  if (bits.length >= IPV4_SUBTREE_DEPTH && bytes.subarray(0, 12).every((b) => b === 0)) return bytes.subarray(12).join('.');
  return formatIPv6(bytes);
}

/** RFC 5952 text: lowercase, no leading zeros, the longest run of two or more zero groups as "::". */
function formatIPv6(bytes: Uint8Array): string {
  const groups = Array.from({ length: 8 }, (_, i) => ((bytes[i * 2] as number) << 8) | (bytes[i * 2 + 1] as number));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let end = i;
    while (end < 8 && groups[end] === 0) end++;
    if (end - i > bestLength) [bestStart, bestLength] = [i, end - i];
    i = end;
  }
  const hex = (gs: number[]): string => gs.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}
