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
export type AccessRecord = AccessContext &
  AccessOutcome & {
    readonly attempts: number;
    /** Only when the client's value was longer than the line carries (it ends in '…' there): its length in characters. */
    readonly hostLength?: number;
    readonly pathLength?: number;
    readonly methodLength?: number;
  };

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
 * The most characters of a client's Host, path and method a line carries. Each is as long as the
 * client makes it (up to --max-header-size, 16 KiB by default, and two bytes in the log for each
 * Latin-1 character Node reads), and a line past PIPE_BUF (4 KiB) is no longer one atomic write to
 * the stdout pipe cluster workers share: another worker's lines could land inside it. Docker and
 * the kubelet also cut a line past 16 KiB in two. A valid host with its port is at most 259
 * characters; at these bounds a line stays under 4 KiB whatever a client sends.
 */
export const MAX_LOGGED_HOST = 260;
export const MAX_LOGGED_PATH = 1_024;
export const MAX_LOGGED_METHOD = 32;
const ELLIPSIS = '\u2026';

/** `value` cut to `max` characters, ending in an ellipsis (a surrogate pair is never split). */
export function clipped(value: string, max: number): string {
  let end = max - 1;
  const last = value.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--; // a high surrogate whose low half would be cut off
  return value.slice(0, end) + ELLIPSIS;
}

/** `,"<name>Length":<n>` after a line's fields when the client's value was longer than logged. */
function lengthNote(name: string, value: string, max: number): string {
  return value.length > max ? `,"${name}Length":${value.length}` : '';
}

/** "000" … "999" */
const THOUSANDTHS = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
let secondsAt = -1;
let secondsText = '';
/**
 * An epoch-millisecond time as `String(nowMs)` writes it. The count is past the small-integer
 * range, and V8 turns such a number into text through its runtime (about 600 instructions, twice
 * as the line was built before); the seconds' text changes once a second and the milliseconds
 * come from a table.
 */
export function epochMsText(nowMs: number): string {
  const seconds = Math.floor(nowMs / 1000);
  const ms = nowMs - seconds * 1000;
  // Not a whole count of ms from one second on, or past the exact integers (no clock reads so): as
  // String writes it. Within them the split is exact, and the seconds' text is plain digits.
  if (!(seconds >= 1 && ms >= 0 && ms < 1000 && Number.isInteger(ms) && nowMs <= Number.MAX_SAFE_INTEGER)) return String(nowMs);
  if (seconds !== secondsAt) {
    secondsAt = seconds;
    secondsText = String(seconds);
  }
  return secondsText + THOUSANDTHS[ms]!;
}

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
    head = `{"level":30,"time":${epochMsText(nowMs)},"pid":${pid},"log":"access","requestId":"`;
  }
  return head;
}

/**
 * The line's run of request fields, from the method to the country, as last written, and what it
 * was written from. On a busy router consecutive lines mostly repeat it (the same method, host,
 * path, function and client); given the same ten values, the same text is reused (see lineBlock).
 */
const requestBlock = { method: '', host: '', path: '', protocol: '', fn: null as string | null, org: null as string | null, clientIp: '', country: null as string | null, text: '' };
/** …and the run of outcome fields, from the region to the error, for one region tried (the common case). */
const outcomeBlock = { region: null as string | null, reason: null as string | null, tried: '', status: -1, error: null as string | null, text: '' };

/**
 * A run of fields made once and kept: flattened as soon as it is made (reading a character makes
 * V8 flatten a string built by joining, in place), so each line that reuses it copies one piece
 * instead of the two dozen joins it was made of, and joins it in one step instead of each of
 * those. Reusing the two runs saved some 3,000 instructions a line (counted, docs/performance-notes.md).
 */
let _flattenedFirst = 0;
function kept(text: string): string {
  // Stored, so that the optimising compiler cannot drop the read as unused.
  _flattenedFirst = text.charCodeAt(0);
  return text;
}

function requestFields(ctx: AccessContext, long: boolean): string {
  const b = requestBlock;
  const { method, host, path } = ctx;
  if (b.text !== '' && method === b.method && host === b.host && path === b.path && ctx.protocol === b.protocol && ctx.fn === b.fn && ctx.org === b.org && ctx.clientIp === b.clientIp && ctx.country === b.country) return b.text;
  const text =
    `,"method":"${METHOD.inner(long && method.length > MAX_LOGGED_METHOD ? clipped(method, MAX_LOGGED_METHOD) : method)}"` +
    `,"host":"${HOST.inner(long && host.length > MAX_LOGGED_HOST ? clipped(host, MAX_LOGGED_HOST) : host)}","path":"${PATH.inner(long && path.length > MAX_LOGGED_PATH ? clipped(path, MAX_LOGGED_PATH) : path)}","protocol":"${PROTOCOL.inner(ctx.protocol)}","fn":${FN.str(ctx.fn)},"org":${ORG.str(ctx.org)}` +
    `,"clientIp":"${CLIENT_IP.inner(ctx.clientIp)}","country":${COUNTRY.str(ctx.country)}`;
  b.method = method;
  b.host = host;
  b.path = path;
  b.protocol = ctx.protocol;
  b.fn = ctx.fn;
  b.org = ctx.org;
  b.clientIp = ctx.clientIp;
  b.country = ctx.country;
  b.text = kept(text);
  return b.text;
}

function outcomeFields(out: AccessOutcome, reason: string | null): string {
  const tried = out.tried;
  const one = tried.length === 1;
  const b = outcomeBlock;
  if (one && b.text !== '' && tried[0] === b.tried && out.region === b.region && reason === b.reason && out.status === b.status && out.error === b.error) return b.text;
  let triedText = '';
  for (let i = 0; i < tried.length; i++) triedText += (i === 0 ? '"' : ',"') + TRIED.inner(tried[i]!) + '"';
  const text = `,"region":${REGION.str(out.region)},"reason":${REASON.str(reason)},"attempts":${tried.length},"tried":[${triedText}],"status":${out.status},"error":${ERROR.str(out.error)}`;
  if (!one) return text;
  b.region = out.region;
  b.reason = reason;
  b.tried = tried[0]!;
  b.status = out.status;
  b.error = out.error;
  b.text = kept(text);
  return b.text;
}

export function formatAccessLine(ctx: AccessContext, out: AccessOutcome, nowMs: number, pid: number): string {
  const { host, path, method } = ctx;
  // One comparison each on the common path; what was cut says how long it was, at the line's end.
  const long = host.length > MAX_LOGGED_HOST || path.length > MAX_LOGGED_PATH || method.length > MAX_LOGGED_METHOD;
  return (
    `${lineHead(nowMs, pid)}${inner(ctx.requestId)}","traceId":${str(ctx.traceId)}${requestFields(ctx, long)}${outcomeFields(out, out.route ?? ctx.reason)}` +
    `,"bytesIn":${out.bytesIn},"bytesOut":${out.bytesOut},"routeMs":${ms(ctx.routeMs)},"upstreamMs":${ms(out.upstreamMs)},"totalMs":${ms(out.totalMs)}` +
    // Only on a hedged request: where the hedge went (it won when that is also "region").
    (out.hedgedTo === undefined || out.hedgedTo === null ? '' : `,"hedgedTo":${REGION.str(out.hedgedTo)}`) +
    (long ? lengthNote('method', method, MAX_LOGGED_METHOD) + lengthNote('host', host, MAX_LOGGED_HOST) + lengthNote('path', path, MAX_LOGGED_PATH) : '') +
    '}\n'
  );
}
