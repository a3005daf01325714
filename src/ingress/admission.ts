/**
 * The phases every public request passes before anything is forwarded — plain requests and
 * WebSocket upgrades alike: target framing → SNI agreement → client address → route decision.
 * Returns either a decision or the error to answer with; does no I/O.
 */
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { Http2StreamRequest } from './http2-stream-pair.js';
import type { TLSSocket } from 'node:tls';
import type { RegistrySnapshot } from '../core/types.js';
import { acceptableRequestId } from '../proxy/headers.js';
import { clientAddress, type ClientAddressHeader, type TrustTest } from '../routing/client-address.js';
import { normalizeHost } from '../routing/hostname.js';
import type { RouteDecider, RouteDecision } from '../routing/route-decider.js';
import { edgeCodeForRoute, type EdgeErrorCode } from './error-response.js';
import { requestTarget, type TargetResult } from './request-target.js';
import { isReservedPath, RESERVED_PREFIX } from '../core/protocol.js';
import { peerOfSocket } from './proxy-protocol/listener.js';
import { isIP, type Socket } from 'node:net';
import { clientTraceContext, newIdentity, randomHex, traceContextOf, type TraceContext } from '../observability/trace-context.js';

/** HTTP/1 (node:http), HTTP/2 through the stream API (the public listener), or HTTP/2's compatibility layer (kept for other servers). */
export type AnyRequest = IncomingMessage | Http2StreamRequest | Http2ServerRequest;

export interface AdmissionDeps {
  readonly decider: RouteDecider;
  readonly snapshot: () => RegistrySnapshot;
  readonly trust: TrustTest;
  /** The one forwarding header trusted proxies' chain is read from (and extended, upstream). */
  readonly clientAddressHeader: ClientAddressHeader;
  /**
   * --max-header-size, judged here for HTTP/2 requests as HTTP/1's parser judges its heads (the
   * HTTP/2 listener takes more: http2HeaderListSize); undefined: not judged here.
   */
  readonly maxHeaderBytes?: number;
}

interface Common {
  readonly requestId: string;
  readonly trace: TraceContext;
  readonly peer: string;
  readonly startedAt: number;
}

export type Admission =
  | (Common & {
      readonly ok: true;
      readonly host: string;
      readonly path: string;
      readonly clientIp: string;
      readonly peerTrusted: boolean;
      readonly decision: Extract<RouteDecision, { ok: true }>;
      readonly routeMs: number;
    })
  | (Common & {
      readonly ok: false;
      readonly code: EdgeErrorCode;
      readonly message: string;
      readonly host: string;
      readonly clientIp: string;
      /** The normalised name the host resolved to when it named a function (refused all the same: not found, no region, …); its owner decides HSTS there. */
      readonly routedHost?: string;
      /** Overrides the default Retry-After of a 503 (deadline admission knows when to come back). */
      readonly retryAfterS?: number;
    });

/**
 * Header fields a request may carry, counted as its sender meant them (headerFieldCount): Node's
 * HTTP/1 parser keeps 2,000 fields and silently drops the rest (a second Host among them), and the
 * fields the router adds come after the client's: past a Node orchestrator's same 2,000,
 * x-edge-fn, x-edge-org and X-Forwarded-For were lost there (seen in review). Envoy refuses past
 * 100, HAProxy past 101.
 */
export const MAX_HEADER_FIELDS = 128;

/** Pseudo-headers an HTTP/2 request may carry: :method, :scheme, :authority, :path, :protocol. */
const HTTP2_PSEUDO_HEADERS = 5;

/**
 * Cookies a browser keeps for one host at most (Chrome's and Firefox's limit, 180), each of which
 * its HTTP/2 sends as a field of its own (RFC 9113 §8.2.3 cookie crumbs).
 */
const MAX_COOKIE_CRUMBS = 180;

/**
 * node:http2's `maxHeaderListPairs` for the public listener: the pairs of a header block it takes
 * before it resets the stream (ENHANCE_YOUR_CALM, no answer, no access line). Node counts the
 * pseudo-headers and each cookie crumb; its default, 128, refused a browser holding 125 cookies
 * for a host over HTTP/2 while HTTP/1, one Cookie line, served it. Room for those, and
 * MAX_HEADER_FIELDS is then judged here, with a 431, on both protocols. The header block's bytes
 * are judged here too, as HTTP/1 counts them (http1HeadBytes against --max-header-size).
 */
export const HTTP2_MAX_HEADER_LIST_PAIRS = MAX_HEADER_FIELDS + HTTP2_PSEUDO_HEADERS + MAX_COOKIE_CRUMBS;

/**
 * What HTTP/2's header list size counts per field beyond its name and value (RFC 9113 §6.5.2: 32
 * bytes), and the name `cookie` each crumb repeats where HTTP/1 sends one Cookie line.
 */
const HTTP2_FIELD_OVERHEAD = 32 + 'cookie'.length;

/**
 * SETTINGS_MAX_HEADER_LIST_SIZE for the public HTTP/2 listener: `maxHeaderBytes` (--max-header-size,
 * as HTTP/1 counts a head) plus what HTTP/2 counts on top for as many fields as it takes. Set to
 * `maxHeaderBytes` itself, a browser's 160 cookies (10.8 KB over HTTP/1, served) counted 17 KB over
 * HTTP/2, and Node reset the stream before any handler saw it: no answer, no access line (found by
 * review). Admission judges the head as HTTP/1 counts it (http1HeadBytes) and answers 431.
 */
export function http2HeaderListSize(maxHeaderBytes: number): number {
  return Math.min(2 ** 32 - 1, maxHeaderBytes + HTTP2_MAX_HEADER_LIST_PAIRS * HTTP2_FIELD_OVERHEAD);
}

/**
 * An HTTP/2 request's head as Node's HTTP/1 parser counts one against --max-header-size: the
 * target, and each field's name and value (`:authority` as Host; cookie crumbs as one Cookie line,
 * joined by "; "; the other pseudo-headers are the request line, which it does not count).
 */
export function http1HeadBytes(rawHeaders: readonly string[]): number {
  let bytes = 0;
  let cookie = false;
  let authority = false;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const value = rawHeaders[i + 1]!.length;
    if (name.charCodeAt(0) === 0x3a /* ':' */) {
      if (name === ':path') bytes += value;
      else if (name === ':authority') {
        bytes += 4 + value;
        authority = true;
      }
      continue;
    }
    if (name.length === 6 && name.toLowerCase() === 'cookie') {
      bytes += cookie ? value + 2 : 6 + value;
      cookie = true;
      continue;
    }
    // A host beside :authority names the same site (request-target.ts): HTTP/1 sends one Host line.
    // (Pseudo-headers come first in a header block: :authority is seen before it.)
    if (authority && name.length === 4 && name.toLowerCase() === 'host') continue;
    bytes += name.length + value;
  }
  return bytes;
}

/**
 * The header fields in Node's flat `rawHeaders` as the client meant them: an HTTP/2 request's
 * pseudo-headers are its request line, and its cookie crumbs (or an HTTP/1 request's several
 * Cookie lines) one Cookie field, as forwarded (headers.ts joins them).
 */
export function headerFieldCount(rawHeaders: readonly string[]): number {
  let fields = 0;
  let cookie = false;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.charCodeAt(0) === 0x3a /* ':' */) continue;
    if (name.length === 6 && name.toLowerCase() === 'cookie') {
      if (cookie) continue;
      cookie = true;
    }
    fields++;
  }
  return fields;
}

/**
 * RFC 9110 §9.3.6: CONNECT asks for a TCP tunnel, which nothing here makes (WebSockets come as an
 * Upgrade, or an extended CONNECT over HTTP/2). Answered 405 on both protocols: an HTTP/1 one by
 * public-servers.ts (Node hands it over as a 'connect' event, never as a request), an HTTP/2 one
 * here, with the same body and an access line (it was a bare 405, unlogged).
 */
export const CONNECT_MESSAGE = 'CONNECT is not served: this router tunnels no TCP';

/** Digits of a request id the router makes: 128 random bits in hex, as nginx's `$request_id`. */
const REQUEST_ID_DIGITS = 32;

/** The client's `X-Request-Id` when it is acceptable, else undefined. */
function clientRequestId(req: AnyRequest): string | undefined {
  const incomingId = req.headers['x-request-id'];
  return typeof incomingId === 'string' && acceptableRequestId(incomingId) ? incomingId : undefined;
}

/**
 * The request's id and trace: the client's `X-Request-Id` when acceptable, else a new one; the
 * client's trace when its `traceparent` is valid, else a new one. New ones are drawn together,
 * slices of one text (trace-context.ts `IdentityPool`: a UUID and a trace drawn apart cost about
 * 3,300 instructions per request; together about 1,000; as slices of a text laid out for them,
 * with no traceparent to flatten in undici's check, less again).
 */
export function requestIdentity(req: AnyRequest): { readonly requestId: string; readonly trace: TraceContext } {
  const clientId = clientRequestId(req);
  if (clientId !== undefined) return { requestId: clientId, trace: traceContextOf(req.headers.traceparent) };
  const fresh = newIdentity();
  const clientTrace = clientTraceContext(req.headers.traceparent);
  return clientTrace === null ? fresh : { requestId: fresh.requestId, trace: clientTrace };
}

/** The client's `X-Request-Id` when it is acceptable, else a new one (no trace drawn). */
export function requestIdOf(req: AnyRequest): string {
  return clientRequestId(req) ?? randomHex(REQUEST_ID_DIGITS / 2);
}

/**
 * The normalised name `req`'s host resolves to when it names a function, else undefined: for an
 * answer made outside admission (a fault's), which follows the name's owner as admission's do.
 * Resolves again: only the rare answer pays for it.
 */
export function routedHostOf(req: AnyRequest, deps: Pick<AdmissionDeps, 'decider' | 'snapshot'>): string | undefined {
  const target = targetOf(req);
  if (!target.ok) return undefined;
  const resolved = deps.decider.resolveHost(target.host, deps.snapshot());
  return resolved.ok ? resolved.host : undefined;
}

/** The connection's peer; behind an L4 balancer speaking PROXY protocol, the source it announced. */
export function peerOf(req: AnyRequest): string {
  // An HTTP/2 stream knows its connection's peer already (see http2-stream-pair.ts: its socket may be gone).
  return (req as Partial<Http2StreamRequest>).peer ?? peerOfSocket(req.socket as Socket);
}


/** The host and path `req` names (request-target.ts). */
function targetOf(req: AnyRequest): TargetResult {
  return requestTarget({ httpVersionMajor: req.httpVersionMajor, httpVersionMinor: req.httpVersionMinor, url: req.url ?? '', rawHeaders: req.rawHeaders, authority: req.headers[':authority'] as string | undefined });
}

/** Who the client of `req` from `peer` is: its forwarding header counts, and only from a trusted proxy. */
export function clientOf(req: AnyRequest, peer: string, deps: Pick<AdmissionDeps, 'clientAddressHeader' | 'trust'>): ReturnType<typeof clientAddress> {
  const chain = req.headers[deps.clientAddressHeader];
  return clientAddress(peer, typeof chain === 'string' ? chain : undefined, deps.clientAddressHeader, deps.trust);
}

export function admitRequest(req: AnyRequest, deps: AdmissionDeps): Admission {
  const startedAt = performance.now();
  const { requestId, trace } = requestIdentity(req);
  const peer = peerOf(req);
  // Who is the client? The chosen forwarding header counts, and only from trusted proxies. Read
  // first: a request refused below is logged with its client, not the proxy it came through.
  const client = clientOf(req, peer, deps);

  // Counted only when the list is long enough to be over: the common request costs no loop.
  if (req.rawHeaders.length > 2 * MAX_HEADER_FIELDS && headerFieldCount(req.rawHeaders) > MAX_HEADER_FIELDS) {
    return { requestId, trace, peer, startedAt, ok: false, code: 'headers_too_large', message: `a request may carry at most ${MAX_HEADER_FIELDS} header fields`, host: '', clientIp: client.ip };
  }

  // Node's HTTP/1 parser refuses a head whose count reaches the limit: the same bound here.
  if (req.httpVersionMajor >= 2 && deps.maxHeaderBytes !== undefined && http1HeadBytes(req.rawHeaders) >= deps.maxHeaderBytes) {
    return { requestId, trace, peer, startedAt, ok: false, code: 'headers_too_large', message: 'the request head is too large', host: '', clientIp: client.ip };
  }

  // An extended CONNECT (RFC 8441, a `:protocol`) is a WebSocket's, admitted like any request.
  if (req.method === 'CONNECT' && req.headers[':protocol'] === undefined) return { requestId, trace, peer, startedAt, ok: false, code: 'method_not_allowed', message: CONNECT_MESSAGE, host: '', clientIp: client.ip };

  // Phase 1: what does the request name?
  const target = targetOf(req);
  if (!target.ok) return { requestId, trace, peer, startedAt, ok: false, code: 'bad_request', message: target.message, host: '', clientIp: client.ip };
  // RFC 9110 §10.1.1: an expectation the server cannot meet is answered 417. 100-continue is met
  // (its 100 goes out as the body is read); Node's own 417 (HTTP/1) and the stream handler's
  // (HTTP/2) came before this handler, with no access line and no count.
  const expectation = req.headers.expect;
  if (expectation !== undefined && expectation.toLowerCase() !== '100-continue') {
    return { requestId, trace, peer, startedAt, ok: false, code: 'expectation_failed', message: 'the only expectation met is 100-continue', host: target.host, clientIp: client.ip };
  }
  // Node's parser decodes chunked and passes any other coding through as body bytes: `gzip, chunked`
  // would reach the region still gzipped, with nothing saying so (the header is hop-by-hop). RFC
  // 9112 §6.1: a coding the server does not understand is answered 501 (as nginx does), and a
  // request whose last coding is not chunked has no length at all: 400. Either way the connection
  // closes after the answer (edge-handler), its body's end being unknown.
  const coding = req.headers['transfer-encoding'];
  if (coding !== undefined && coding.toLowerCase() !== 'chunked') {
    return /(^|,)\s*chunked\s*$/i.test(coding)
      ? { requestId, trace, peer, startedAt, ok: false, code: 'transfer_coding_unsupported', message: 'only the chunked transfer coding is accepted', host: target.host, clientIp: client.ip }
      : { requestId, trace, peer, startedAt, ok: false, code: 'bad_request', message: 'a request body with a transfer coding must be chunked last', host: target.host, clientIp: client.ip };
  }
  // The router ↔ orchestrator protocol lives under /_edge/ (pre-warming): never forwarded from the public.
  if (isReservedPath(target.path)) {
    return { requestId, trace, peer, startedAt, ok: false, code: 'not_found', message: `paths under ${RESERVED_PREFIX} are reserved for the platform`, host: target.host, clientIp: client.ip };
  }

  // Phase 2: a TLS connection carries only the host its SNI named (RFC 9110 §15.5.20: 421 tells
  // the client to open a new connection). Strict on purpose: it also refuses HTTP/2 connection
  // coalescing across names, which costs a client one extra handshake and no correctness.
  // An IP literal is not a valid SNI (RFC 6066 §3) — some clients send one anyway — so it is ignored.
  const servername = (req as Partial<Http2StreamRequest>).servername ?? (req.socket as TLSSocket).servername;
  // The same text needs no normalising to agree (the usual case: a client sends what it named in SNI).
  if (typeof servername === 'string' && servername !== '' && servername !== target.host && isIP(servername) === 0 && normalizeHost(servername) !== normalizeHost(target.host)) {
    return { requestId, trace, peer, startedAt, ok: false, code: 'misdirected_request', message: 'this connection was opened for another host name', host: target.host, clientIp: client.ip };
  }

  // Phase 3: which function, which regions?
  const decision = deps.decider.decide(target.host, client.ip, deps.snapshot(), Date.now());
  if (!decision.ok) {
    const refused = { requestId, trace, peer, startedAt, ok: false as const, code: edgeCodeForRoute(decision.code), message: decision.message, host: target.host, clientIp: client.ip, routedHost: decision.host };
    return decision.retryAfterS === undefined ? refused : { ...refused, retryAfterS: decision.retryAfterS };
  }
  return {
    requestId,
    trace,
    peer,
    startedAt,
    ok: true,
    host: target.host,
    path: target.path,
    clientIp: client.ip,
    peerTrusted: client.source !== 'peer' || deps.trust(peer),
    decision,
    routeMs: performance.now() - startedAt,
  };
}
