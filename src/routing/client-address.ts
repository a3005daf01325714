/**
 * Which address is the client? The socket peer, unless the peer is a trusted proxy: then the
 * forwarding chain (RFC 7239 `Forwarded`, else `X-Forwarded-For`) is walked from the right and
 * the first address that is not a trusted proxy is the client. Headers from an untrusted peer
 * are never believed — anyone can write them. Pure; never throws.
 */
import { isIP } from 'node:net';
import { unmapAddress } from '../core/ip.js';

export type AddressSource = 'peer' | 'forwarded' | 'x-forwarded-for';

export interface ClientAddress {
  readonly ip: string;
  readonly source: AddressSource;
}

export type TrustTest = (ip: string) => boolean;

export function clientAddress(
  peer: string,
  forwarded: string | undefined,
  xForwardedFor: string | undefined,
  isTrusted: TrustTest,
): ClientAddress {
  const peerIp = unmapAddress(peer);
  if ((forwarded === undefined && xForwardedFor === undefined) || !isTrusted(peerIp)) return { ip: peerIp, source: 'peer' };
  const source: AddressSource = forwarded !== undefined ? 'forwarded' : 'x-forwarded-for';
  const hops = forwarded !== undefined ? forwardedFor(forwarded) : xForwardedFor!.split(',');
  let client = peerIp;
  let from: AddressSource = 'peer';
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = source === 'forwarded' ? hops[i]! : parseHop(hops[i]!);
    // An unparseable or obfuscated hop ends the walk: nothing to its left can be verified.
    if (hop === '' || isIP(hop) === 0) break;
    client = unmapAddress(hop);
    from = source;
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
