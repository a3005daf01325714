/** Small address helpers shared by every layer. */
import { isIP } from 'node:net';

/**
 * Any IPv4-mapped IPv6 address (::ffff:0:0/96) → its IPv4 address, so IPv4 rules and databases
 * apply to dual-stack sockets and to forwarding headers. Sockets write `::ffff:1.2.3.4`, which the
 * first test takes without parsing; a proxy may write the same address as `::ffff:102:304`,
 * `0:0:0:0:0:FFFF:1.2.3.4` or any other spelling RFC 4291 allows, and left as it was, such an
 * address matched no IPv4 trust rule, quota key or database row of the client it names.
 */
export function unmapAddress(ip: string): string {
  if (ip.length > 7 && (ip.startsWith('::ffff:') || ip.startsWith('::FFFF:')) && isIP(ip.slice(7)) === 4) return ip.slice(7);
  if (ip.indexOf(':') === -1) return ip; // IPv4 (every request from an IPv4 socket): no scan beyond this
  // Every spelling of a mapped address holds "ffff" (the run of zeros before it may be written
  // or compressed, the IPv4 part may be dotted or hex); a plain IPv6 client costs one scan.
  if (!MAY_BE_MAPPED.test(ip)) return ip;
  const bytes = ipv6Bytes(ip);
  if (bytes === null || !isMapped(bytes)) return ip;
  return `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
}

// Only "ffff": the caller has seen a colon. `:.*ffff` backtracked from every colon, quadratic in
// text a client may send (a forwarding header an orchestrator locates).
const MAY_BE_MAPPED = /ffff/i;

function isMapped(bytes: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false;
  return bytes[10] === 0xff && bytes[11] === 0xff;
}

/** Dotted-quad text (no leading zeros, no shorthand) → 4 bytes, or null. */
export function ipv4Bytes(text: string): Uint8Array | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const bytes = new Uint8Array(4);
  for (const [i, part] of parts.entries()) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part) || Number(part) > 255) return null;
    bytes[i] = Number(part);
  }
  return bytes;
}

/** IPv6 text (RFC 4291 §2.2: `::` once, an IPv4 tail allowed) → 16 bytes, or null. Zone ids are not addresses: null. */
export function ipv6Bytes(text: string): Uint8Array | null {
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const groupsOf = (half: string): number[] | null => {
    if (half === '') return [];
    const groups: number[] = [];
    const parts = half.split(':');
    for (const [i, part] of parts.entries()) {
      if (part.includes('.') && i === parts.length - 1) {
        const v4 = ipv4Bytes(part);
        if (v4 === null) return null;
        groups.push(((v4[0] as number) << 8) | (v4[1] as number), ((v4[2] as number) << 8) | (v4[3] as number));
      } else if (/^[0-9a-fA-F]{1,4}$/.test(part)) {
        groups.push(parseInt(part, 16));
      } else {
        return null;
      }
    }
    return groups;
  };
  const head = groupsOf(halves[0] as string);
  const tail = halves.length === 2 ? groupsOf(halves[1] as string) : [];
  if (head === null || tail === null) return null;
  // An embedded IPv4 address may only end the whole address, not the part before "::".
  if (halves.length === 2 && (halves[0] as string).includes('.')) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const groups = [...head, ...new Array<number>(missing).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    bytes[i * 2] = g >> 8;
    bytes[i * 2 + 1] = g & 0xff;
  });
  return bytes;
}

/**
 * The key an address is limited under: an IPv4 address as it is, an IPv6 address by its /64. One
 * IPv6 subscriber (a home, a phone, a cloud instance) is given a whole /64 and can pick a fresh
 * address from it for every connection, so limits keyed by the full address would never hold.
 * Anything not an IPv6 address (unmapped already, or '') is its own key.
 */
export function limitKeyOf(address: string): string {
  if (address.indexOf(':') === -1) return address;
  const bytes = ipv6Bytes(address);
  if (bytes === null) return address;
  let key = '';
  for (let i = 0; i < 8; i += 2) key += `${((bytes[i]! << 8) | bytes[i + 1]!).toString(16)}:`;
  return `${key}:/64`;
}

/**
 * The limit key of a socket's peer as Node gives it: a dual-stack listener writes an IPv4 client as
 * `::ffff:a.b.c.d`, which keyed by its /64 would put every IPv4 client in one key.
 */
export function peerLimitKey(remoteAddress: string | undefined): string {
  return limitKeyOf(unmapAddress(remoteAddress ?? ''));
}

/** `host:port` for a message, an IPv6 literal in brackets (`::1:9090` reads as an address alone). */
export function hostAndPort(host: string, port: number | string): string {
  return `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}
