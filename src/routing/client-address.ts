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

/** The `for=` node of each Forwarded element (RFC 7239 §4, §6), unquoted; '' where absent or obfuscated. */
function forwardedFor(header: string): string[] {
  const out: string[] = [];
  for (const element of header.split(',')) {
    let node = '';
    for (const pair of element.split(';')) {
      const eq = pair.indexOf('=');
      if (eq === -1 || pair.slice(0, eq).trim().toLowerCase() !== 'for') continue;
      let value = pair.slice(eq + 1).trim();
      if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
      node = parseHop(value);
    }
    out.push(node);
  }
  return out;
}

/** Builds the trust test from a list matcher (a BlockList from the config), unmapping first. */
export function trustTest(list: { check(address: string, type?: 'ipv4' | 'ipv6'): boolean } | null): TrustTest {
  if (list === null) return () => false;
  return (ip) => {
    const family = isIP(ip);
    return family !== 0 && list.check(ip, family === 4 ? 'ipv4' : 'ipv6');
  };
}
