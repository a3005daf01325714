/**
 * The access log line, written by hand: one JSON object per request in pino's shape
 * (level 30, time, pid, log: "access"), without building an intermediate object or walking keys.
 * Per-request logging is on the hot path; this costs a fraction of a generic serializer.
 * Only chosen fields are logged — never headers, cookies or query strings.
 */
import type { RequestOutcome } from '../core/types.js';

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
/** "000" … "999": the fractional digits of a duration in milliseconds. */
const THOUSANDTHS = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
/** Beyond this many microseconds (about 35 minutes) the integer arithmetic below would overflow. */
const MAX_FAST_US = 0x7fffffff;
/**
 * A duration in milliseconds with three decimals ("2.000" for 2; JSON reads both alike). Whole
 * microseconds split into integer text (cached by V8 for small numbers) and a table entry: a
 * quarter of the cost of turning the fractional number into text, which every line did three times.
 */
const ms = (value: number): string => {
  const us = Math.round(value * 1000);
  if (!(us >= 0 && us <= MAX_FAST_US)) return String(us / 1000); // negative, NaN or huge: never on a normal request
  const whole = (us / 1000) | 0;
  return `${whole}.${THOUSANDTHS[us - whole * 1000]!}`;
};

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
  for (let i = 0; i < out.tried.length; i++) tried += (i === 0 ? '"' : ',"') + inner(out.tried[i]!) + '"';
  return (
    `${lineHead(nowMs, pid)}${inner(ctx.requestId)}","traceId":${str(ctx.traceId)},"method":"${inner(ctx.method)}"` +
    `,"host":"${inner(ctx.host)}","path":"${inner(ctx.path)}","protocol":"${inner(ctx.protocol)}","fn":${str(ctx.fn)},"org":${str(ctx.org)}` +
    `,"clientIp":"${inner(ctx.clientIp)}","country":${str(ctx.country)},"region":${str(out.region)},"reason":${str(out.route ?? ctx.reason)}` +
    `,"attempts":${out.tried.length},"tried":[${tried}],"status":${out.status},"error":${str(out.error)}` +
    `,"bytesIn":${out.bytesIn},"bytesOut":${out.bytesOut},"routeMs":${ms(ctx.routeMs)},"upstreamMs":${ms(out.upstreamMs)},"totalMs":${ms(out.totalMs)}` +
    // Only on a hedged request: where the hedge went (it won when that is also "region").
    (out.hedgedTo === undefined || out.hedgedTo === null ? '}\n' : `,"hedgedTo":${str(out.hedgedTo)}}\n`)
  );
}
