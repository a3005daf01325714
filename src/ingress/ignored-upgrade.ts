/**
 * Requests Node hands to the 'upgrade' path: when they are answered, and those answered as the
 * plain requests they also are.
 *
 * Node 20 gives every HTTP/1.1 request with `Connection: upgrade` to 'upgrade', parser detached,
 * whatever protocol it names. `curl --http2 http://…` asks for `h2c` so; RFC 9110 §7.8 lets a
 * server ignore the header and answer the request, which the router refused (400, or 426 on the
 * plain port instead of its redirect). Such a request without a body is answered here on a
 * response made for it, then its connection closes (no parser is left to read another).
 */
import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { board, type ConnectionRider, type RiddenSocket } from '../proxy/connection-riders.js';

/**
 * Runs `next` once the answers Node is still writing on `socket` (requests pipelined before this
 * one) have finished (RFC 9112 §9.3.2: answers go in the order of their requests), or now when
 * there is none. Not if the connection closes first, or an answer ahead closed it: one sent with
 * `Connection: close` (the drain's last) ends the socket, and nothing after it is served (RFC 9112
 * §9.6). Such an upgrade had been sent on, refused on the ended socket, and logged as its client's
 * leaving. `dropped` hears of it instead: `byRouter` when the router's side had ended (the
 * router's close, as for requests pipelined behind such an answer), else the client left. The
 * client's further bytes wait meanwhile: Node leaves an upgraded socket unread.
 */
export function afterAnswerAhead(socket: Duplex, next: () => void, dropped?: (byRouter: boolean) => void): void {
  if (socket.destroyed || socket.writableEnded) return dropped?.(socket.writableEnded);
  const current = (socket as { _httpMessage?: ServerResponse | null })._httpMessage;
  if (current === null || current === undefined) return next();
  // Looked at again once it is done: Node detaches it in its 'finish' and hands the socket to the
  // next answer queued behind it. Not by `writableFinished`: that turns true as its last bytes are
  // written, a tick before 'finish'; an answer given the socket in between (a redirect pipelined
  // in the same packet as /healthz) threw ERR_HTTP_SOCKET_ASSIGNED out of the parser's callback,
  // an uncaught exception that drained the worker and stopped it.
  // Or the connection closes first, under an answer never finished: its client left (that request
  // is logged 499), or the router cut that answer (its deadline, a send stall: closingByRouter).
  // Waiting for a 'finish' that never came, the upgrade behind it was never logged or counted
  // (found by review); it is logged as the requests pipelined beside it are.
  const rider: ConnectionRider = {
    connectionClosed: (byRouter) => {
      current.removeListener('finish', onFinish);
      dropped?.(byRouter);
    },
  };
  const riders = board(socket as unknown as RiddenSocket, rider);
  const onFinish = () => {
    riders.delete(rider);
    setImmediate(() => afterAnswerAhead(socket, next, dropped));
  };
  current.once('finish', onFinish);
}

/**
 * Answers `req` through `handle` as a plain request when it asks to switch to a protocol other
 * than WebSocket and carries no body (Node's parser, detached, would not have read it); returns
 * whether it did. WebSocket upgrades, and the others with a body, are left to the upgrade path.
 */
export function answerIgnoringUpgrade(req: IncomingMessage, socket: Duplex, handle: (req: IncomingMessage, res: ServerResponse) => void): boolean {
  if ((req.headers.upgrade ?? '').trim().toLowerCase() === 'websocket') return false;
  const length = req.headers['content-length'];
  if (req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')) return false;
  afterAnswerAhead(socket, () => {
    const res = new ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket as Socket);
    res.once('finish', () => {
      res.detachSocket(socket as Socket);
      (socket as Socket).destroySoon();
    });
    handle(req, res);
  });
  return true;
}
