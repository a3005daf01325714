/**
 * Host → function resolution: `<fn>-<orgId>.<zone>` or an operator-mapped custom domain.
 * Pure and allocation-light (it runs on every request); it never throws on input.
 */
import type { FunctionRef } from '../core/types.js';
import type { HostErrorCode } from '../core/errors.js';
import { isDnsName, MAX_LABEL_LENGTH, underZone } from '../core/dns-name.js';

export type HostResolution =
  | { readonly ok: true; readonly host: string; readonly fn: string; readonly org: string; readonly customDomain: boolean }
  | { readonly ok: false; readonly code: HostErrorCode; readonly message: string };

/** Custom domains, looked up by normalised host (lower-case, no port, no trailing dot). */
export interface DomainLookup {
  get(host: string): FunctionRef | undefined;
}

const MAX_HOST = 253;

/**
 * The failures of a well-formed name that a custom domain could still be: checked after the
 * domains are looked up (outside the zone, the zone itself, or a name under it that breaks the
 * `<fn>-<org>` rule, since an operator may map `shop.<zone>`). Before the directory is read, such a
 * name may be one it holds.
 */
export const CUSTOM_DOMAIN_CANDIDATES: ReadonlySet<HostErrorCode> = new Set<HostErrorCode>(['host_outside_zone', 'missing_function', 'nested_subdomain', 'missing_org', 'invalid_hyphen']);

const fail = (code: HostErrorCode, message: string): HostResolution => ({ ok: false, code, message });

/** Lower-cases and strips `:port` and one trailing dot; returns an error code for what cannot be a DNS name. */
export function normalizeHost(raw: string): string | HostErrorCode {
  let host = raw;
  if (host.length === 0) return 'empty_host';
  if (host.charCodeAt(0) === 0x5b /* [ */) return 'ip_literal'; // RFC 3986 IP-literal, e.g. [::1]:8443
  const colon = host.lastIndexOf(':');
  if (colon !== -1) {
    if (host.indexOf(':') !== colon) return isBareIpv6(host) ? 'ip_literal' : 'invalid_characters';
    const port = host.slice(colon + 1);
    if (!/^[0-9]{1,5}$/.test(port) || Number(port) > 65535) return 'invalid_port';
    host = host.slice(0, colon);
  }
  if (host.length > 0 && host.charCodeAt(host.length - 1) === 0x2e /* . */) host = host.slice(0, -1);
  if (host.length === 0) return 'empty_host';
  if (host.length > MAX_HOST) return 'label_too_long';
  // A host name is printable ASCII (IDNs travel as punycode). Checked before lower-casing: toLowerCase maps
  // some non-ASCII letters onto ASCII (KELVIN SIGN U+212A → "k"), which would pass the label check.
  if (NOT_PRINTABLE_ASCII.test(host)) return 'invalid_characters';
  return host.toLowerCase();
}

function isBareIpv6(host: string): boolean {
  return /^[0-9a-fA-F:.]+$/.test(host);
}

const IPV4 = /^[0-9]{1,3}(\.[0-9]{1,3}){3}$/;
const NOT_PRINTABLE_ASCII = /[^ -~]/;

/**
 * Resolves a Host header (or `:authority`, or a name from the CLI) to `{ fn, org }`.
 * Custom domains are consulted first; then the name must be exactly one label under `zone`.
 * The org id is the last hyphen-separated token, the function name everything before it.
 */
export function resolveHost(raw: string, zone: string, domains?: DomainLookup): HostResolution {
  const host = normalizeHost(raw);
  switch (host) {
    case 'empty_host':
      return fail(host, 'the request has no host name');
    case 'ip_literal':
      return fail(host, 'an IP address is not a function host name');
    case 'invalid_port':
      return fail(host, 'the port after the host name is not a number from 0 to 65535');
    case 'invalid_characters':
      return fail(host, 'the host name has characters outside [a-z0-9-.]');
    case 'label_too_long':
      return fail(host, `the host name is longer than ${MAX_HOST} characters`);
  }
  if (IPV4.test(host)) return fail('ip_literal', 'an IP address is not a function host name');

  const mapped = domains?.get(host);
  if (mapped !== undefined) return { ok: true, host, fn: mapped.fn, org: mapped.org, customDomain: true };

  if (host === zone) return fail('missing_function', `expected <function>-<org>.${zone}`);
  if (!underZone(host, zone)) return fail('host_outside_zone', `the host is not under ${zone} and is not a configured custom domain`);
  const label = host.slice(0, host.length - zone.length - 1);
  if (label.length === 0) return fail('missing_function', `expected <function>-<org>.${zone}`);
  if (label.includes('.')) {
    // Said as what is wrong with it when it is no DNS name at all: then it is no custom domain
    // either (those are DNS names), and a directory not read yet is no reason to answer it 503.
    if (!isDnsName(host)) {
      return host.split('.').some((l) => l.length > MAX_LABEL_LENGTH)
        ? fail('label_too_long', `a label is longer than ${MAX_LABEL_LENGTH} characters`)
        : fail('invalid_characters', 'the host name is not a DNS name (an empty label, or characters outside [a-z0-9-])');
    }
    return fail('nested_subdomain', `only one label is allowed before ${zone}`);
  }
  if (label.length > MAX_LABEL_LENGTH) return fail('label_too_long', `the label is longer than ${MAX_LABEL_LENGTH} characters`);
  if (!isLdhLabel(label)) return fail('invalid_characters', 'the label has characters outside [a-z0-9-]');

  const lastHyphen = label.lastIndexOf('-');
  if (lastHyphen === -1 || lastHyphen === label.length - 1) {
    return fail('missing_org', `expected <function>-<org>.${zone}: no org id after the last hyphen`);
  }
  if (lastHyphen === 0) return fail('missing_function', `expected <function>-<org>.${zone}: no function name`);
  const fn = label.slice(0, lastHyphen);
  if (fn.charCodeAt(0) === 0x2d || fn.charCodeAt(fn.length - 1) === 0x2d) {
    return fail('invalid_hyphen', 'a function name may not start or end with a hyphen');
  }
  return { ok: true, host, fn, org: label.slice(lastHyphen + 1), customDomain: false };
}

/** Letters, digits and hyphens only (the label is already lower-case). */
function isLdhLabel(label: string): boolean {
  for (let i = 0; i < label.length; i++) {
    const c = label.charCodeAt(i);
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d;
    if (!ok) return false;
  }
  return true;
}
