/**
 * Address hygiene for GeoIP: unwraps IPv4-mapped IPv6 and classifies what no database will know
 * (loopback, private ranges). Matchers are built once at module load; checks never throw.
 */
import { BlockList, isIP } from 'node:net';

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

const privateRanges = new BlockList();
for (const [net, bits] of [
  ['10.0.0.0', 8],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['100.64.0.0', 10], // RFC 6598 carrier-grade NAT
  ['169.254.0.0', 16], // link-local
  ['0.0.0.0', 8],
] as const) {
  privateRanges.addSubnet(net, bits, 'ipv4');
}
privateRanges.addSubnet('fc00::', 7, 'ipv6'); // unique local
privateRanges.addSubnet('fe80::', 10, 'ipv6'); // link-local

export type AddressClass = 'invalid' | 'loopback' | 'private' | 'public';

export function classifyAddress(ip: string): AddressClass {
  const family = isIP(ip);
  if (family === 0) return 'invalid';
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (loopback.check(ip, type)) return 'loopback';
  if (privateRanges.check(ip, type)) return 'private';
  return 'public';
}
