/**
 * A public listener's `--max-connections`, held by the router at accept rather than by Node's
 * `server.maxConnections`, and the reclaiming of idle connections that makes room near it
 * (idle-reclaim.ts).
 *
 * Why not Node's cap: with `--workers`, node:cluster's primary accepts every connection and
 * offers it to a worker; a worker at its `maxConnections` refuses it back, and the primary offers
 * it to the next worker, and so on, with no end while every worker is full (Node 20's
 * round_robin_handle.js). Twenty connections waiting so took about a core between the primary and
 * two workers, and the primary kept every one of them open, as many as clients cared to open.
 * Here a worker takes each connection it is offered and closes the ones past its cap itself. The
 * price: a worker at its cap closes a connection even while another worker has room (the round
 * robin offers connections in turn, whatever each worker holds).
 */
import type { Http2Session } from 'node:http2';
import { Socket, type Server as NetServer } from 'node:net';
import { IdleReclaimer, reclaimWanted, reserveOf, type ReclaimCandidate, type Standing } from './idle-reclaim.js';
import { closeIdle, idleHttp1Connections, idleHttp2Sessions, silentConnections, stillIdle, type ConnectionFacts, type IdleConnection } from './idle-connections.js';

export interface CappedListener {
  /** The listening server, which accepts and counts connections (a HandOffServer). */
  readonly listener: NetServer;
  /** The HTTP server it hands them to. */
  readonly server: NetServer;
  /** `--max-connections` (0: none). */
  readonly cap: number;
  /** Every accepted connection of the public listeners, its own among them. */
  readonly accepted: Iterable<Socket>;
  /** Its HTTP/2 sessions (the HTTPS listener's), or none. */
  readonly sessions: () => Iterable<Http2Session>;
  readonly facts: ConnectionFacts;
  /** How a new connection's address stands (idle-reclaim.ts, Standing); asked only near the cap. */
  readonly standingOf: (socket: Socket) => Standing;
  /** Told of each connection closed as it came, past the cap. */
  readonly onRefused?: () => void;
}

export class ConnectionCap {
  /** Connections closed past the cap as they came (none idle for long enough to make room). */
  refused = 0;
  /** Connections of heavy addresses closed as they came within the cap's reserve. */
  refusedHeavy = 0;
  readonly #reclaimer: IdleReclaimer<IdleConnection>;

  constructor(private readonly parts: CappedListener) {
    this.#reclaimer = new IdleReclaimer<IdleConnection>({
      open: () => this.open(),
      cap: () => parts.cap,
      candidates: () => {
        const found: ReclaimCandidate<IdleConnection>[] = [];
        idleHttp1Connections(parts.server, parts.facts, found);
        silentConnections(parts.accepted, parts.listener, parts.facts, found);
        idleHttp2Sessions(parts.sessions(), found);
        return found;
      },
      stillIdle: (candidate) => stillIdle(candidate, parts.facts),
      leavesAtOnce: (connection) => connection instanceof Socket,
      // A socket leaves Node's count as it is destroyed; an HTTP/2 session closed with a GOAWAY
      // stays in it until its client closes (a round trip) or is cut (HTTP2_CLOSE_GRACE_MS):
      // counted until then, so the listener never holds more than its cap.
      reclaim: closeIdle,
    });
  }

  /** Idle connections closed to make room, since the start. */
  get reclaimed(): number {
    return this.#reclaimer.reclaimed;
  }

  /**
   * Whether the connection just accepted (counted already) may stay. Near the cap (within its
   * reserve, idle-reclaim.ts), a heavy address's is refused without a look, so that the few
   * addresses holding most of the listener cannot keep its reserve, nor the places the looks make,
   * to themselves; for the others idle connections are closed to make room, and past the cap a
   * light one (not one whose address is unknown, a trusted proxy's) takes the place of an idle one
   * if one is left. Away from the cap it costs a few reads and a comparison. Asked at accept,
   * before anything is read from it; behind the PROXY protocol once its header is read (hasRoom
   * bounds the connections still waiting for theirs).
   */
  readonly admit = (socket: Socket): boolean => {
    const cap = this.parts.cap;
    const standing: Standing = cap <= 0 || reclaimWanted(this.open(), cap) === 0 ? 'unknown' : this.parts.standingOf(socket);
    if (standing === 'heavy') {
      this.refusedHeavy++;
      this.parts.onRefused?.();
      return false;
    }
    this.#reclaimer.check();
    if (cap <= 0 || this.open() <= cap) return true;
    if (standing === 'light' && this.#reclaimer.makeRoom() && this.open() <= cap) return true;
    this.refused++;
    this.parts.onRefused?.();
    return false;
  };

  /**
   * Behind the PROXY protocol, asked at accept, before the client's address is known and its
   * per-address limits have spoken: room for it to send its header, up to one reserve past the cap
   * (idle-reclaim.ts), closing nobody's idle connection for it. A connection those limits would
   * refuse had closed idle connections of others first, at every look its pacing allowed (seen in
   * review). The full `admit` (the look for room, the light or heavy standing, the cap itself)
   * follows once the header is read and those limits let it in.
   */
  readonly hasRoom = (): boolean => {
    const cap = this.parts.cap;
    if (cap <= 0 || this.open() <= cap + reserveOf(cap)) return true;
    this.refused++;
    this.parts.onRefused?.();
    return false;
  };

  private open(): number {
    return openConnections(this.parts.listener);
  }
}

/** Connections open on a Node server: its own count, which a destroyed socket leaves at once. */
export function openConnections(server: NetServer): number {
  return (server as NetServer & { _connections?: number })._connections ?? 0;
}
