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

/** Where each part of a record starts: `00-` trace id `-` parent id `-00`, then the request id. */
const TRACE_ID_AT = 3;
const PARENT_ID_AT = 36;
const TRACEPARENT_CHARS = 55;
const REQUEST_ID_AT = 55;
/** A record: its traceparent, a 32-digit request id, and one spare digit (a whole number of random bytes). */
const RECORD_CHARS = 88;

/**
 * New request ids and traces, cut from one text laid out for them: each record is a whole
 * `traceparent` followed by a request id, `00-<trace id>-<parent id>-00<request id>` and one spare
 * digit (88 characters), so a request's three strings are slices of that text and nothing is
 * joined per request.
 *
 * Why not join them per request (as before 2026-12-05): undici checks every upstream header value
 * with a regular expression, and V8 runs one in place only on a flat string. A traceparent joined
 * from its parts is a rope, so each request's check went through V8's runtime, which flattened it
 * first: about 1,150 instructions a request, and the joining about 250 more (counted with
 * callgrind; docs/performance-notes.md). A slice of a flat text is flat.
 *
 * A refill draws the random bytes, writes their hex into the records and the separators over it
 * (the digits they cover are drawn and never used: the rest stay uniformly random), then makes the
 * text in one piece: a few thousand instructions for 64 requests. As with `randomHex`, ids cut from
 * a text keep it alive (5,632 characters) while they live.
 */
export class IdentityPool {
  private readonly random: Buffer;
  private readonly bytes: Buffer;
  private text = '';
  private at: number;

  /** `fill` draws random bytes into its buffer (a test may draw them itself). */
  constructor(
    records = 64,
    private readonly fill: (into: Buffer) => void = (into) => void randomFillSync(into),
  ) {
    this.random = Buffer.alloc((records * RECORD_CHARS) / 2);
    this.bytes = Buffer.alloc(records * RECORD_CHARS);
    this.at = this.bytes.length;
  }

  /** The next new request id and trace. */
  next(): { readonly requestId: string; readonly trace: TraceContext } {
    for (;;) {
      if (this.at === this.bytes.length) this.refill();
      const at = this.at;
      this.at = at + RECORD_CHARS;
      const text = this.text;
      // All-zero ids are invalid; vanishingly unlikely, and such a record is passed over.
      if (text.charCodeAt(at + TRACE_ID_AT) === 0x30 && text.startsWith(ZERO_TRACE, at + TRACE_ID_AT)) continue;
      if (text.charCodeAt(at + PARENT_ID_AT) === 0x30 && text.startsWith(ZERO_PARENT, at + PARENT_ID_AT)) continue;
      return {
        requestId: text.slice(at + REQUEST_ID_AT, at + REQUEST_ID_AT + 32),
        // Flags 00: the edge makes no sampling decision; the region's tracer may.
        trace: { traceparent: text.slice(at, at + TRACEPARENT_CHARS), traceId: text.slice(at + TRACE_ID_AT, at + TRACE_ID_AT + 32), fromClient: false },
      };
    }
  }

  private refill(): void {
    const bytes = this.bytes;
    this.fill(this.random);
    bytes.write(this.random.toString('hex'), 0, 'latin1');
    for (let r = 0; r < bytes.length; r += RECORD_CHARS) {
      bytes[r] = 0x30; // 0
      bytes[r + 1] = 0x30;
      bytes[r + 2] = 0x2d; // -
      bytes[r + PARENT_ID_AT - 1] = 0x2d;
      bytes[r + TRACEPARENT_CHARS - 3] = 0x2d;
      bytes[r + TRACEPARENT_CHARS - 2] = 0x30;
      bytes[r + TRACEPARENT_CHARS - 1] = 0x30;
    }
    this.text = bytes.toString('latin1');
    this.at = 0;
  }
}

const IDENTITIES = new IdentityPool();

/** A new request id (32 hex digits, 128 random bits) and a new trace, for a request that brought neither. */
export function newIdentity(): { readonly requestId: string; readonly trace: TraceContext } {
  return IDENTITIES.next();
}

/** The client's trace when its `traceparent` is valid, else null. */
export function clientTraceContext(header: string | string[] | undefined): TraceContext | null {
  if (typeof header !== 'string') return null;
  const valid = validTraceparent(header);
  return valid === null ? null : { traceparent: header, traceId: valid.traceId, fromClient: true };
}

/** The trace to forward: the client's when its `traceparent` is valid, else a new one. */
export function traceContextOf(header: string | string[] | undefined): TraceContext {
  return clientTraceContext(header) ?? IDENTITIES.next().trace;
}
