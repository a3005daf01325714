/**
 * The last line of defence of the public handlers: a request whose handling threw where nothing
 * should is answered 500 `internal_error` (or cut off, once its head went out), the fault is
 * reported, and the process serves on. Without it, one unexpected throw in a request event (or
 * in the turn that hands HTTP/2 streams over) would take every other client's requests down with
 * the process. Resources a handler took before the throw are its own to give back (the edge
 * handler's exchange does, through Exchange.fault); this only guarantees an answer.
 */
import type { ServerResponse } from 'node:http';
import { requestIdOf, type AnyRequest } from './admission.js';
import { sendError } from './error-response.js';

interface AnswerableResponse {
  readonly headersSent: boolean;
  destroy(error?: Error): void;
}

export function guardRequests<Req extends AnyRequest, Res extends AnswerableResponse>(
  handle: (req: Req, res: Res) => void,
  onFault: (err: unknown) => void,
  /** The fields of the router's answer to `req` (its HSTS follows the name's owner); asked only when a fault is answered. */
  headersFor: (req: Req) => Readonly<Record<string, string>>,
): (req: Req, res: Res) => void {
  return (req, res) => {
    try {
      handle(req, res);
    } catch (err) {
      onFault(err);
      try {
        if (res.headersSent) res.destroy();
        else sendError(res as unknown as ServerResponse, 'internal_error', 'internal error', requestIdOf(req), headersFor(req));
      } catch {
        res.destroy(); // the answer itself failed: the client at least learns the request is over
      }
    }
  };
}
