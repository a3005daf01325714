/**
 * Parses the HAProxy PROXY protocol header (v1 text or v2 binary) that an L4 load balancer puts in
 * front of a connection's first bytes, incrementally: call again with more bytes while it answers
 * 'incomplete'. Pure and total: it never throws, never does I/O and never looks past the header.
 * Spec: haproxy doc/proxy-protocol.txt — §2.1 (v1), §2.2 (v2), §2.2.1+ (TLVs, skipped here).
 */
import { SocketAddress, isIPv4, isIPv6 } from 'node:net';

/** What the balancer said about the connection. Addresses are in the form Node uses for `socket.remoteAddress`. */
export interface ProxyInfo {
  /** 'local': the balancer's own connection (a health check); use the socket's real endpoints. */
  readonly command: 'proxy' | 'local';
  /** 'unknown' carries no addresses: v1 UNKNOWN, v2 LOCAL, AF_UNSPEC, AF_UNIX or UDP. */
  readonly family: 'tcp4' | 'tcp6' | 'unknown';
  readonly sourceAddress?: string;
  readonly sourcePort?: number;
  readonly destAddress?: string;
  readonly destPort?: number;
}

/** On 'ok', `length` is how many bytes of `buf` the header used; everything after it is the client's payload. */
export type ProxyHeaderParse =
  | { readonly status: 'incomplete' }
  | { readonly status: 'invalid'; readonly reason: string }
  | { readonly status: 'ok'; readonly length: number; readonly info: ProxyInfo };

/**
 * Our cap on a whole v2 header (16 fixed bytes + addresses + TLVs). The format allows 64 KiB, but
 * real balancers send well under 1 KiB of TLVs, and this bounds what one connection can make us buffer.
 */
export const PROXY_HEADER_MAX_BYTES = 4096;

/** §2.1: the longest legal v1 line, CRLF included ("PROXY UNKNOWN" with two full IPv6 addresses). */
const V1_MAX_BYTES = 107;
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** §2.2: chosen to be rejected by other protocols' parsers; note the NUL at the fifth byte. */
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_FIXED_BYTES = 16;
const CR = 0x0d;
const LF = 0x0a;

const INCOMPLETE: ProxyHeaderParse = Object.freeze({ status: 'incomplete' });

export function parseProxyHeader(buf: Buffer): ProxyHeaderParse {
  // Each signature is matched on the bytes we have so far, so a short read is 'incomplete', not 'invalid'.
  if (matchesPrefix(buf, V2_SIGNATURE)) return buf.length < V2_SIGNATURE.length ? INCOMPLETE : parseV2(buf);
  if (matchesPrefix(buf, V1_PREFIX)) return buf.length < V1_PREFIX.length ? INCOMPLETE : parseV1(buf);
  // §1: the receiver must not guess whether the header is there; no header means no connection.
  return invalid('missing PROXY protocol header');
}

/** §2.1: `PROXY <TCP4|TCP6|UNKNOWN> <src> <dst> <sport> <dport>\r\n`, single spaces, at most 107 bytes. */
function parseV1(buf: Buffer): ProxyHeaderParse {
  const window = buf.subarray(0, V1_MAX_BYTES);
  const cr = window.indexOf(CR);
  const lineEnd = cr === -1 ? window.length : cr;
  // Reject non-text as soon as it shows up rather than waiting out the 107 bytes (§2.1: abort early).
  for (let i = 0; i < lineEnd; i++) {
    const byte = window[i]!;
    if (byte === LF) return invalid('v1: line ends with a bare LF; CRLF is required');
    if (byte < 0x20 || byte > 0x7e) return invalid('v1: header contains a byte that is not printable US-ASCII');
  }
  if (cr === -1 || cr + 1 >= V1_MAX_BYTES) {
    return buf.length >= V1_MAX_BYTES ? invalid('v1: no CRLF within the first 107 bytes') : INCOMPLETE;
  }
  if (buf.length === cr + 1) return INCOMPLETE;
  if (buf[cr + 1] !== LF) return invalid('v1: CR not followed by LF');

  const length = cr + 2;
  const fields = window.toString('latin1', V1_PREFIX.length, cr).split(' ');
  const protocol = fields[0] ?? '';
  // §2.1: after UNKNOWN the receiver must ignore everything up to the CRLF.
  if (protocol === 'UNKNOWN') return ok(length, { command: 'proxy', family: 'unknown' });
  if (fields.includes('')) return invalid('v1: fields must be separated by exactly one space');
  if (protocol !== 'TCP4' && protocol !== 'TCP6') {
    return invalid(`v1: unknown protocol ${JSON.stringify(protocol.slice(0, 16))} (expected TCP4, TCP6 or UNKNOWN)`);
  }
  if (fields.length !== 5) return invalid(`v1: expected "PROXY ${protocol} <src> <dst> <sport> <dport>"`);
  const [, src = '', dst = '', sport = '', dport = ''] = fields;
  const family = protocol === 'TCP4' ? 'tcp4' : 'tcp6';
  const sourceAddress = v1Address(src, family);
  if (sourceAddress === undefined) return invalid(`v1: source address is not a valid ${protocol === 'TCP4' ? 'IPv4' : 'IPv6'} address`);
  const destAddress = v1Address(dst, family);
  if (destAddress === undefined) return invalid(`v1: destination address is not a valid ${protocol === 'TCP4' ? 'IPv4' : 'IPv6'} address`);
  const sourcePort = v1Port(sport);
  if (sourcePort === undefined) return invalid('v1: source port must be a decimal in 0-65535 without leading zeros');
  const destPort = v1Port(dport);
  if (destPort === undefined) return invalid('v1: destination port must be a decimal in 0-65535 without leading zeros');
  return ok(length, { command: 'proxy', family, sourceAddress, sourcePort, destAddress, destPort });
}

/**
 * §2.1 canonical forms: dotted quad without leading zeros (Node's isIPv4 already refuses them), or
 * IPv6 without a zone index. IPv6 is re-rendered so v1 and v2 report one spelling per address.
 */
function v1Address(text: string, family: 'tcp4' | 'tcp6'): string | undefined {
  if (family === 'tcp4') return isIPv4(text) ? text : undefined;
  if (!isIPv6(text) || text.includes('%')) return undefined;
  return new SocketAddress({ address: text, family: 'ipv6' }).address;
}

/** §2.1: "Heading zeroes are not permitted", so `0` alone but never `080`; no signs or exponents. */
function v1Port(text: string): number | undefined {
  if (!/^(?:0|[1-9][0-9]{0,4})$/.test(text)) return undefined;
  const port = Number(text);
  return port <= 65535 ? port : undefined;
}

/** §2.2: signature, version/command, family/transport, big-endian length of what follows, addresses, TLVs. */
function parseV2(buf: Buffer): ProxyHeaderParse {
  if (buf.length < 13) return INCOMPLETE;
  const versionCommand = buf[12]!;
  const version = versionCommand >> 4;
  const command = versionCommand & 0x0f;
  // §2.2: the receiver must only accept version 2, and must drop unassigned commands.
  if (version !== 2) return invalid(`v2: unsupported version ${version}`);
  if (command !== 0x0 && command !== 0x1) return invalid(`v2: unknown command 0x${hex(command)}`);
  if (buf.length < V2_FIXED_BYTES) return INCOMPLETE;

  const familyTransport = buf[13]!;
  const length = V2_FIXED_BYTES + buf.readUInt16BE(14);
  if (length > PROXY_HEADER_MAX_BYTES) {
    return invalid(`v2: header of ${length} bytes exceeds the ${PROXY_HEADER_MAX_BYTES}-byte limit`);
  }
  if (command === 0x0) {
    // LOCAL (§2.2): "discard the protocol block including the family which is ignored", but
    // still skip exactly `len` bytes — the spec forbids assuming it is zero.
    return buf.length < length ? INCOMPLETE : ok(length, { command: 'local', family: 'unknown' });
  }
  const layout = V2_LAYOUTS.get(familyTransport);
  if (layout === undefined) return invalid(`v2: unsupported address family/transport byte 0x${hex(familyTransport)}`);
  if (length - V2_FIXED_BYTES < layout.addressBytes) {
    return invalid(`v2: address block of ${length - V2_FIXED_BYTES} bytes is too short for ${layout.name} (needs ${layout.addressBytes})`);
  }
  if (buf.length < length) return INCOMPLETE;

  const at = V2_FIXED_BYTES;
  if (layout.family === 'tcp4') {
    return ok(length, {
      command: 'proxy',
      family: 'tcp4',
      sourceAddress: ipv4At(buf, at),
      destAddress: ipv4At(buf, at + 4),
      sourcePort: buf.readUInt16BE(at + 8),
      destPort: buf.readUInt16BE(at + 10),
    });
  }
  if (layout.family === 'tcp6') {
    return ok(length, {
      command: 'proxy',
      family: 'tcp6',
      sourceAddress: ipv6At(buf, at),
      destAddress: ipv6At(buf, at + 16),
      sourcePort: buf.readUInt16BE(at + 32),
      destPort: buf.readUInt16BE(at + 34),
    });
  }
  // AF_UNSPEC, UDP and AF_UNIX: valid, but no TCP peer to report; the header is still consumed.
  return ok(length, { command: 'proxy', family: 'unknown' });
}

interface V2Layout {
  readonly name: string;
  readonly family: ProxyInfo['family'];
  readonly addressBytes: number;
}

/** §2.2 "In practice, the following protocol bytes are expected"; every other byte must be rejected. */
const V2_LAYOUTS: ReadonlyMap<number, V2Layout> = new Map([
  [0x00, { name: 'AF_UNSPEC', family: 'unknown', addressBytes: 0 }],
  [0x11, { name: 'TCP over IPv4', family: 'tcp4', addressBytes: 12 }],
  [0x12, { name: 'UDP over IPv4', family: 'unknown', addressBytes: 12 }],
  [0x21, { name: 'TCP over IPv6', family: 'tcp6', addressBytes: 36 }],
  [0x22, { name: 'UDP over IPv6', family: 'unknown', addressBytes: 36 }],
  [0x31, { name: 'UNIX stream', family: 'unknown', addressBytes: 216 }],
  [0x32, { name: 'UNIX datagram', family: 'unknown', addressBytes: 216 }],
]);

function ipv4At(buf: Buffer, at: number): string {
  return `${buf[at]}.${buf[at + 1]}.${buf[at + 2]}.${buf[at + 3]}`;
}

/** Rendered by Node itself, so it matches `socket.remoteAddress` (`::1`, `::ffff:192.0.2.1`) string for string. */
function ipv6At(buf: Buffer, at: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(buf.readUInt16BE(at + i).toString(16));
  return new SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address;
}

function matchesPrefix(buf: Buffer, signature: Buffer): boolean {
  const n = Math.min(buf.length, signature.length);
  return buf.compare(signature, 0, n, 0, n) === 0;
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}

function ok(length: number, info: ProxyInfo): ProxyHeaderParse {
  return { status: 'ok', length, info };
}

function invalid(reason: string): ProxyHeaderParse {
  return { status: 'invalid', reason };
}
