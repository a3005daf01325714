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
  return masked.replace(/([?&]password=)[^&#]*/gi, '$1***');
}
