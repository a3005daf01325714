/**
 * HTTP/2 requests are handled after the read that carried them has been parsed in full, and a few
 * per connection at a time, not from inside nghttp2's frame callback.
 *
 * A rapid-reset client packs HEADERS for a hundred streams into one read and resets them in the
 * next. Handled at once, every stream costs an admission, an upstream dispatch and then its abort,
 * and the event loop stalls for every other client (measured: ~0.4 ms a stream, 40–90 ms a
 * burst). Here each connection gets at most `perConnectionPerTurn` new requests handled per turn
 * of the event loop (Envoy's `max_requests_per_io_cycle`); the rest wait a turn, in order, while
 * other connections are served and further reads arrive. A stream the client reset while it waited
 * costs one log line. setImmediate runs right after the poll phase, so an honest request waits
 * microseconds; a browser's burst of a hundred requests is spread over a few turns.
 * HTTP/1 carries one request at a time per connection and is handled at once.
 */
import type { Http2ServerRequest, Http2Session } from 'node:http2';

type Handler<Req, Res> = (req: Req, res: Res) => void;

export const DEFAULT_REQUESTS_PER_CONNECTION_PER_TURN = 8;

/** Which turn a session's count belongs to, and the count: kept on the session, read once per request. */
const TURN = Symbol('edge.turn');
const HANDLED = Symbol('edge.handledThisTurn');
type CountedSession = Http2Session & { [TURN]?: number; [HANDLED]?: number };
/** Numbers every flush of every handler, so a count left on a session by another flush never passes for this one's. */
let flushes = 0;
/** Requests waiting for their turn, in every handler of this process. */
let waitingEverywhere = 0;

/**
 * HTTP/2 requests received and not yet handled (in this process): a drain must wait for them as
 * for requests in flight, since the GOAWAY that began it told their clients they will be served.
 * Counted in flight only once handled, they were cut unserved by a drain that found nothing in
 * flight between two turns (seen in review: a burst of refusals answered at once, real requests
 * queued behind them logged 499).
 */
export function http2RequestsWaiting(): number {
  return waitingEverywhere;
}

export function handleHttp2AfterRead<Req extends { readonly httpVersionMajor: number }, Res>(
  handle: Handler<Req, Res>,
  /** A stream the client reset before it was handled: log it, nothing else. */
  onGoneBeforeHandled: Handler<Req, Res>,
  perConnectionPerTurn = DEFAULT_REQUESTS_PER_CONNECTION_PER_TURN,
): Handler<Req, Res> {
  // Request and response, flat, in arrival order. Two arrays swapped at each flush: no allocation
  // per request or per turn.
  let waiting: Array<Req | Res> = [];
  let spare: Array<Req | Res> = [];
  const flush = () => {
    const turn = ++flushes;
    const batch = waiting;
    waiting = spare;
    waitingEverywhere -= batch.length / 2;
    for (let i = 0; i < batch.length; i += 2) {
      const req = batch[i] as Req;
      const res = batch[i + 1] as Res;
      const stream = (req as unknown as Http2ServerRequest).stream;
      if (stream.closed || stream.destroyed) {
        onGoneBeforeHandled(req, res);
        continue;
      }
      const session = stream.session as CountedSession | undefined;
      if (session !== undefined) {
        if (session[TURN] !== turn) {
          session[TURN] = turn;
          session[HANDLED] = 0;
        }
        if (session[HANDLED]! >= perConnectionPerTurn) {
          waiting.push(req, res); // next turn, still ahead of anything that arrives meanwhile
          waitingEverywhere++;
          continue;
        }
        session[HANDLED]!++;
      }
      handle(req, res);
    }
    batch.length = 0;
    spare = batch;
    if (waiting.length > 0) setImmediate(flush);
  };
  return (req, res) => {
    if (req.httpVersionMajor < 2) return handle(req, res);
    if (waiting.length === 0) setImmediate(flush);
    waiting.push(req, res);
    waitingEverywhere++;
  };
}
