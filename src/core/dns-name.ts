/**
 * What counts as a DNS name the operator may give (the zone, a custom domain): lower case, no
 * trailing dot, at least two labels, each 1–63 letters, digits or inner hyphens, 253 characters
 * at most, and a top-level label that is letters or punycode (`xn--p1ai`, .рф), as a Host header
 * carries an internationalised name. One rule for every way in (regions.json, flags, the admin
 * API, `registry domain add`), so a name one of them takes is never refused by another.
 */
const DNS_NAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+([a-z]{2,63}|xn--[a-z0-9]([a-z0-9-]{0,57}[a-z0-9])?)$/;

export function isDnsName(name: string): boolean {
  return DNS_NAME.test(name);
}
