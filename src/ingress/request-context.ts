/**
 * The access-log context of a request, built once from its admission: the same for a request
 * forwarded through an Exchange and for a WebSocket upgrade, so both give one access-log line and
 * the same metrics. A request refused before it had a route gets the same shape, with no route.
 */
import type { AccessContext, AccessOutcome } from '../observability/access-log.js';
import { validTraceparent } from '../observability/trace-context.js';
import { clientOf, peerOf, requestIdOf, type Admission, type AdmissionDeps, type AnyRequest } from './admission.js';

/**
 * "HTTP/1.1" and the like: one constant string per version rather than one built per request (Node
 * builds `httpVersion` afresh for every HTTP/1 request), which the access log then recognises
 * without scanning it.
 */
export function protocolOf(req: Pick<AnyRequest, 'httpVersionMajor' | 'httpVersionMinor' | 'httpVersion'>): string {
  if (req.httpVersionMajor === 1) {
    if (req.httpVersionMinor === 1) return 'HTTP/1.1';
    if (req.httpVersionMinor === 0) return 'HTTP/1.0';
  } else if (req.httpVersionMajor === 2 && req.httpVersionMinor === 0) return 'HTTP/2.0';
  return `HTTP/${req.httpVersion}`;
}

export function pathWithoutQuery(path: string): string {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}

/** A target with a scheme and an authority (absolute-form), in any case: `http://`, `HTTPS://`. */
const ABSOLUTE_FORM = /^[a-z][a-z0-9+.-]*:\/\//i;

/**
 * The path an access line shows of a target nobody routed (its request reset or cut before it was
 * looked at, or a fault): the target as the client sent it, so an absolute-form one
 * (`http://user:secret@host/x`) would have put the client's credentials in the log. Its scheme and
 * authority are left out (the host has its own field), and the query, as for every request.
 */
export function unroutedPathOf(target: string): string {
  const absolute = ABSOLUTE_FORM.exec(target);
  if (absolute === null) return pathWithoutQuery(target);
  const rest = target.slice(absolute[0].length);
  // A password may hold a `/` a raw client did not encode (`http://u:pa/ss@host/x`): with an `@`
  // anywhere before the query, where the authority ends is not to be trusted, and only `/` is logged.
  const query = rest.indexOf('?');
  if ((query === -1 ? rest : rest.slice(0, query)).includes('@')) return '/';
  const end = rest.search(/[/?]/);
  if (end === -1 || rest.charCodeAt(end) === 0x3f /* ? */) return '/';
  return pathWithoutQuery(rest.slice(end));
}

/** The context of an admitted request (it has a route). */
export function routedContext(req: AnyRequest, admission: Extract<Admission, { ok: true }>): AccessContext {
  const { decision } = admission;
  return {
    requestId: admission.requestId,
    traceId: admission.trace.traceId,
    method: req.method ?? 'GET',
    host: admission.host,
    path: pathWithoutQuery(admission.path),
    protocol: protocolOf(req),
    fn: decision.fn,
    org: decision.org,
    clientIp: admission.clientIp,
    country: decision.client.country,
    reason: decision.reason,
    routeMs: admission.routeMs,
  };
}

/** The context of a request answered (or abandoned) before it had a route. */
export function unroutedContext(req: AnyRequest, facts: { requestId: string; traceId: string | null; host: string; clientIp: string; path?: string }): AccessContext {
  return {
    requestId: facts.requestId,
    traceId: facts.traceId,
    method: req.method ?? 'GET',
    host: facts.host,
    path: facts.path ?? '',
    protocol: protocolOf(req),
    fn: null,
    org: null,
    clientIp: facts.clientIp,
    country: null,
    reason: null,
    routeMs: 0,
  };
}

/**
 * The access line of an HTTP/2 stream its client reset before it was looked at (rapid reset): no
 * route, no upstream work, logged as nginx logs a client that left (under the client a trusted
 * proxy names, as admission has it). Its trace is the client's when
 * it sent a valid one; none is made up for a request nobody served. `byRouter`: the router closed
 * the connection before the request's turn (an HTTP/1.1 upgrade pipelined behind the drain's last
 * answer), logged 0 `router_closed` as such requests are.
 */
export function goneBeforeHandled(req: AnyRequest, deps: Pick<AdmissionDeps, 'clientAddressHeader' | 'trust'>, byRouter = false): { context: AccessContext; outcome: AccessOutcome } {
  // An HTTP/1.1 upgrade, or an HTTP/2 request that sent a Host and no :authority, names its host
  // in Host: read only from :authority, their lines had none.
  const authority = req.headers[':authority'] ?? req.headers.host;
  const traceparent = req.headers.traceparent;
  const traceId = validTraceparent(typeof traceparent === 'string' ? traceparent : undefined)?.traceId ?? null;
  const context = unroutedContext(req, { requestId: requestIdOf(req), traceId, host: typeof authority === 'string' ? authority : '', clientIp: clientOf(req, peerOf(req), deps).ip, path: unroutedPathOf(req.url ?? '') });
  return { context, outcome: { region: null, tried: [], status: byRouter ? 0 : 499, error: byRouter ? 'router_closed' : 'client_closed', bytesIn: 0, bytesOut: 0, upstreamMs: 0, totalMs: 0 } };
}

/**
 * The access line of a request Node's HTTP/1 parser refused (bad bytes, a head too large, a head or
 * request that did not arrive in time): nothing of it was trusted, so its method, host and path are
 * unknown ('', as for a request refused before its target was read) and its id is the '-' its
 * answer carried. `status` is what went out (0: the connection was cut without an answer).
 */
export function refusedByParser(clientIp: string, status: number, error: string): { context: AccessContext; outcome: AccessOutcome } {
  return {
    context: { requestId: '-', traceId: null, method: '', host: '', path: '', protocol: 'HTTP/1.1', fn: null, org: null, clientIp, country: null, reason: null, routeMs: 0 },
    outcome: { region: null, tried: [], status, error, bytesIn: 0, bytesOut: 0, upstreamMs: 0, totalMs: 0 },
  };
}
