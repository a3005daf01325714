/**
 * Where the plain listener sends a request: the same host and path over HTTPS (RFC 9110 §15.4.9,
 * a 308 keeps the method and body). Pure.
 */
import { normalizeHost } from '../routing/hostname.js';

/**
 * The `Location` of the redirect, or null where there is none to give: a Host that is no DNS name
 * (normalizeHost answers an error code for those, which the pattern refuses too), no HTTPS port,
 * a path that is not origin-form or starts with `//` (another host, to a browser), or one holding a
 * control byte, a space or a tab. Node's header check refuses the controls other than tab, and
 * writeHead would throw on them from inside a request event, where nothing catches; its HTTP/1
 * parser refuses all of them in a request target today, but this does not lean on its strictness
 * (a lenient build accepts `\f`). A space or tab is no URL either, though Node would write one.
 */
export function httpsRedirectLocation(hostHeader: string, path: string, httpsPort: number): string | null {
  const host = normalizeHost(hostHeader);
  if (!DNS_NAME.test(host) || httpsPort === 0 || !path.startsWith('/') || path.startsWith('//') || !HEADER_VALUE.test(path)) return null;
  return `https://${host}${httpsPort === 443 ? '' : `:${httpsPort}`}${path}`;
}

const DNS_NAME = /^[a-z0-9.-]+$/;
/** Visible ASCII, and Latin-1 above it (how Node reads a raw UTF-8 byte): no control, space or tab. */
const HEADER_VALUE = /^[\x21-\x7e\x80-\xff]*$/;
