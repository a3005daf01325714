/**
 * Header rewriting between client and region (RFC 9110 §7.6): hop-by-hop headers, and any
 * named in `Connection`, never cross the proxy in either direction; forwarding headers are
 * rebuilt from what this router saw, extending the client's only when the peer is a trusted
 * proxy; client-sent `x-edge-*` headers are dropped so a client cannot impersonate the edge.
 * One pass over `rawHeaders`, no regular expressions on the common path.
 */
import { util as undiciUtil } from 'undici';
import { CONTAINER_FIELD } from './upstream-error.js';
import { LowerCaseMemo, NameMemo, ValueMemo } from './field-memo.js';
import { withoutEdgeMetrics } from './server-timing.js';

/** RFC 9110 §7.6.1 hop-by-hop fields, plus the HTTP/2-era ones, and `Proxy`: never passed on either way. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
  'http2-settings',
  'expect', // 100-continue is negotiated per hop; the exchange answers it when it reads the body
  // Not hop-by-hop, and no standard field: httpoxy (CVE-2016-5385). CGI turns it into HTTP_PROXY,
  // which HTTP libraries take for their outbound proxy, so a client sent a function's own calls
  // through a server of its choosing. Dropped as nginx's and Apache's advisories drop it.
  'proxy',
]);

const { headerNameToString } = undiciUtil;

/**
 * The names and values of a region's last answer by position (field-memo.ts): an answer like the
 * last one gives back the same strings without a name lookup or a Buffer-to-string call each
 * (about 2,500 instructions an answer of five fields, counted).
 */
const ANSWER_NAMES = new NameMemo(headerNameToString);
const ANSWER_VALUES = new ValueMemo();
/** The lower-cased name of the answer's field whose name is at `i` in undici's raw list. */
const answerName = (raw: readonly (Buffer | string)[], i: number): string => {
  const bytes = raw[i]!;
  return typeof bytes === 'string' ? headerNameToString(bytes) : ANSWER_NAMES.name(i >> 1, bytes);
};
/** The Latin-1 text of the answer's field value at `i` in undici's raw list. */
const answerValue = (raw: readonly (Buffer | string)[], i: number): string => {
  const bytes = raw[i]!;
  return typeof bytes === 'string' ? bytes : ANSWER_VALUES.value(i >> 1, bytes);
};

/**
 * The links of a region's 103 (Early Hints), one link-value each. Only its Link fields go on
 * (RFC 8297: what a client may fetch before the answer; an interim answer's other fields are not
 * the answer's, and a function's Set-Cookie there would escape cookie confinement). Split at each
 * `, <`: Node's HTTP/1 writer takes one link-value per entry and refuses a field listing several.
 * `forHttp1`: only the links that writer takes (nodeWritesLink); it refuses the whole 103 for one
 * it does not, so one odd link had cost a client every other. Not on the hot path: no memo.
 */
export function earlyHintLinks(raw: readonly (Buffer | string)[], forHttp1: boolean): string[] {
  const links: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (headerNameToString(raw[i]!) !== 'link') continue;
    const value = raw[i + 1]!;
    for (const link of (typeof value === 'string' ? value : value.toString('latin1')).split(NEXT_LINK_VALUE)) {
      const trimmed = link.trim();
      if (trimmed !== '' && (!forHttp1 || nodeWritesLink(trimmed))) links.push(trimmed);
    }
  }
  return links;
}
/** A comma that starts another link-value (RFC 8288 §3: each begins with its `<URI>`). */
const NEXT_LINK_VALUE = /,(?=\s*<)/;

/**
 * Whether Node 20's `writeEarlyHints` takes this link-value: `<URI>`, then `; param`,
 * `; param=value` or `; param="value"`, with no white space, `;` or `"` inside a parameter (stricter
 * than RFC 8288: a quoted value holding a space, `title="a b"`, is refused), and none at the end.
 * Node checks with a regular expression that backtracks exponentially on a value it refuses
 * (`</x>` then `; a=a=a` 16 times and a lone `;` held the event loop 2 s): a function's 103 must
 * not reach it unless it passes, so this scans once, in linear time, and accepts exactly what that
 * expression does (test/proxy/headers.test.ts compares the two on every short value).
 */
export function nodeWritesLink(link: string): boolean {
  if (link.charCodeAt(0) !== 0x3c /* < */) return false;
  let i = link.indexOf('>') + 1;
  if (i === 0) return false;
  const n = link.length;
  while (i < n) {
    while (i < n && isLinkSpace(link.charCodeAt(i))) i++;
    if (link.charCodeAt(i) !== 0x3b /* ; */) return false;
    i++;
    while (i < n && isLinkSpace(link.charCodeAt(i))) i++;
    const start = i;
    while (i < n && isLinkParamChar(link.charCodeAt(i))) i++;
    if (i === start) return false;
    if (link.charCodeAt(i) === 0x22 /* " */) {
      // A quoted value follows only `name=`: at least one character, then the `=`.
      if (i - start < 2 || link.charCodeAt(i - 1) !== 0x3d /* = */) return false;
      i++;
      while (i < n && isLinkParamChar(link.charCodeAt(i))) i++;
      if (link.charCodeAt(i) !== 0x22) return false;
      i++;
    }
  }
  return true;
}
/** JavaScript's `\s` among the Latin-1 characters undici reads field values as. */
const isLinkSpace = (c: number): boolean => (c >= 0x09 && c <= 0x0d) || c === 0x20 || c === 0xa0;
const isLinkParamChar = (c: number): boolean => c !== 0x3b && c !== 0x22 && !isLinkSpace(c);

/**
 * Every name this router adds to an upstream request (upstreamRequestHeaders' last push), for
 * undici-header-names.ts.
 */
export const ADDED_UPSTREAM_HEADER_NAMES: readonly string[] = [
  'host',
  'x-real-ip',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'forwarded',
  'x-request-id',
  'traceparent',
  'x-edge-fn',
  'x-edge-org',
];

const REQUEST_ID = 'x-request-id';
const SERVER_TIMING = 'server-timing';

/** The client's field names lower-cased by position (field-memo.ts): the same names as last request's cost no lower-casing. */
const REQUEST_NAMES = new LowerCaseMemo();

/** Headers this router sets itself on the upstream request; the client's copies are replaced. */
const REPLACED = new Set(['host', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded', 'x-request-id', 'x-real-ip']);

/**
 * What other proxies and CDNs assert about the client or the request as it first arrived: its
 * address, and the port, scheme, path prefix or URL it was sent to. Frameworks believe them (Rack
 * reads X-Forwarded-Port, -Ssl and -Scheme; Spring X-Forwarded-Prefix and -Port; some stacks route
 * on X-Original-URL), so from an untrusted peer they are spoofs that steer a function's redirects,
 * scheme or routing, and are dropped; a trusted proxy's pass through. The `X-Forwarded-*` family
 * is not listed: every one of its fields but the three REPLACED is treated so by its prefix
 * (upstreamRequestHeaders), passed on only from a trusted proxy that speaks that family (not
 * one configured for `Forwarded`, whose X-Forwarded-* are its client's).
 */
const CLIENT_ADDRESS = new Set([
  'true-client-ip',
  'client-ip',
  'cf-connecting-ip',
  'x-client-ip',
  'fastly-client-ip',
  'x-cluster-client-ip',
  'x-original-forwarded-for',
  'x-url-scheme',
  'front-end-https',
  'x-original-url',
  'x-original-uri',
  'x-rewrite-url',
  'x-original-host',
  'x-host',
]);

/** What becomes of a client's field, by its lower-cased name (`FIELD_KIND`). */
const HOP = 1;
const CLIENT_ADDRESS_FIELD = 2;
const REPLACED_FIELD = 3;
const TRACEPARENT = 4;
const TRACESTATE = 5;
const COOKIE = 6;

/**
 * The names `upstreamRequestHeaders` treats apart from the rest, and how: one map look-up a field
 * where there were up to three set look-ups and three string comparisons. A name missing from it
 * is passed on unless `Connection` names it, it is in the edge's `x-edge-*` namespace, or it is an
 * underscore spelling of a name the edge owns (none of the names here has either).
 */
const FIELD_KIND = new Map<string, number>([
  ...[...HOP_BY_HOP].map((name) => [name, HOP] as const),
  ...[...CLIENT_ADDRESS].map((name) => [name, CLIENT_ADDRESS_FIELD] as const),
  ...[...REPLACED].map((name) => [name, REPLACED_FIELD] as const),
  ['traceparent', TRACEPARENT],
  ['tracestate', TRACESTATE],
  ['cookie', COOKIE],
]);

export interface ForwardingContext {
  /** The socket peer (unmapped). */
  readonly peerIp: string;
  /** The client as this router determined it (the peer, or what trusted proxies said): sent as X-Real-IP. */
  readonly clientIp: string;
  /** True when the peer is a configured trusted proxy: its forwarding headers are extended, not replaced. */
  readonly peerTrusted: boolean;
  /**
   * Which of a trusted peer's forwarding headers are its own: `Forwarded`, or the `X-Forwarded-*`
   * family (`-For`, `-Proto`, `-Host`). The other kind came from the client through that proxy
   * untouched, so it is replaced, as from an untrusted peer.
   */
  readonly trustedChain: 'forwarded' | 'x-forwarded-for';
  /** `https` or `http`, as this router received the request. */
  readonly proto: string;
  /** The host the request was routed by, normalised (lower case, no trailing dot or port): what routing saw is what the region sees. */
  readonly host: string;
  readonly requestId: string;
  /** W3C trace context: what goes upstream, and whether the client's own tracestate may follow it. */
  readonly trace: { readonly traceparent: string; readonly fromClient: boolean };
  readonly fn: string;
  readonly org: string;
}

/**
 * Flat [name, value, …], as undici takes them: a repeated name is repeated, not folded into a list.
 * An array rather than an object because both ends walk it by index: building an object keyed by
 * whatever names clients send, and undici's walk over its keys, were megamorphic lookups per header.
 */
export type UpstreamHeaders = string[];

/** Names a request's `Connection` headers list (beyond the hop-by-hop ones); undefined for the common case. */
function connectionTokens(rawHeaders: readonly string[]): Set<string> | undefined {
  let tokens: Set<string> | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    // A first-letter test before lower-casing: `User-Agent` is ten letters long too, and a new
    // lower-cased copy of it on every request cost about 200 instructions (counted).
    if (name.length === 10 && (name.charCodeAt(0) | 0x20) === 0x63 /* c */ && name.toLowerCase() === 'connection') tokens = namedByConnection(rawHeaders[i + 1]!, tokens);
  }
  return tokens;
}

/** RFC 7239 §6: IPv6 nodes are bracketed and quoted. */
function forwardedNode(ip: string): string {
  return ip.includes(':') ? `"[${ip}]"` : ip;
}

/**
 * This hop's `Forwarded` element, the last one made kept: consecutive requests mostly come from
 * the same peer for the same host, and reusing the string saves building it and, once undici's
 * value check has flattened it, flattening it again; the check on a flat string also takes V8's
 * fast path (about 2,000 instructions a request, counted).
 */
let lastHop = { peerIp: '', host: '', proto: '', value: '' };
function forwardedHop(peerIp: string, host: string, proto: string): string {
  const last = lastHop;
  if (peerIp === last.peerIp && host === last.host && proto === last.proto) return last.value;
  const value = `for=${forwardedNode(peerIp)};host="${host}";proto=${proto}`;
  lastHop = { peerIp, host, proto, value };
  return value;
}

const VALID_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** A client-supplied request id is kept when it is short and plain; anything else is replaced. */
export function acceptableRequestId(value: string | undefined): value is string {
  return value !== undefined && VALID_REQUEST_ID.test(value);
}

/**
 * Headers for the upstream request. `rawHeaders` is Node's flat [name, value, …] list (HTTP/2
 * pseudo-headers are skipped).
 */
export function upstreamRequestHeaders(rawHeaders: readonly string[], ctx: ForwardingContext): UpstreamHeaders {
  const named = connectionTokens(rawHeaders);
  const out: UpstreamHeaders = [];
  let xff: string | undefined;
  let forwarded: string | undefined;
  let xfProto: string | undefined;
  let xfHost: string | undefined;
  let cookieAt = -1;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const raw = rawHeaders[i]!;
    if (raw.charCodeAt(0) === 0x3a /* ':' pseudo-header */) continue;
    const name = REQUEST_NAMES.name(i >> 1, raw);
    const value = rawHeaders[i + 1]!;
    const kind = FIELD_KIND.get(name);
    if (kind === HOP || named?.has(name)) continue;
    if (kind === undefined) {
      if (name.startsWith('x-edge-')) continue; // only the edge speaks in this namespace
      // The rest of the forwarding family, as CLIENT_ADDRESS's fields: frameworks believe its
      // port, scheme and prefix, and auth proxies assert the user in it (oauth2-proxy's
      // X-Forwarded-User, -Email, -Groups, -Access-Token; Envoy's X-Forwarded-Client-Cert).
      // Passed on only where the trusted proxy speaks this family: one that writes `Forwarded` passes
      // its client's X-Forwarded-* through as written, and they are replaced like -For/-Proto/-Host.
      if (name.startsWith('x-forwarded-')) {
        if (ctx.peerTrusted && ctx.trustedChain === 'x-forwarded-for') out.push(name, value);
        continue;
      }
      // CGI-style servers read `x_edge_org` as `x-edge-org`: an underscore spelling of a header the
      // edge owns is a spoof (nginx drops every underscored name by default for the same reason).
      if (name.includes('_') && isOwnedName(name.replace(/_/g, '-'))) continue;
      out.push(name, value);
      continue;
    }
    if (kind === CLIENT_ADDRESS_FIELD) {
      if (ctx.peerTrusted) out.push(name, value);
      continue;
    }
    if (kind === REPLACED_FIELD) {
      if (!ctx.peerTrusted) continue;
      if (ctx.trustedChain === 'forwarded') {
        if (name === 'forwarded') forwarded = forwarded === undefined ? value : `${forwarded}, ${value}`;
      } else if (name === 'x-forwarded-for') xff = xff === undefined ? value : `${xff}, ${value}`;
      else if (name === 'x-forwarded-proto') xfProto ??= value;
      else if (name === 'x-forwarded-host') xfHost ??= value;
      continue;
    }
    // W3C Trace Context: ours is set below; a client's tracestate only travels with its own valid traceparent.
    if (kind === TRACEPARENT || (kind === TRACESTATE && !ctx.trace.fromClient)) continue;
    if (kind === COOKIE) {
      // HTTP/2 clients send each cookie as a field of its own (RFC 9113 §8.2.3); HTTP/1.1 allows
      // one Cookie line, and servers read only the first or join repeats with ", ". One line, "; "-joined.
      if (cookieAt === -1) cookieAt = out.length;
      else {
        out[cookieAt + 1] = `${out[cookieAt + 1]!}; ${value}`;
        continue;
      }
    }
    out.push(name, value);
  }
  const hop = forwardedHop(ctx.peerIp, ctx.host, ctx.proto);
  // Stored one by one: a single push of all twenty went through V8's generic push builtin
  // (about 650 instructions a request, counted); stores at the end grow the array in place.
  const n = out.length;
  out[n] = 'host';
  out[n + 1] = ctx.host;
  out[n + 2] = 'x-real-ip';
  out[n + 3] = ctx.clientIp;
  out[n + 4] = 'x-forwarded-for';
  out[n + 5] = xff === undefined ? ctx.peerIp : `${xff}, ${ctx.peerIp}`;
  out[n + 6] = 'x-forwarded-proto';
  out[n + 7] = xfProto ?? ctx.proto;
  out[n + 8] = 'x-forwarded-host';
  out[n + 9] = xfHost ?? ctx.host;
  out[n + 10] = 'forwarded';
  out[n + 11] = forwarded === undefined ? hop : `${forwarded}, ${hop}`;
  out[n + 12] = 'x-request-id';
  out[n + 13] = ctx.requestId;
  out[n + 14] = 'traceparent';
  out[n + 15] = ctx.trace.traceparent;
  out[n + 16] = 'x-edge-fn';
  out[n + 17] = ctx.fn;
  out[n + 18] = 'x-edge-org';
  out[n + 19] = ctx.org;
  return out;
}

function isOwnedName(name: string): boolean {
  return name.startsWith('x-edge-') || name.startsWith('x-forwarded-') || REPLACED.has(name) || CLIENT_ADDRESS.has(name) || HOP_BY_HOP.has(name);
}

/**
 * Response headers from the region as undici read them, raw [name, value, …] with names in the
 * region's case, minus hop-by-hop and `Connection`-named ones (which would also be illegal on
 * HTTP/2), the edge's own `x-edge-*` and `X-Request-Id` (the router's). Returns Node's flat [name, value, …] form for `writeHead`, names lower-cased (HTTP/2
 * requires it; HTTP/1 names are case-insensitive) and repeats kept as separate pairs.
 *
 * A 204's Content-Length is left out too: a server must not send one (RFC 9110 §8.6), and nghttp2
 * (curl, Node's client) resets a 204 stream stating any length but 0 with PROTOCOL_ERROR, so an
 * HTTP/2 client got nothing of a careless function's 204. (A 304's is allowed: it is the 200's.)
 */
export function downstreamResponseHeaders(raw: readonly (Buffer | string)[], status = 200): string[] {
  // A 205 the same (RFC 9110 §15.3.6: no content), which node:http2 ends with its head as a 204.
  const noContent = status === 204 || status === 205;
  const out: string[] = [];
  let named: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    // undici's own name lookup (public: `util.headerNameToString`) finds a well-known name in the
    // bytes, case-insensitively, and gives back one constant lower-case string: no Buffer-to-string
    // call (about 600 instructions each), no lower-casing, and a set lookup by an already-hashed
    // string. Any other name is read as latin1 and lower-cased, as before. Bytes equal to the last
    // answer's at the same place skip even that (answerName).
    const name = answerName(raw, i);
    if (HOP_BY_HOP.has(name)) {
      if (name === 'connection') named = namedByConnection(raw[i + 1]!, named);
      continue;
    }
    // The edge's namespace, as on requests: a function cannot pass itself off as the router's
    // verdict (x-edge-region). Except the orchestrator's word on the container that answered (cold
    // or warm): a function forging it misdescribes only itself, and the simulation counts cold
    // starts by it (dropped, it read none from 2026-12-03 until this was seen).
    if (name.startsWith('x-edge-') && name !== CONTAINER_FIELD) continue;
    // The request id is the router's to give (every caller adds it after these fields): the one it
    // logged and sent the region. A framework's echo of it made two (over HTTP/2 joined into
    // "id, id"), and a function's own came first, where a client reading one value read it.
    if (name === REQUEST_ID) continue;
    if (noContent && name === 'content-length') continue;
    if (name === SERVER_TIMING) {
      // The edge's `route` and `upstream` metrics follow; a function's entries of those names go.
      const kept = withoutEdgeMetrics(answerValue(raw, i + 1));
      if (kept !== undefined) out.push(name, kept);
      continue;
    }
    out.push(name, answerValue(raw, i + 1));
  }
  if (named === undefined) return out;
  const kept: string[] = [];
  for (let i = 0; i < out.length; i += 2) if (!named.has(out[i]!)) kept.push(out[i]!, out[i + 1]!);
  return kept;
}

/**
 * The transfer coding of a region's answer that is not chunked (`gzip, chunked`, say), or
 * undefined. Transfer codings are hop-by-hop (RFC 9112 §6.1): undici takes chunked off and hands
 * over the rest still coded, and `Transfer-Encoding` is not passed on, so such bytes would reach
 * the client as the content itself (nginx answers these 502, "upstream sent unknown
 * Transfer-Encoding"). A name length test first: almost every answer has no such field.
 */
export function foreignTransferCoding(raw: readonly (Buffer | string)[]): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length !== 17 || answerName(raw, i) !== 'transfer-encoding') continue;
    // Plain `chunked`, what every streamed answer says, is read in the bytes: making a string of
    // it, splitting, trimming and lower-casing cost about 3,500 instructions a response (counted).
    if (caseInsensitiveIs(raw[i + 1]!, 'chunked')) continue;
    const value = latin1(raw[i + 1]!);
    for (const coding of value.split(',')) if (coding.trim().toLowerCase() !== 'chunked') return value;
  }
  return undefined;
}

/**
 * Fields a trailer section must not carry, or that nothing reads there (RFC 9110 §6.5.1): framing,
 * routing, authentication, response control and content format are decided before the body, so a
 * late copy would contradict the head the client already acted on. HTTP/2 also refuses several.
 */
const NOT_IN_TRAILERS = new Set([
  'content-length',
  'content-type',
  'content-encoding',
  'content-range',
  'host',
  'authorization',
  'www-authenticate',
  'set-cookie',
  'cache-control',
  'expires',
  'age',
  'date',
  'location',
  'retry-after',
  'vary',
  'strict-transport-security',
]);

/**
 * A region's trailer fields (undici's raw [name, value, …]) as the client may get them: hop-by-hop
 * ones, those `NOT_IN_TRAILERS` names and the edge's `x-edge-*` namespace left out, a repeated name
 * joined with ", ". Undefined when none is left.
 */
export function downstreamTrailers(raw: readonly (Buffer | string)[]): Record<string, string> | undefined {
  let out: Record<string, string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = headerNameToString(raw[i]!);
    if (HOP_BY_HOP.has(name) || NOT_IN_TRAILERS.has(name) || name.startsWith('x-edge-') || name.startsWith(':')) continue;
    const value = name === SERVER_TIMING ? withoutEdgeMetrics(latin1(raw[i + 1]!)) : latin1(raw[i + 1]!);
    if (value === undefined) continue;
    out ??= Object.create(null) as Record<string, string>;
    out[name] = out[name] === undefined ? value : `${out[name]}, ${value}`;
  }
  return out;
}

/**
 * Whether a header value (undici's bytes, or a string) is `lower`, a lower-case ASCII token, in any
 * case and exactly (no whitespace around it): no string is made of the bytes.
 */
export function caseInsensitiveIs(value: Buffer | string, lower: string): boolean {
  if (value.length !== lower.length) return false;
  if (typeof value === 'string') return value.toLowerCase() === lower;
  for (let i = 0; i < lower.length; i++) {
    const want = lower.charCodeAt(i);
    const byte = value[i]!;
    // An upper-case letter matches its lower-case one; any other byte only itself.
    if (byte !== want && !(want >= 0x61 && want <= 0x7a && byte === want - 0x20)) return false;
  }
  return true;
}

/** Header bytes as undici reads them: each byte one character (RFC 9110 §5.5's obs-text included). */
const latin1 = (value: Buffer | string): string => (typeof value === 'string' ? value : value.toString('latin1'));

/**
 * Adds the names a `Connection` header lists (comma-separated, case-insensitive) that are not
 * hop-by-hop already (those go anyway). Most peers send just `keep-alive`: no set for it, and (a
 * region's value, undici's bytes) no string made of it either.
 */
function namedByConnection(value: Buffer | string, into: Set<string> | undefined): Set<string> | undefined {
  if (caseInsensitiveIs(value, 'keep-alive')) return into;
  const text = latin1(value);
  if (text.length <= 10 && HOP_BY_HOP.has(text.toLowerCase())) return into;
  let named = into;
  for (const t of text.split(',')) {
    const token = t.trim().toLowerCase();
    if (token !== '' && !HOP_BY_HOP.has(token)) (named ??= new Set()).add(token);
  }
  return named;
}
