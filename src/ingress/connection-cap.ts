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
import { IdleReclaimer, reclaimWanted, type ReclaimCandidate } from './idle-reclaim.js';
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
  /**
   * Whether a new connection may take an idle one's place when it finds the listener full
   * (mayTakeIdlePlace, by how many its address holds); asked only then.
   */
  readonly isLight: (socket: Socket) => boolean;
  /** Told of each connection closed as it came, past the cap. */
  readonly onRefused?: () => void;
}

export class ConnectionCap {
  /** Connections closed past the cap as they came (none idle for long enough to make room). */
  refused = 0;
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
   * reserve, idle-reclaim.ts), only a light one (`isLight`; one whose client is not known yet,
   * `socket` undefined, is): idle connections are closed to make room for it, and past the cap it
   * takes an idle one's place if one is left. A heavy one is refused there without a look, so
   * that the few addresses holding most of the listener cannot keep its reserve, nor the places
   * the looks make, to themselves. Away from the cap it costs a few reads and a comparison. Asked
   * at accept, before anything is read from it.
   */
  readonly admit = (socket: Socket | undefined): boolean => {
    const cap = this.parts.cap;
    if (cap > 0 && socket !== undefined && reclaimWanted(this.open(), cap) > 0 && !this.parts.isLight(socket)) return this.refuse();
    this.#reclaimer.check();
    if (cap <= 0 || this.open() <= cap) return true;
    if (this.#reclaimer.makeRoom() > 0 && this.open() <= cap) return true;
    return this.refuse();
  };

  private refuse(): false {
    this.refused++;
    this.parts.onRefused?.();
    return false;
  }

  /** Connections open on the listener (Node's count: a destroyed socket leaves it at once). */
  private open(): number {
    return (this.parts.listener as NetServer & { _connections?: number })._connections ?? 0;
  }
}
