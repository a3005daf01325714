/**
 * HTTP/2 streams the client closed that Node never destroys. A client's RST_STREAM NO_ERROR ("I
 * have read enough") that arrives while an ended answer still waits for the stream's window, or
 * before the 'wantTrailers' that would drop an unread request body, leaves node:http2 (20.x)
 * waiting: its close handling wants the readable 'end' and the writable 'finish', and 'finish'
 * never comes for data that can no longer go out. It emits no 'aborted' (the writable side was
 * ending) and no 'close', and clears the stream's own timeout, so the send timeout never fires
 * either. The stream then held its session open past the idle timeout's GOAWAY, its connection's
 * places (per address, --max-connections) and the data it could not send, until the client left.
 *
 * Streams that may end up so are watched here (few: an answer still unsent a turn after its end,
 * or trailers still due over an unread body); once a second, one found closed but not destroyed
 * is destroyed. Its 'close' then tells whoever waits for it.
 */
import type { ServerHttp2Stream } from 'node:http2';

const SWEEP_MS = 1_000;

const watched = new Set<ServerHttp2Stream>();
let sweep: NodeJS.Timeout | undefined;

/** Watches `stream` until it is destroyed; destroys it once found closed (by the client) and not. */
export function watchStranded(stream: ServerHttp2Stream): void {
  if (stream.destroyed) return;
  watched.add(stream);
  if (sweep === undefined) {
    sweep = setInterval(sweepStranded, SWEEP_MS);
    sweep.unref();
  }
}

function sweepStranded(): void {
  for (const stream of watched) {
    if (stream.destroyed) watched.delete(stream);
    else if (stream.closed) {
      watched.delete(stream);
      stream.destroy();
    }
  }
  if (watched.size === 0 && sweep !== undefined) {
    clearInterval(sweep);
    sweep = undefined;
  }
}
