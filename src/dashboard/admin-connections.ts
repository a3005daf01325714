/**
 * Who holds the admin listener's connections. Its clients are a few dashboards, probes and
 * scrapers, and it has a cap of its own (ADMIN_MAX_CONNECTIONS). With the cap alone, anyone who
 * reached the port (a pod the network policy lets through) could take every place with
 * connections that never send a byte, each held to --client-header-timeout and opened again:
 * every connection after them was closed on arrival, the liveness probe's too, and the router
 * was restarted for it. So an address holds at most its own share, and at the cap a newcomer
 * takes the place of the connection quiet longest with no request under way (one that never sent
 * a head, one still sending it, one between requests) instead of being turned away. Only when
 * every place serves a request (a dashboard's event stream, say) is the newcomer closed.
 *
 * Pure bookkeeping: the listener tells it of connections, requests and closes, and closes what it
 * is told to (edge-router.ts).
 */

interface Held {
  readonly address: string;
  /** Requests in progress on the connection (more than one when pipelined). */
  busy: number;
  /** Since when it has had no request under way: its opening, or its last answer's end. */
  quietSince: number;
}

export class AdminConnections<Connection> {
  /** Open connections, in the order they opened. */
  private readonly held = new Map<Connection, Held>();
  /** Per address (not ingress's AddressQuota: the dashboard folder does not import ingress). */
  private readonly perAddress = new Map<string, number>();

  constructor(
    /** Connections held at once (0: no bound at all). */
    private readonly cap: number,
    /** Connections one address holds at once. */
    private readonly perAddressCap: number,
    /** Closes a connection whose place a newcomer takes. */
    private readonly close: (connection: Connection) => void,
  ) {}

  get size(): number {
    return this.held.size;
  }

  /** A connection has opened: true when it may stay (another may have been closed for it), false when the caller closes it. */
  admit(connection: Connection, address: string, now: number): boolean {
    if (this.cap === 0) return true;
    if ((this.perAddress.get(address) ?? 0) >= this.perAddressCap) return false;
    if (this.held.size >= this.cap) {
      const quietest = this.quietestIdle();
      if (quietest === undefined) return false;
      this.closed(quietest);
      this.close(quietest);
    }
    this.held.set(connection, { address, busy: 0, quietSince: now });
    this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
    return true;
  }

  requestStarted(connection: Connection): void {
    const entry = this.held.get(connection);
    if (entry !== undefined) entry.busy++;
  }

  requestEnded(connection: Connection, now: number): void {
    const entry = this.held.get(connection);
    if (entry === undefined || entry.busy === 0) return;
    entry.busy--;
    if (entry.busy === 0) entry.quietSince = now;
  }

  /** The connection has closed (or was closed to make room): its place and its address's are free. */
  closed(connection: Connection): void {
    const entry = this.held.get(connection);
    if (entry === undefined) return;
    this.held.delete(connection);
    const left = (this.perAddress.get(entry.address) ?? 1) - 1;
    if (left === 0) this.perAddress.delete(entry.address);
    else this.perAddress.set(entry.address, left);
  }

  /** The connection without a request under way that has been quiet longest; a look over at most `cap` places, made only at the cap. */
  private quietestIdle(): Connection | undefined {
    let found: Connection | undefined;
    let since = Number.POSITIVE_INFINITY;
    for (const [connection, entry] of this.held) {
      if (entry.busy === 0 && entry.quietSince < since) {
        found = connection;
        since = entry.quietSince;
      }
    }
    return found;
  }
}
