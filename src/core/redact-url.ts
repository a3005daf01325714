/**
 * A URL as messages and logs may show it: its password (in the user info, or in the `password`
 * query parameter ioredis also reads) replaced by ***. It works on the text rather than a parsed
 * URL, so an error about a URL too malformed to parse can still show it, as it was typed.
 */
export function redactUrl(url: string): string {
  const scheme = url.indexOf('://');
  const start = scheme === -1 ? 0 : scheme + 3;
  // Up to the last @ counts as user info: a password may hold an unencoded @ or /, and masking
  // too much is harmless where too little leaks.
  const at = url.lastIndexOf('@');
  const colon = at < start ? -1 : url.slice(start, at).indexOf(':');
  const masked = colon === -1 ? url : `${url.slice(0, start + colon)}:***${url.slice(at)}`;
  // A query key is read decoded (ioredis uses URLSearchParams): `pass%77ord` is `password` too.
  return masked.replace(/([?&])([^=&#]*)=([^&#]*)/g, (whole, sep: string, key: string) => (secretKey(key) ? `${sep}${key}=***` : whole));
}

/** A query key whose decoded name holds "password" (sentinelPassword too), or one that does not decode: masked, as too much is harmless. */
function secretKey(key: string): boolean {
  try {
    return decodeURIComponent(key.replace(/\+/g, ' ')).toLowerCase().includes('password');
  } catch {
    return true;
  }
}
