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
 * And the request still being read when the router answered it from outside its handler (Node's
 * request timeout, a body broken mid-way: public-servers.ts answerClientError) is told what its
 * client was sent, so that it is logged as answered, not as a client that left.
 */
/** The part of a client connection this needs (Node's net.Socket has it). */
export interface RiddenSocket {
  once(event: 'close', listener: () => void): unknown;
}

/** An answer the router wrote onto a connection itself, outside the handler of the request it answers (see `answeredByRouter`). */
export interface RouterAnswer {
  /** The response (Node's ServerResponse) of the request answered: its rider knows it as its own. */
  readonly response: object;
  /** The status written (e.g. 408); 0 when none could be: the connection was cut under an answer already begun. */
  readonly status: number;
  /** Its error code (core/errors.ts), for the access line. */
  readonly code: string;
}

export interface ConnectionRider {
  /**
   * The connection closed while this rider was on it; `byRouter`: the router closed it (see
   * `closingByRouter`), not the client or the network; `answered`: what the router wrote onto it
   * before closing it, for the rider whose response it names (see `answeredByRouter`).
   */
  connectionClosed(byRouter: boolean, answered?: RouterAnswer): void;
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

/** What the router wrote onto connections it answered outside a request's handler. */
const answers = new WeakMap<RiddenSocket, RouterAnswer>();

/**
 * The router has written `answer` onto `socket` for the request still being read on it, outside
 * that request's handler, and closes the connection: the rider of `answer.response` is told so, and
 * the others (none is expected: nothing is parsed past a request still being read) that the router
 * closed it. Called before the close.
 */
export function answeredByRouter(socket: RiddenSocket, answer: RouterAnswer): void {
  answers.set(socket, answer);
  closedByRouter.add(socket);
}

/** The parts of an HTTP/1 answer (Node's ServerResponse) that tell whether it closes its connection. */
export interface ClosingAnswer {
  /** Node's own flag: the connection closes once this answer is over (it said `Connection: close`). */
  readonly _last?: boolean;
  /** The connection, while this answer holds it; null while it waits behind another (pipelined). */
  readonly socket?: unknown;
  /** Node's ServerResponse says 'socket' when a queued answer gets its connection (its turn). */
  once?(event: 'socket', listener: () => void): unknown;
}

/**
 * An HTTP/1 answer just ended after which Node closes its connection (`Connection: close`): what was
 * pipelined behind it is dropped by the router, not by its client. One still queued behind another
 * answer (its socket null) has no connection yet: it is marked when its turn comes (Node's
 * 'socket'), not before, so that a connection closed by the client meanwhile stays the client's.
 * (Left unmarked, what was pipelined behind it was logged 499 client_closed.)
 */
export function closesAfter(res: ClosingAnswer): void {
  if (res._last !== true) return;
  if (res.socket !== null && res.socket !== undefined) closingByRouter(res.socket as RiddenSocket);
  else if (res.socket === null) res.once?.('socket', () => closesAfter(res));
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
      const answered = answers.get(socket);
      // A rider leaves the set as it ends: deleting the current entry is safe while iterating a Set.
      for (const r of created) r.connectionClosed(byRouter, answered);
      created.clear();
    });
  }
  riders.add(rider);
  return riders;
}
