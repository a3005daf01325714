/**
 * The name rules a TLS certificate is matched by (RFC 6125 §6.4): exact names and one-label
 * `*.` wildcards, case-insensitive, trailing dot ignored. Pure and never throws; no I/O here.
 */

/** Lower-cases and drops one trailing dot (`A.Example.COM.` → `a.example.com`). */
export function normalizeServername(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/**
 * The domain a `*.` wildcard would have to name to cover `host`: `a.example.com` → `example.com`.
 * Undefined for a single label, so `*.com`-style names never cover a bare `com`.
 */
export function wildcardParentOf(host: string): string | undefined {
  const dot = host.indexOf('.');
  // dot === 0 means an empty first label (`.example.com`), which no wildcard covers.
  return dot > 0 && dot < host.length - 1 ? host.slice(dot + 1) : undefined;
}

/**
 * True when a certificate serving `names` (its subjectAltName DNS entries) is valid for `host`.
 * A wildcard covers exactly one whole left-most label: `*.example.com` covers `a.example.com`
 * but neither `a.b.example.com` nor `example.com`; partial wildcards (`f*.example.com`) cover
 * nothing, as in browsers. A `:port` on `host` is ignored, so a raw Host header may be passed.
 */
export function certificateMatchesHost(names: readonly string[], host: string): boolean {
  return nameCover(names)(host);
}

/**
 * `certificateMatchesHost` for many hosts against one set of names, in two lookups a host: the
 * names are normalised once, into the exact ones and the wildcards' parents. Asked for every
 * custom domain at each ACME check, a scan of every file name for each cost 4 s of one event-loop
 * turn at 100,000 domains and 1,000 names.
 */
export function nameCover(names: readonly string[]): (host: string) => boolean {
  const exact = new Set<string>();
  const wildcardParents = new Set<string>();
  for (const raw of names) {
    const name = normalizeServername(raw);
    if (name.startsWith('*.')) wildcardParents.add(name.slice(2));
    else exact.add(name);
  }
  return (host) => {
    const wanted = normalizeServername(stripPort(host));
    if (wanted.length === 0) return false;
    if (exact.has(wanted)) return true;
    const parent = wildcardParentOf(wanted);
    return parent !== undefined && wildcardParents.has(parent);
  };
}

/**
 * The DNS names in Node's `X509Certificate#subjectAltName` text (`DNS:a.com, IP Address:…`),
 * normalised. Node JSON-quotes values holding separators (since 17.3.1, CVE-2021-44532), so
 * quoted values are decoded rather than split on their commas.
 */
export function dnsNamesFromSubjectAltName(subjectAltName: string | undefined): string[] {
  if (subjectAltName === undefined) return [];
  const names: string[] = [];
  for (const match of subjectAltName.matchAll(SAN_ENTRY)) {
    if (match[1] !== 'DNS' || match[2] === undefined) continue;
    const value = match[2].startsWith('"') ? decodeQuoted(match[2]) : match[2];
    if (value !== undefined && value.length > 0) names.push(normalizeServername(value));
  }
  return [...new Set(names)];
}

const SAN_ENTRY = /(?:^|, )([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)/g;

function decodeQuoted(quoted: string): string | undefined {
  try {
    const value: unknown = JSON.parse(quoted);
    return typeof value === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

function stripPort(host: string): string {
  const colon = host.indexOf(':');
  // More than one colon is an IPv6 literal, which no DNS name matches anyway.
  return colon !== -1 && colon === host.lastIndexOf(':') ? host.slice(0, colon) : host;
}
