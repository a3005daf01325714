/**
 * Which address is the client? The socket peer, unless the peer is a trusted proxy: then the
 * forwarding chain in the one header the operator chose (`X-Forwarded-For` by default, or RFC 7239
 * `Forwarded`) is walked from the right and the first address that is not a trusted proxy is the
 * client. One header, not "whichever is present": most proxies and CDNs append to one of them and
 * pass the other through as the client sent it, so reading the other would let a client behind
 * them choose its own address. Headers from an untrusted peer are never believed — anyone can
 * write them. Pure; never throws.
 */
import { isIP } from 'node:net';
import { unmapAddress } from '../core/ip.js';

/** The header whose chain trusted proxies extend (nginx's `real_ip_header`, Traefik's forwarded headers). */
export type ClientAddressHeader = 'x-forwarded-for' | 'forwarded';
export const CLIENT_ADDRESS_HEADERS: readonly ClientAddressHeader[] = ['x-forwarded-for', 'forwarded'];

export type AddressSource = 'peer' | ClientAddressHeader;

export interface ClientAddress {
  readonly ip: string;
  readonly source: AddressSource;
}

export type TrustTest = (ip: string) => boolean;

/** `chain` is the value of the `header` the operator chose (undefined when the request has none). */
export function clientAddress(peer: string, chain: string | undefined, header: ClientAddressHeader, isTrusted: TrustTest): ClientAddress {
  const peerIp = unmapAddress(peer);
  if (chain === undefined || !isTrusted(peerIp)) return { ip: peerIp, source: 'peer' };
  const hops = header === 'forwarded' ? forwardedFor(chain) : chain.split(',');
  let client = peerIp;
  let from: AddressSource = 'peer';
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = header === 'forwarded' ? hops[i]! : parseHop(hops[i]!);
    // An unparseable or obfuscated hop ends the walk: nothing to its left can be verified.
    if (hop === '' || isIP(hop) === 0) break;
    client = unmapAddress(hop);
    from = header;
    if (!isTrusted(client)) break;
  }
  return { ip: client, source: from };
}

/** One X-Forwarded-For element: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:443`. */
function parseHop(raw: string): string {
  const hop = raw.trim();
  if (hop.startsWith('[')) {
    const end = hop.indexOf(']');
    return end === -1 ? '' : hop.slice(1, end);
  }
  const colon = hop.indexOf(':');
  if (colon !== -1 && colon === hop.lastIndexOf(':')) return hop.slice(0, colon); // IPv4 with port
  return hop;
}

/**
 * The `for=` node of each Forwarded element (RFC 7239 §4, §6), unquoted; '' where absent, obfuscated
 * or malformed. Commas and semicolons inside quoted strings do not split: a proxy that writes
 * `host="…"` quotes what its client sent, and splitting there let a client append `,for=<any ip>`
 * to its Host and be believed. Elements are cut from the right, where the trusted proxies wrote,
 * so a stray quote in the client's own part (the left) cannot swallow the elements after it.
 */
function forwardedFor(header: string): string[] {
  const nodes: string[] = [];
  let end = header.length;
  let quoted = false;
  for (let i = header.length - 1; i >= 0; i--) {
    const c = header.charCodeAt(i);
    if (c === 0x22 /* " */ && !escaped(header, i)) quoted = !quoted;
    else if (c === 0x2c /* , */ && !quoted) {
      nodes.push(forNode(header, i + 1, end));
      end = i;
    }
  }
  nodes.push(forNode(header, 0, end));
  return nodes.reverse();
}

/** Whether the character at `i` follows an odd run of backslashes (an RFC 9110 quoted-pair). */
function escaped(text: string, i: number): boolean {
  let n = 0;
  while (i - n - 1 >= 0 && text.charCodeAt(i - n - 1) === 0x5c /* \ */) n++;
  return n % 2 === 1;
}

/** The `for=` node of the element `header[start, end)`; '' when absent, repeated (§4: once per element) or unbalanced. */
function forNode(header: string, start: number, end: number): string {
  let node: string | undefined;
  let pairStart = start;
  let eq = -1; // the current pair's first '=', found in the same pass (a search ahead would be quadratic)
  let quoted = false;
  for (let i = start; i <= end; i++) {
    const c = i < end ? header.charCodeAt(i) : 0x3b; // the end closes the last pair
    if (quoted) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22) quoted = false;
      continue;
    }
    if (c === 0x22 /* " */) quoted = true;
    else if (c === 0x3d /* = */ && eq === -1) eq = i;
    else if (c === 0x3b /* ; */) {
      if (eq !== -1 && header.slice(pairStart, eq).trim().toLowerCase() === 'for') {
        if (node !== undefined) return '';
        let value = header.slice(eq + 1, i).trim();
        if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
        node = parseHop(value);
      }
      pairStart = i + 1;
      eq = -1;
    }
  }
  return quoted || node === undefined ? '' : node;
}

/** Builds the trust test from a list matcher (a BlockList from the config), unmapping first. */
export function trustTest(list: { check(address: string, type?: 'ipv4' | 'ipv6'): boolean } | null): TrustTest {
  if (list === null) return () => false;
  return (ip) => {
    const family = isIP(ip);
    return family !== 0 && list.check(ip, family === 4 ? 'ipv4' : 'ipv6');
  };
}
