/**
 * The access log line, written by hand: one JSON object per request in pino's shape
 * (level 30, time, pid, log: "access"), without building an intermediate object or walking keys.
 * Per-request logging is on the hot path; this costs a fraction of a generic serializer.
 * Only chosen fields are logged — never headers, cookies or query strings.
 */
import type { RequestOutcome } from '../core/types.js';
import { millisecondsText3 as ms } from '../core/duration-text.js';

/** What the request path knows before forwarding. */
export interface AccessContext {
  readonly requestId: string;
  /** W3C trace id (32 hex), the client's or the one the router started; null when unknown. */
  readonly traceId: string | null;
  readonly method: string;
  readonly host: string;
  readonly path: string;
  readonly protocol: string;
  readonly fn: string | null;
  readonly org: string | null;
  readonly clientIp: string;
  readonly country: string | null;
  readonly reason: string | null;
  readonly routeMs: number;
}

/** What it knows when the request is over. */
export type AccessOutcome = RequestOutcome;

/** One parsed access log line (what tests and log pipelines read). */
export type AccessRecord = AccessContext & AccessOutcome & { readonly attempts: number };

/** What JSON cannot hold as it is (quote, backslash, controls) or must check (surrogate halves, lone ones escaped). */
// eslint-disable-next-line no-control-regex -- control characters are exactly what must be escaped
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
/**
 * A string's JSON form inside quotes the line already has: the string itself in the common case
 * (ids, methods, hosts and paths are plain), JSON.stringify's escaping otherwise. Skipping the
 * stringify call and the two quote concatenations took a third off the line's cost.
 */
const inner = (value: string): string => (NEEDS_ESCAPE.test(value) ? JSON.stringify(value).slice(1, -1) : value);
const str = (value: string | null): string => (value === null ? 'null' : NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`);

/**
 * One field's last value that needed no escaping. Most fields repeat from line to line on a busy
 * router (the same method, host, function, region, client…), and comparing with the last plain
 * value (the same string: one pointer comparison; an equal copy: a length and memory comparison)
 * costs a fraction of scanning it again: about 250 instructions a field saved on each repeat.
 * Ids, new on every line, go straight to the scan.
 */
class PlainField {
  private last = '';

  inner(value: string): string {
    if (value === this.last) return value;
    if (NEEDS_ESCAPE.test(value)) return JSON.stringify(value).slice(1, -1);
    this.last = value;
    return value;
  }

  str(value: string | null): string {
    if (value === null) return 'null';
    if (value !== this.last) {
      if (NEEDS_ESCAPE.test(value)) return JSON.stringify(value);
      this.last = value;
    }
    return `"${value}"`;
  }
}
const METHOD = new PlainField();
const HOST = new PlainField();
const PATH = new PlainField();
const PROTOCOL = new PlainField();
const FN = new PlainField();
const ORG = new PlainField();
const CLIENT_IP = new PlainField();
const COUNTRY = new PlainField();
const REGION = new PlainField();
const REASON = new PlainField();
const ERROR = new PlainField();
const TRIED = new PlainField();
/**
 * The line's opening up to the request id, which changes once a millisecond: a busy router writes
 * tens of lines per millisecond, and an epoch-millisecond count is past the small-integer range,
 * so turning it into text afresh each time was one of the line's dearer parts.
 */
let headTime = -1;
let headPid = -1;
let head = '';
function lineHead(nowMs: number, pid: number): string {
  if (nowMs !== headTime || pid !== headPid) {
    headTime = nowMs;
    headPid = pid;
    head = `{"level":30,"time":${nowMs},"pid":${pid},"log":"access","requestId":"`;
  }
  return head;
}

export function formatAccessLine(ctx: AccessContext, out: AccessOutcome, nowMs: number, pid: number): string {
  let tried = '';
  for (let i = 0; i < out.tried.length; i++) tried += (i === 0 ? '"' : ',"') + TRIED.inner(out.tried[i]!) + '"';
  return (
    `${lineHead(nowMs, pid)}${inner(ctx.requestId)}","traceId":${str(ctx.traceId)},"method":"${METHOD.inner(ctx.method)}"` +
    `,"host":"${HOST.inner(ctx.host)}","path":"${PATH.inner(ctx.path)}","protocol":"${PROTOCOL.inner(ctx.protocol)}","fn":${FN.str(ctx.fn)},"org":${ORG.str(ctx.org)}` +
    `,"clientIp":"${CLIENT_IP.inner(ctx.clientIp)}","country":${COUNTRY.str(ctx.country)},"region":${REGION.str(out.region)},"reason":${REASON.str(out.route ?? ctx.reason)}` +
    `,"attempts":${out.tried.length},"tried":[${tried}],"status":${out.status},"error":${ERROR.str(out.error)}` +
    `,"bytesIn":${out.bytesIn},"bytesOut":${out.bytesOut},"routeMs":${ms(ctx.routeMs)},"upstreamMs":${ms(out.upstreamMs)},"totalMs":${ms(out.totalMs)}` +
    // Only on a hedged request: where the hedge went (it won when that is also "region").
    (out.hedgedTo === undefined || out.hedgedTo === null ? '}\n' : `,"hedgedTo":${REGION.str(out.hedgedTo)}}\n`)
  );
}
