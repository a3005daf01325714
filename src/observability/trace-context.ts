/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/): every request reaches its region with
 * a `traceparent`. A valid one from the client is passed on unchanged (the router records no span
 * of its own); a missing or malformed one is replaced by a new trace, so a function's logs and the
 * router's access log and error bodies share one trace id even for clients that trace nothing.
 */
import { randomFillSync } from 'node:crypto';

export interface TraceContext {
  /** The `traceparent` to send upstream. */
  readonly traceparent: string;
  /** Its 32-hex trace id, for the access log and error bodies. */
  readonly traceId: string;
  /** The client's own (valid) traceparent: its `tracestate` goes along; otherwise it is dropped. */
  readonly fromClient: boolean;
}

const VALID = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_PARENT = '0'.repeat(16);

/** The client's traceparent when valid (version ff and all-zero ids are not), else null. */
export function validTraceparent(value: string | undefined): { traceId: string } | null {
  if (value === undefined) return null;
  const match = VALID.exec(value);
  if (match === null || match[1] === 'ff' || match[2] === ZERO_TRACE || match[3] === ZERO_PARENT) return null;
  return { traceId: match[2]! };
}

// Random bytes are drawn 2,560 at a time and turned into hex all at once; each request then takes
// a slice of that text. Converting per request (Buffer#toString through C++) cost about 2,100
// instructions; a slice, about a tenth of that. A slice keeps the pool's text alive while the ids
// cut from it live, and a request may live as long as its connection (a WebSocket tunnel keeps its
// ids to the end), so the pool is not larger: 5,120 characters pinned at most. Smaller costs more:
// a refill has a fixed cost of about 4.5 µs here (640 bytes: 4.5 µs, 2,560: 6.5, 5,120: 8.5), so
// 16 requests a refill paid about 280 ns each, 64 about 100.
const POOL = Buffer.alloc(40 * 64);
let poolHex = '';
let offset = 0;

/** `bytes` random bytes (a whole number from 1 to 2,560) as 2 × `bytes` lower-case hex digits. */
export function randomHex(bytes: number): string {
  // A negative or fractional count would move the offset back and hand out digits twice.
  if (!(Number.isInteger(bytes) && bytes > 0 && bytes <= POOL.length)) throw new RangeError(`randomHex draws 1 to ${POOL.length} whole bytes at a time, not ${bytes}`);
  const digits = bytes * 2;
  if (offset + digits > poolHex.length) {
    randomFillSync(POOL);
    poolHex = POOL.toString('hex');
    offset = 0;
  }
  const hex = poolHex.slice(offset, offset + digits);
  offset += digits;
  return hex;
}

/** Random hex a new trace needs: trace id (32 digits) and parent id (16). */
export const TRACE_HEX_DIGITS = 48;

/**
 * The trace to forward: the client's when its `traceparent` is valid, else a new one drawn from
 * `freshHex` (its first 48 digits; the caller may draw them together with other ids, one hex
 * conversion per request instead of two) or from the pool.
 */
export function traceContextOf(header: string | string[] | undefined, freshHex?: string): TraceContext {
  const value = typeof header === 'string' ? header : undefined;
  const valid = validTraceparent(value);
  if (valid !== null) return { traceparent: value!, traceId: valid.traceId, fromClient: true };
  const hex = freshHex ?? randomHex(TRACE_HEX_DIGITS / 2);
  let traceId = hex.slice(0, 32);
  let parentId = hex.slice(32, TRACE_HEX_DIGITS);
  // All-zero ids are invalid; vanishingly unlikely, but cheap to rule out.
  if (traceId === ZERO_TRACE) traceId = `${traceId.slice(0, 31)}1`;
  if (parentId === ZERO_PARENT) parentId = `${parentId.slice(0, 15)}1`;
  // Flags 00: the edge makes no sampling decision; the region's tracer may.
  return { traceparent: `00-${traceId}-${parentId}-00`, traceId, fromClient: false };
}
