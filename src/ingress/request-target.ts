/**
 * Which host and path does a request name? Checks the framing details Node's parser lets
 * through: exactly one Host (HTTP/1), `:authority` agreeing with `host` (HTTP/2), absolute-form
 * targets agreeing with Host (RFC 9112 §3.2.2), origin-form paths, no fragment. Pure; never throws.
 */

export type TargetResult =
  | { readonly ok: true; readonly host: string; readonly path: string }
  | { readonly ok: false; readonly message: string };

export interface TargetInput {
  readonly httpVersionMajor: number;
  /** HTTP/1.0 may leave Host out: an absolute target then names the host. */
  readonly httpVersionMinor?: number;
  readonly url: string;
  readonly rawHeaders: readonly string[];
  /** HTTP/2 `:authority`, when present. */
  readonly authority: string | undefined;
}

/** An absolute http(s) target; schemes are case-insensitive (RFC 3986 §3.1): `HTTP://h/x` is one. */
const ABSOLUTE = /^https?:\/\//i;

export function requestTarget(input: TargetInput): TargetResult {
  let host: string | undefined;
  let hostCount = 0;
  const raw = input.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') {
      hostCount++;
      host = raw[i + 1]!;
    }
  }
  if (hostCount > 1) return { ok: false, message: 'more than one Host header' };
  if (input.httpVersionMajor >= 2) {
    // RFC 9113 §8.3.1: refused when they name different sites; `h:443` and `h.` name `h`'s (they
    // were refused 400, where the absolute-form check and the SNI check already take them so).
    if (input.authority !== undefined && host !== undefined && input.authority.toLowerCase() !== host.toLowerCase() && siteOf(input.authority) !== siteOf(host)) {
      return { ok: false, message: 'the host header differs from :authority' };
    }
    host = input.authority ?? host;
  }
  const url = input.url;
  // RFC 9112 §3.2: a request-target has no fragment (a client keeps it). Node's parser and nghttp2
  // both let `/a#frag` through, and it went upstream as sent, to a function that would read a
  // different path than a URL parser in front of it; `new URL()` dropped it silently from an
  // absolute target. Refused, as Envoy does by default. One scan of the target, on every request.
  if (url.indexOf('#') !== -1) return { ok: false, message: 'the request target must not carry a fragment (#)' };
  if (host === undefined && input.httpVersionMajor === 1 && input.httpVersionMinor === 0 && ABSOLUTE.test(url)) return absoluteTarget(url, undefined);
  if (host === undefined || host === '') return { ok: false, message: 'the request has no Host' };
  if (host.includes('@')) return { ok: false, message: 'the Host must not carry user information' };

  if (url.charCodeAt(0) === 0x2f /* / */) return originPath(url, host);
  // RFC 9113 §8.3.1: an HTTP/2 request names its host in :authority and its path in :path, never
  // an absolute URL there. nghttp2 checks :path only under an http(s) :scheme: with `:scheme: foo`
  // an absolute :path got through, and was served as the absolute-form target of HTTP/1.
  if (ABSOLUTE.test(url)) return input.httpVersionMajor >= 2 ? { ok: false, message: 'an HTTP/2 :path must be a path, not an absolute URL' } : absoluteTarget(url, host);
  if (url === '*') return { ok: false, message: 'an asterisk-form target (OPTIONS *) asks about no function: name one by its path' };
  return { ok: false, message: 'the request target must be a path or an absolute http(s) URL' };
}

/**
 * An absolute-form target: its authority is the host the request is for (RFC 9112 §3.2.2), and
 * what goes on. A Host beside it must name the same, its port compared as the target's scheme
 * defaults it: `https://h/x` with `Host: h:80` was taken, and the function was told `h:80` on an
 * HTTPS request (every absolute URL it built pointed at https://h:80).
 */
function absoluteTarget(url: string, host: string | undefined): TargetResult {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { ok: false, message: 'the absolute request target is not a valid URL' };
  }
  if (parsed.username !== '' || parsed.password !== '') return { ok: false, message: 'the request target must not carry user information' };
  // URL leaves the scheme's default port out of .host, and lowercases it.
  if (host !== undefined && withoutPort(host.toLowerCase(), parsed.protocol === 'https:' ? ':443' : ':80') !== parsed.host) {
    return { ok: false, message: 'the absolute request target names another host than Host' };
  }
  // The path and query go upstream as the client wrote them, as an origin-form target's do (and
  // nginx's absolute-form): the URL parser's copy had its dot segments resolved and `'` or `^`
  // escaped, so `/a/%2e%2e/b?q=it's` reached the function as `/b?q=it%27s` (a signed URL's check
  // then failed), where the same request in origin form arrived as sent (found by review). The
  // authority ends at the first `/` or `?` (no `#`: refused before); a back slash there is a slash
  // to the URL parser, which then read another host than the bytes say: refused.
  const start = url.indexOf('//') + 2;
  let end = start;
  while (end < url.length && url.charCodeAt(end) !== 0x2f /* / */ && url.charCodeAt(end) !== 0x3f /* ? */) {
    if (url.charCodeAt(end) === 0x5c /* \ */) return { ok: false, message: 'the absolute request target must not carry a back slash in its host' };
    end++;
  }
  // RFC 9112 §3.2.1: an empty path is sent as `/` (`http://h?q` → `/?q`).
  return originPath(end === url.length || url.charCodeAt(end) === 0x3f ? `/${url.slice(end)}` : url.slice(end), parsed.host);
}

/** An origin-form path, and the host it is for, refused where naive URL joining would read another host. */
function originPath(path: string, host: string): TargetResult {
  // `//evil.example/x` is a path here, but naive upstream URL joining would read it as an authority.
  if (path.charCodeAt(1) === 0x2f) return { ok: false, message: 'the path must not start with //' };
  // The same for `/\evil.example/x`: in an http(s) URL a back slash is a slash (WHATWG URL), so
  // `new URL(path, base)` (Node's own example for reading req.url) reads evil.example as the host.
  // Node's HTTP/1 parser and nghttp2 both let it through as it is.
  if (path.charCodeAt(1) === 0x5c /* \ */) return { ok: false, message: 'the path must not start with /\\' };
  return { ok: true, host, path };
}

function withoutPort(host: string, port: string): string {
  return host.endsWith(port) ? host.slice(0, -port.length) : host;
}

/** The site an HTTP/2 authority names: lower case, without HTTPS's default port or the name's trailing dot. */
function siteOf(authority: string): string {
  const name = withoutPort(authority.toLowerCase(), ':443');
  return name.endsWith('.') ? name.slice(0, -1) : name;
}


/** `:8443` of `Name.Example.:8443`, or '' (for a host routing has already accepted: IP literals were refused). */
export function portOf(host: string): string {
  const colon = host.lastIndexOf(':');
  return colon === -1 ? '' : host.slice(colon);
}
