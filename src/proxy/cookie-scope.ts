/**
 * A function's cookies on a platform name stay with that name. Every function answers under one
 * zone (`<fn>-<org>.<zone>`): a `Set-Cookie` whose Domain attribute names the zone, or a parent of
 * it, would be sent to every other tenant's names (RFC 6265 §5.1.3), letting one tenant toss
 * cookies at another's visitors (session fixation, a login cookie shadowed). Such a Domain
 * attribute is taken off, so the cookie is the host's alone (RFC 6265 §5.3 step 6); a Domain that
 * names the host itself is kept, and one that names no suffix of it is left for the browser to
 * refuse. A custom domain is its customer's own, and its cookies are passed as they are.
 * The zone belongs on the Public Suffix List all the same (README), where browsers refuse such
 * cookies themselves.
 */

import { underZone } from '../core/dns-name.js';

/** The name an answer's cookies are confined to: `host` when it is under the zone, else undefined (a custom domain's cookies pass as they are). */
export function cookieHostOf(host: string, zone: string): string | undefined {
  return underZone(host, zone) ? host : undefined;
}

/** Takes a Domain broader than `host` off each `set-cookie` in flat [name, value, …] (lower-case names), in place. */
export function confineCookies(fields: string[], host: string): void {
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i] !== 'set-cookie') continue;
    const value = fields[i + 1]!;
    // Almost every cookie has no Domain: one case-insensitive search, nothing made.
    if (!DOMAIN_ATTRIBUTE.test(value)) continue;
    fields[i + 1] = withoutBroaderDomain(value, host);
  }
}

const DOMAIN_ATTRIBUTE = /;\s*domain\s*=/i;

function withoutBroaderDomain(cookie: string, host: string): string {
  const parts = cookie.split(';');
  const kept = [parts[0]!];
  for (let j = 1; j < parts.length; j++) {
    const attribute = parts[j]!;
    const eq = attribute.indexOf('=');
    if (eq !== -1 && attribute.slice(0, eq).trim().toLowerCase() === 'domain') {
      let domain = attribute.slice(eq + 1).trim().toLowerCase();
      if (domain.startsWith('.')) domain = domain.slice(1);
      // The router serves `name.` as `name` (one trailing dot, hostname.ts): a zone named with one
      // reaches every tenant's names written so.
      if (domain.endsWith('.')) domain = domain.slice(0, -1);
      // A parent of the host (the zone, or above it): every tenant's names would get the cookie.
      if (domain !== host && host.endsWith(`.${domain}`)) continue;
    }
    kept.push(attribute);
  }
  return kept.join(';');
}
