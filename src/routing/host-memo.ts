/**
 * Host → function resolution, remembered per raw Host value. A client sends the same host on every
 * request of a connection, and a busy function's clients all send one spelling of it; parsing it
 * again each time (normalising, checking the zone and every label character, slicing out function
 * and org) cost about 3,000 instructions per request, a hash-map hit about a tenth of that.
 *
 * Only successful resolutions are kept: names that do not parse as a function host or custom
 * domain (a scanner's IP literals, foreign names) cost what they cost before and take no room. A
 * well-formed `<fn>-<org>.<zone>` name is kept whether or not the function exists (the directory is
 * consulted after), and so are spellings of one name that differ in case, port or trailing dot (they
 * resolve alike). The memo is bounded: when full it starts over, so a client sending endless
 * distinct well-formed names costs at most `maxEntries` entries of memory, and the hosts in real use
 * are back after one request each. It forgets everything when the registry's custom domains change
 * (a name can start or stop being a custom domain); the operator's own domains and the zone are
 * fixed for the decider's lifetime.
 */
import type { FunctionRef } from '../core/types.js';
import { resolveHost, type DomainLookup, type HostResolution } from './hostname.js';

export interface HostMemo {
  /** resolveHost(raw, zone, operator domains then `registryDomains`), remembered when it succeeds. */
  resolve(raw: string, registryDomains: ReadonlyMap<string, FunctionRef>): HostResolution;
  /** Hosts remembered now (for tests and the bound). */
  readonly size: number;
}

export function createHostMemo(zone: string, operatorDomains: ReadonlyMap<string, FunctionRef>, maxEntries = 4_096): HostMemo {
  let known = new Map<string, HostResolution>();
  /** The registry's domains the remembered answers were resolved with (those of the call in progress). */
  let registryDomains: ReadonlyMap<string, FunctionRef> | undefined;
  // One lookup object for the process: it reads the domains of the call in progress, so a miss
  // builds no closure.
  const domains: DomainLookup = { get: (host) => operatorDomains.get(host) ?? registryDomains?.get(host) };

  return {
    resolve(raw, currentDomains) {
      if (currentDomains !== registryDomains) {
        registryDomains = currentDomains;
        known = new Map();
      }
      const remembered = known.get(raw);
      if (remembered !== undefined) return remembered;
      const resolved = resolveHost(raw, zone, domains);
      if (resolved.ok) {
        if (known.size >= maxEntries) known = new Map();
        known.set(raw, resolved);
      }
      return resolved;
    },
    get size() {
      return known.size;
    },
  };
}
