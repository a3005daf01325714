/**
 * What counts as a DNS name the operator may give (the zone, a custom domain): lower case, no
 * trailing dot, at least two labels, each 1–63 letters, digits or inner hyphens, 253 characters
 * at most, and a top-level label that is letters or punycode (`xn--p1ai`, .рф), as a Host header
 * carries an internationalised name. One rule for every way in (regions.json, flags, the admin
 * API, `registry domain add`), so a name one of them takes is never refused by another.
 */
const DNS_NAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+([a-z]{2,63}|xn--[a-z0-9]([a-z0-9-]{0,57}[a-z0-9])?)$/;

/** RFC 1035 §2.3.4: the longest label of a DNS name. */
export const MAX_LABEL_LENGTH = 63;

/**
 * A name as an operator typed it, as the rule above compares it: lower case, without the trailing
 * dot a fully qualified name may carry. Anything but printable ASCII is returned as typed, for
 * isDnsName to refuse: toLowerCase folds some non-ASCII letters onto ASCII (KELVIN SIGN U+212A
 * becomes "k"), which would take a name nobody typed (routing refuses such a Host the same way).
 */
export function dnsNameFrom(raw: string): string {
  return /[^!-~]/.test(raw) ? raw : raw.toLowerCase().replace(/\.$/, '');
}

/** The longest function name an org's functions may have: their host label `<fn>-<org>` is one DNS label. */
export function longestFunctionName(org: string): number {
  return MAX_LABEL_LENGTH - 1 - org.length;
}

export function isDnsName(name: string): boolean {
  return DNS_NAME.test(name);
}

/**
 * Whether `host` (normalised: lower-case, no port, no trailing dot) is the zone or a name under
 * it (a whole label boundary: `eviltelnyxcompute.com` is not under `telnyxcompute.com`). No string
 * is made: host resolution and the HSTS choice run it on every request.
 */
export function underZone(host: string, zone: string): boolean {
  const dot = host.length - zone.length - 1;
  if (dot < 0) return host === zone;
  return host.charCodeAt(dot) === 0x2e /* . */ && host.endsWith(zone);
}
