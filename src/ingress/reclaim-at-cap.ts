/**
 * A public listener's reclaiming of idle connections near `--max-connections` (idle-reclaim.ts):
 * which connections are its candidates, and the events that make it look. Costs an accept two
 * reads and a comparison away from the cap; the walk over the connections happens only near it.
 */
import type { Http2Session } from 'node:http2';
import type { Server as NetServer, Socket } from 'node:net';
import { IdleReclaimer, type ReclaimCandidate } from './idle-reclaim.js';
import { closeIdle, idleHttp1Connections, idleHttp2Sessions, silentConnections, type ConnectionFacts, type IdleConnection } from './idle-connections.js';

export interface ReclaimedListenerParts {
  /** The listening server, which accepts and counts connections (a HandOffServer). */
  readonly listener: NetServer;
  /** The HTTP server it hands them to. */
  readonly server: NetServer;
  /** Every accepted connection of the public listeners, its own among them. */
  readonly accepted: Iterable<Socket>;
  /** Its HTTP/2 sessions (the HTTPS listener's), or none. */
  readonly sessions: () => Iterable<Http2Session>;
  readonly facts: ConnectionFacts;
  /** Told of each connection Node dropped at the cap. */
  readonly onDrop: () => void;
}

export function reclaimIdleNearCap(parts: ReclaimedListenerParts): IdleReclaimer<IdleConnection> {
  const { listener, server, accepted, sessions, facts } = parts;
  const reclaimer = new IdleReclaimer<IdleConnection>({
    open: () => (listener as NetServer & { _connections?: number })._connections ?? 0,
    cap: () => listener.maxConnections ?? 0,
    candidates: () => {
      const found: ReclaimCandidate<IdleConnection>[] = [];
      idleHttp1Connections(server, facts, found);
      silentConnections(accepted, listener, facts, found);
      idleHttp2Sessions(sessions(), found);
      return found;
    },
    reclaim: closeIdle,
  });
  listener.on('connection', () => reclaimer.check());
  // Not emitted with --workers: a full worker is not offered the connection (the primary hands it
  // to another), so its count stays 0 there.
  listener.on('drop', () => {
    parts.onDrop();
    reclaimer.check();
  });
  return reclaimer;
}
