/**
 * The exchanges riding on each HTTP/1 client connection, so that one 'close' listener per
 * connection, added with its first request, ends them all when it dies.
 *
 * Why not a listener per request: a keep-alive connection carries many requests, and adding then
 * removing a `once('close')` listener on the socket for each one (a wrapper closure, a splice of the
 * socket's listener array) was a measurable part of the request path. A set per connection costs an
 * add and a delete. The set is kept in a WeakMap, not on the socket object: a property added to some
 * sockets and not to others (undici's upstream sockets are the same class) would make Node's own
 * socket code see two shapes.
 *
 * The riders are told whether the router closed the connection itself (an answer it cut mid-body
 * closes its HTTP/1.1 connection; so does a client that takes none of what waits for it): requests
 * pipelined behind such an answer did not lose their client, and must not be logged as if they had.
 */
/** The part of a client connection this needs (Node's net.Socket has it). */
export interface RiddenSocket {
  once(event: 'close', listener: () => void): unknown;
}

export interface ConnectionRider {
  /** The connection closed while this rider was on it; `byRouter`: the router closed it (see `closingByRouter`), not the client or the network. */
  connectionClosed(byRouter: boolean): void;
}

export type Riders = Set<ConnectionRider>;

const ridersOf = new WeakMap<RiddenSocket, Riders>();

/** Connections the router is closing itself. */
const closedByRouter = new WeakSet<RiddenSocket>();

/**
 * The router is about to close `socket` itself (destroying it, or an answer that closes it): the
 * riders still on it when it closes are told so. Called before the close, which Node emits later.
 */
export function closingByRouter(socket: RiddenSocket): void {
  closedByRouter.add(socket);
}

/**
 * Puts `rider` on `socket`'s list; returns the list, from which the rider takes itself off
 * (`riders.delete(rider)`) when it is over.
 */
export function board(socket: RiddenSocket, rider: ConnectionRider): Riders {
  let riders = ridersOf.get(socket);
  if (riders === undefined) {
    const created: Riders = new Set();
    riders = created;
    ridersOf.set(socket, created);
    socket.once('close', () => {
      ridersOf.delete(socket);
      const byRouter = closedByRouter.has(socket);
      // A rider leaves the set as it ends: deleting the current entry is safe while iterating a Set.
      for (const r of created) r.connectionClosed(byRouter);
      created.clear();
    });
  }
  riders.add(rider);
  return riders;
}
