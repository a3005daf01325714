// Builds a MaxMind DB file (binary format 2.0) in memory from CIDR networks and their data records.
//
// File layout: [search tree][16 zero bytes][data section]["\xAB\xCD\xEFMaxMind.com"][metadata map].
//
// Overlap rule: networks are applied in array order and the last write wins. Inserting a network
// assigns its record to every address it covers, replacing whatever earlier entries put there,
// so a later, more specific network carves a hole out of an earlier, broader one, while a later,
// broader network overwrites earlier, more specific ones entirely. Sibling subtrees that end up
// with the same record are merged, which only changes the prefix length a lookup reports.
//
// In an IPv6 database, IPv4 networks are stored under ::/96 (IPv4-compatible addresses), where
// readers such as mmdb-lib start IPv4 lookups. No ::ffff:0:0/96 or 2002::/16 aliases are written.

import { ipv4Bytes, ipv6Bytes } from '../core/ip.js';

/** The scalar types that can be forced with the mmdb* wrappers below. */
export type MmdbTypedKind = 'double' | 'float' | 'uint16' | 'uint32' | 'uint64' | 'int32';

/** A number tagged with the MaxMind DB type it must be stored as. */
export class MmdbTyped {
  readonly kind: MmdbTypedKind;
  readonly value: number | bigint;

  constructor(kind: MmdbTypedKind, value: number | bigint) {
    this.kind = kind;
    this.value = value;
  }
}

/**
 * A value that can be stored in the data section. Plain numbers are stored as uint32 when they
 * are integers in [0, 2^32), as int32 when they are integers in [-2^31, 0), and as double
 * otherwise; use the wrappers to force another type.
 */
export type MmdbValue = string | number | boolean | MmdbTyped | MmdbValue[] | { [key: string]: MmdbValue };

export const mmdbDouble = (n: number): MmdbTyped => new MmdbTyped('double', n);
export const mmdbFloat = (n: number): MmdbTyped => new MmdbTyped('float', n);
export const mmdbUint16 = (n: number | bigint): MmdbTyped => new MmdbTyped('uint16', n);
export const mmdbUint32 = (n: number | bigint): MmdbTyped => new MmdbTyped('uint32', n);
export const mmdbUint64 = (n: number | bigint): MmdbTyped => new MmdbTyped('uint64', n);
export const mmdbInt32 = (n: number): MmdbTyped => new MmdbTyped('int32', n);

export interface MmdbNetwork {
  /** CIDR such as "10.0.0.0/8" or "2001:db8::/32"; host bits must be zero. */
  network: string;
  data: MmdbValue;
}

export interface MmdbWriterOptions {
  databaseType: string;
  description?: Record<string, string>;
  languages?: string[];
  ipVersion: 4 | 6;
  recordSize?: 24 | 28 | 32;
  /** Seconds since the Unix epoch; defaults to now. Pass it to get byte-identical output. */
  buildEpoch?: number;
  networks: MmdbNetwork[];
}

/** Marks the start of the metadata section. */
export const MMDB_METADATA_MARKER = Buffer.concat([Buffer.from([0xab, 0xcd, 0xef]), Buffer.from('MaxMind.com', 'ascii')]);

const DATA_SECTION_SEPARATOR_SIZE = 16;

/** Serialises a whole database. Throws an Error naming the offending input when it cannot. */
export function writeMmdb(options: MmdbWriterOptions): Buffer {
  const recordSize = checkOptions(options);

  // 1. Validate everything up front and give each distinct record a number.
  const records: Encodable[] = [];
  const recordIds = new Map<string, number>();
  const root = new TreeNode(EMPTY, EMPTY);
  options.networks.forEach((entry, i) => {
    const where = `networks[${i}]`;
    if (typeof entry !== 'object' || entry === null) throw new Error(`${where} must be an object with "network" and "data"`);
    const network = parseNetwork(entry.network, options.ipVersion, where);
    const record = toEncodable(entry.data, `${where}.data`, new Set());
    let id = recordIds.get(record.key);
    if (id === undefined) {
      id = records.length;
      records.push(record);
      recordIds.set(record.key, id);
    }
    insertNetwork(root, network, id);
  });
  mergeIdenticalSiblings(root);

  // 2. Number the nodes breadth-first and encode each reachable record once, in tree order.
  const nodes = numberNodes(root);
  const data = new DataSectionWriter(true);
  const recordOffsets = new Map<number, number>();
  for (const node of nodes.order) {
    for (const child of node.children) {
      if (typeof child === 'number' && child !== EMPTY && !recordOffsets.has(child)) {
        recordOffsets.set(child, data.writeRecord(records[child] as Encodable));
      }
    }
  }
  const dataSection = data.toBuffer();

  // 3. The search tree, now that every record value is known.
  const tree = encodeSearchTree(nodes, recordSize, (slot) => {
    if (slot instanceof TreeNode) return nodes.numbers.get(slot) as number;
    if (slot === EMPTY) return nodes.order.length;
    return nodes.order.length + DATA_SECTION_SEPARATOR_SIZE + (recordOffsets.get(slot) as number);
  });

  const metadata = encodeMetadata(options, recordSize, nodes.order.length);
  return Buffer.concat([tree, Buffer.alloc(DATA_SECTION_SEPARATOR_SIZE), dataSection, MMDB_METADATA_MARKER, metadata]);
}

/** Throws on unusable options; returns the record size to use. */
function checkOptions(options: MmdbWriterOptions): 24 | 28 | 32 {
  if (typeof options !== 'object' || options === null) throw new Error('writeMmdb needs an options object');
  const recordSize = options.recordSize ?? 28;
  if (typeof options.databaseType !== 'string' || options.databaseType === '') {
    throw new Error('databaseType must be a non-empty string');
  }
  if (options.ipVersion !== 4 && options.ipVersion !== 6) throw new Error(`ipVersion must be 4 or 6, got ${String(options.ipVersion)}`);
  if (recordSize !== 24 && recordSize !== 28 && recordSize !== 32) {
    throw new Error(`recordSize must be 24, 28 or 32, got ${String(recordSize)}`);
  }
  if (!Array.isArray(options.networks)) throw new Error('networks must be an array');
  if (options.languages !== undefined) {
    if (!Array.isArray(options.languages) || options.languages.some((l) => typeof l !== 'string')) {
      throw new Error('languages must be an array of strings');
    }
  }
  if (options.description !== undefined) {
    const d: unknown = options.description;
    if (typeof d !== 'object' || d === null || Array.isArray(d) || Object.values(d).some((v) => typeof v !== 'string')) {
      throw new Error('description must map language codes to strings');
    }
  }
  const epoch = options.buildEpoch;
  if (epoch !== undefined && !(Number.isSafeInteger(epoch) && epoch >= 0)) {
    throw new Error(`buildEpoch must be a non-negative integer number of seconds, got ${String(epoch)}`);
  }
  return recordSize;
}

// ---------------------------------------------------------------------------------------------
// Networks

interface ParsedNetwork {
  /** 4 bytes in an IPv4 database, 16 in an IPv6 one. */
  bytes: Uint8Array;
  prefixLength: number;
}

/** Parses a CIDR and maps it into the database's address space (IPv4 → ::a.b.c.d/96+n in IPv6). */
function parseNetwork(cidr: unknown, ipVersion: 4 | 6, where: string): ParsedNetwork {
  if (typeof cidr !== 'string') throw new Error(`${where}.network must be a CIDR string, got ${describe(cidr)}`);
  const invalid = (why: string): Error => new Error(`${where}.network: invalid CIDR "${cidr}": ${why}`);
  const slash = cidr.indexOf('/');
  if (slash < 0) throw invalid('missing "/prefix-length"');
  const addressText = cidr.slice(0, slash);
  const prefixText = cidr.slice(slash + 1);
  const isV6 = addressText.includes(':');
  const address = isV6 ? ipv6Bytes(addressText) : ipv4Bytes(addressText);
  if (address === null) throw invalid(`"${addressText}" is not an IPv${isV6 ? 6 : 4} address`);
  const maxPrefix = address.length * 8;
  if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText) || Number(prefixText) > maxPrefix) {
    throw invalid(`prefix length must be an integer from 0 to ${maxPrefix}`);
  }
  const prefixLength = Number(prefixText);
  for (let bit = prefixLength; bit < maxPrefix; bit++) {
    if (bitAt(address, bit) === 1) throw invalid('host bits are set after the prefix length');
  }
  if (isV6 && ipVersion === 4) throw new Error(`${where}.network: IPv6 network "${cidr}" cannot be stored in an IPv4 database`);
  if (!isV6 && ipVersion === 6) {
    const mapped = new Uint8Array(16);
    mapped.set(address, 12);
    return { bytes: mapped, prefixLength: prefixLength + 96 };
  }
  return { bytes: address, prefixLength };
}

function bitAt(bytes: Uint8Array, index: number): 0 | 1 {
  return (((bytes[index >> 3] as number) >> (7 - (index & 7))) & 1) as 0 | 1;
}

// ---------------------------------------------------------------------------------------------
// Search tree

/** A child slot: another node, a record id (index into the distinct records), or EMPTY. */
type Slot = TreeNode | number;
const EMPTY = -1;

class TreeNode {
  children: [Slot, Slot];

  constructor(left: Slot, right: Slot) {
    this.children = [left, right];
  }
}

/** Last write wins: the network's whole range now maps to `recordId`. */
function insertNetwork(root: TreeNode, network: ParsedNetwork, recordId: number): void {
  if (network.prefixLength === 0) {
    root.children = [recordId, recordId];
    return;
  }
  let node = root;
  for (let depth = 0; depth < network.prefixLength - 1; depth++) {
    const bit = bitAt(network.bytes, depth);
    let child = node.children[bit];
    if (!(child instanceof TreeNode)) {
      // Split a record (or an empty range) so part of it can be overridden.
      child = new TreeNode(child, child);
      node.children[bit] = child;
    }
    node = child;
  }
  node.children[bitAt(network.bytes, network.prefixLength - 1)] = recordId;
}

/** Replaces every node whose two children are the same record (or both empty) by that child. */
function mergeIdenticalSiblings(root: TreeNode): void {
  const merge = (slot: Slot): Slot => {
    if (!(slot instanceof TreeNode)) return slot;
    const left = merge(slot.children[0]);
    const right = merge(slot.children[1]);
    if (!(left instanceof TreeNode) && left === right) return left;
    slot.children = [left, right];
    return slot;
  };
  // The root always stays a node: a reader starts every lookup at node 0.
  root.children = [merge(root.children[0]), merge(root.children[1])];
}

interface NumberedNodes {
  order: TreeNode[];
  numbers: Map<TreeNode, number>;
}

function numberNodes(root: TreeNode): NumberedNodes {
  const order = [root];
  const numbers = new Map([[root, 0]]);
  for (let i = 0; i < order.length; i++) {
    for (const child of (order[i] as TreeNode).children) {
      if (child instanceof TreeNode) {
        numbers.set(child, order.length);
        order.push(child);
      }
    }
  }
  return { order, numbers };
}

function encodeSearchTree(nodes: NumberedNodes, recordSize: 24 | 28 | 32, recordValue: (slot: Slot) => number): Buffer {
  const nodeBytes = recordSize / 4;
  const tree = Buffer.alloc(nodes.order.length * nodeBytes);
  const limit = 2 ** recordSize;
  nodes.order.forEach((node, i) => {
    const [left, right] = node.children.map(recordValue) as [number, number];
    if (left >= limit || right >= limit) {
      throw new Error(`the database is too large for ${recordSize}-bit records; use a larger recordSize`);
    }
    const at = i * nodeBytes;
    if (recordSize === 24) {
      tree.writeUIntBE(left, at, 3);
      tree.writeUIntBE(right, at + 3, 3);
    } else if (recordSize === 28) {
      tree.writeUIntBE(left & 0xffffff, at, 3);
      tree[at + 3] = ((left >>> 24) << 4) | (right >>> 24);
      tree.writeUIntBE(right & 0xffffff, at + 4, 3);
    } else {
      tree.writeUInt32BE(left, at);
      tree.writeUInt32BE(right, at + 4);
    }
  });
  return tree;
}

// ---------------------------------------------------------------------------------------------
// Data section

/** Data-section type numbers from the spec (only the ones this writer emits). */
const DataType = {
  Pointer: 1,
  Utf8String: 2,
  Double: 3,
  Uint16: 5,
  Uint32: 6,
  Map: 7,
  Int32: 8,
  Uint64: 9,
  Array: 11,
  Boolean: 14,
  Float: 15,
} as const;
type DataType = (typeof DataType)[keyof typeof DataType];

/** Largest payload size (or map/array entry count) a control byte can express. */
const MAX_FIELD_SIZE = 65821 + 0xffffff;

/**
 * A validated value ready to encode. `key` identifies it exactly (type, size, payload, children)
 * so equal values are stored once; maps list their keys and values alternately in `children`.
 */
interface Encodable {
  key: string;
  type: DataType;
  size: number;
  payload?: Buffer;
  children?: Encodable[];
}

function leaf(type: DataType, size: number, payload?: Buffer): Encodable {
  const key = `${type}:${size}:${payload ? payload.toString('hex') : ''}`;
  return payload ? { key, type, size, payload } : { key, type, size };
}

function container(type: DataType, children: Encodable[], size: number): Encodable {
  return { key: `${type}:${size}[${children.map((c) => c.key).join(',')}]`, type, size, children };
}

/** Validates `value` and turns it into an Encodable; `path` names it in errors. */
function toEncodable(value: unknown, path: string, ancestors: Set<object>): Encodable {
  const fail = (why: string): never => {
    throw new Error(`cannot encode ${path}: ${why}`);
  };
  switch (typeof value) {
    case 'string':
      return stringValue(value, fail);
    case 'boolean':
      return leaf(DataType.Boolean, value ? 1 : 0);
    case 'number':
      if (!Number.isFinite(value)) return fail(`${value} is not a finite number (use mmdbDouble() to store it explicitly)`);
      if (Number.isInteger(value) && value >= 0 && value <= 0xffffffff) return uintValue(DataType.Uint32, BigInt(value), 4);
      if (Number.isInteger(value) && value < 0 && value >= -(2 ** 31)) return int32Value(value);
      return doubleValue(value);
    case 'bigint':
      return fail('bigint needs a type; wrap it with mmdbUint64() (or mmdbUint16/32)');
    case 'object':
      break;
    default:
      return fail(`${describe(value)} is not a storable value`);
  }
  if (value instanceof MmdbTyped) return typedValue(value, fail);
  if (value === null) return fail('null is not a storable value');
  if (ancestors.has(value)) return fail('circular reference');
  ancestors.add(value);
  try {
    if (Array.isArray(value)) {
      if (value.length > MAX_FIELD_SIZE) fail(`arrays hold at most ${MAX_FIELD_SIZE} items`);
      const items = value.map((item, i) => toEncodable(item, `${path}[${i}]`, ancestors));
      return container(DataType.Array, items, items.length);
    }
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) return fail(`${describe(value)} is not a plain object`);
    const entries = Object.entries(value);
    if (entries.length > MAX_FIELD_SIZE) fail(`maps hold at most ${MAX_FIELD_SIZE} entries`);
    const children: Encodable[] = [];
    for (const [k, v] of entries) {
      const childPath = /^[A-Za-z_$][\w$]*$/.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`;
      children.push(stringValue(k, fail), toEncodable(v, childPath, ancestors));
    }
    return container(DataType.Map, children, entries.length);
  } finally {
    ancestors.delete(value);
  }
}

function stringValue(text: string, fail: (why: string) => never): Encodable {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length > MAX_FIELD_SIZE) fail(`strings hold at most ${MAX_FIELD_SIZE} UTF-8 bytes`);
  return leaf(DataType.Utf8String, bytes.length, bytes);
}

function typedValue(typed: MmdbTyped, fail: (why: string) => never): Encodable {
  const { kind, value } = typed;
  if (kind === 'double' || kind === 'float') {
    if (typeof value !== 'number') return fail(`${kind} needs a number, got ${describe(value)}`);
    return kind === 'double' ? doubleValue(value) : floatValue(value);
  }
  if (typeof value === 'number' && !Number.isInteger(value)) return fail(`${kind} needs an integer, got ${value}`);
  if (typeof value !== 'number' && typeof value !== 'bigint') return fail(`${kind} needs an integer, got ${describe(value)}`);
  const n = BigInt(value);
  if (kind === 'int32') {
    if (n < -(2n ** 31n) || n >= 2n ** 31n) return fail(`${value} is out of range for int32`);
    return int32Value(Number(n));
  }
  const [type, bytes] = ({ uint16: [DataType.Uint16, 2], uint32: [DataType.Uint32, 4], uint64: [DataType.Uint64, 8] } as const)[kind];
  if (n < 0n || n >= 1n << BigInt(bytes * 8)) return fail(`${value} is out of range for ${kind}`);
  return uintValue(type, n, bytes);
}

/** Unsigned integers are stored big-endian with leading zero bytes dropped (0 has no payload). */
function uintValue(type: DataType, n: bigint, maxBytes: number): Encodable {
  const bytes: number[] = [];
  for (let rest = n; rest > 0n; rest >>= 8n) bytes.unshift(Number(rest & 0xffn));
  if (bytes.length > maxBytes) throw new Error(`internal error: ${n} needs more than ${maxBytes} bytes`);
  return leaf(type, bytes.length, Buffer.from(bytes));
}

/** Negative int32s need all four bytes; shorter int32 fields are read as positive. */
function int32Value(n: number): Encodable {
  if (n >= 0) return uintValue(DataType.Int32, BigInt(n), 4);
  const payload = Buffer.alloc(4);
  payload.writeInt32BE(n);
  return leaf(DataType.Int32, 4, payload);
}

function doubleValue(n: number): Encodable {
  const payload = Buffer.alloc(8);
  payload.writeDoubleBE(n);
  return leaf(DataType.Double, 8, payload);
}

function floatValue(n: number): Encodable {
  const payload = Buffer.alloc(4);
  payload.writeFloatBE(n);
  return leaf(DataType.Float, 4, payload);
}

/** Appends encoded values; with pointers on, a value already written is referenced, not repeated. */
class DataSectionWriter {
  private readonly chunks: Buffer[] = [];
  private length = 0;
  private readonly written = new Map<string, { offset: number; size: number }>();
  private readonly usePointers: boolean;

  constructor(usePointers: boolean) {
    this.usePointers = usePointers;
  }

  /** Writes a top-level record (unless an identical one exists) and returns its offset. */
  writeRecord(value: Encodable): number {
    const existing = this.written.get(value.key);
    if (existing) return existing.offset;
    const offset = this.length;
    this.write(value);
    return offset;
  }

  write(value: Encodable): void {
    const existing = this.usePointers ? this.written.get(value.key) : undefined;
    if (existing) {
      const pointer = encodePointer(existing.offset);
      if (pointer.length < existing.size) {
        this.push(pointer);
        return;
      }
    }
    const start = this.length;
    this.push(encodeControl(value.type, value.size));
    if (value.payload) this.push(value.payload);
    for (const child of value.children ?? []) this.write(child);
    if (!existing) this.written.set(value.key, { offset: start, size: this.length - start });
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }

  private push(bytes: Buffer): void {
    this.chunks.push(bytes);
    this.length += bytes.length;
  }
}

/** Control byte(s): 3 type bits (0 = extended, type - 7 in the next byte), 5 size bits, size extension. */
function encodeControl(type: DataType, size: number): Buffer {
  let sizeBits: number;
  let extra: number[];
  if (size < 29) {
    [sizeBits, extra] = [size, []];
  } else if (size < 29 + 256) {
    [sizeBits, extra] = [29, [size - 29]];
  } else if (size < 285 + 65536) {
    const n = size - 285;
    [sizeBits, extra] = [30, [n >> 8, n & 0xff]];
  } else {
    const n = size - 65821;
    [sizeBits, extra] = [31, [(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]];
  }
  return type <= 7 ? Buffer.from([(type << 5) | sizeBits, ...extra]) : Buffer.from([sizeBits, type - 7, ...extra]);
}

/** Pointer to a data-section offset: 001SSVVV plus 1-4 bytes, with per-size bias. */
function encodePointer(offset: number): Buffer {
  const tag = DataType.Pointer << 5;
  if (offset < 2048) return Buffer.from([tag | (offset >> 8), offset & 0xff]);
  if (offset < 2048 + 2 ** 19) {
    const n = offset - 2048;
    return Buffer.from([tag | (1 << 3) | (n >> 16), (n >> 8) & 0xff, n & 0xff]);
  }
  if (offset < 526336 + 2 ** 27) {
    const n = offset - 526336;
    return Buffer.from([tag | (2 << 3) | (n >>> 24), (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
  }
  const out = Buffer.alloc(5);
  out[0] = tag | (3 << 3);
  out.writeUInt32BE(offset, 1);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Metadata

function encodeMetadata(options: MmdbWriterOptions, recordSize: number, nodeCount: number): Buffer {
  const metadata: MmdbValue = {
    binary_format_major_version: mmdbUint16(2),
    binary_format_minor_version: mmdbUint16(0),
    build_epoch: mmdbUint64(options.buildEpoch ?? Math.floor(Date.now() / 1000)),
    database_type: options.databaseType,
    description: { ...options.description },
    ip_version: mmdbUint16(options.ipVersion),
    languages: [...(options.languages ?? [])],
    node_count: mmdbUint32(nodeCount),
    record_size: mmdbUint16(recordSize),
  };
  // Pointers in the metadata would be relative to its own start; keep it simple and inline.
  const writer = new DataSectionWriter(false);
  writer.write(toEncodable(metadata, 'metadata', new Set()));
  return writer.toBuffer();
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return `an instance of ${(value.constructor as { name?: string } | undefined)?.name ?? 'Object'}`;
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'symbol') return 'a symbol';
  return `${typeof value} ${String(value)}`;
}
