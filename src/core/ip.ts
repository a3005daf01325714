/** Small address helpers shared by every layer. */
import { isIP } from 'node:net';

/** `::ffff:1.2.3.4` → `1.2.3.4`, so IPv4 rules and databases apply to dual-stack sockets. */
export function unmapAddress(ip: string): string {
  return ip.length > 7 && (ip.startsWith('::ffff:') || ip.startsWith('::FFFF:')) && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
}
