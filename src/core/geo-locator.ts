/** The role the request path needs from GeoIP: an address in, a location out, synchronously and never throwing. */
import type { ClientLocation } from './types.js';

export interface GeoLocator {
  /** `ip` is a textual IPv4 or IPv6 address (IPv4-mapped IPv6 allowed). Unparseable input gives source `unknown`. */
  locate(ip: string): ClientLocation;
}
