/**
 * A URL as messages and logs may show it: its password (in the user info, or in the `password`
 * query parameter ioredis also reads) replaced by ***. It works on the text rather than a parsed
 * URL, so an error about a URL too malformed to parse can still show it, as it was typed.
 */
export function redactUrl(url: string): string {
  const info = userInfoSpan(url);
  const colon = info === undefined ? -1 : url.slice(info.start, info.at).indexOf(':');
  const masked = info === undefined || colon === -1 ? url : `${url.slice(0, info.start + colon)}:***${url.slice(info.at)}`;
  // A query key is read decoded (ioredis uses URLSearchParams): `pass%77ord` is `password` too.
  return masked.replace(/([?&])([^=&#]*)=([^&#]*)/g, (whole, sep: string, key: string) => (secretKey(key) ? `${sep}${key}=***` : whole));
}

/**
 * Where a URL's text holds user info: from after `://` (or the start) to its `@`, or undefined.
 * Up to the last @: a password may hold an unencoded @ or /, and taking too much is harmless where
 * too little leaks. On the text, so a URL too malformed to parse is covered too.
 */
export function userInfoSpan(url: string): { readonly start: number; readonly at: number } | undefined {
  const scheme = url.indexOf('://');
  const start = scheme === -1 ? 0 : scheme + 3;
  const at = url.lastIndexOf('@');
  return at < start ? undefined : { start, at };
}

/** A query key whose decoded name holds "password" (sentinelPassword too), or one that does not decode: masked, as too much is harmless. */
function secretKey(key: string): boolean {
  try {
    return decodeURIComponent(key.replace(/\+/g, ' ')).toLowerCase().includes('password');
  } catch {
    return true;
  }
}
