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
  /** The fault, with the id of the request it cost (the one its 500 carries). */
  onFault: (err: unknown, requestId: string) => void,
  /** The fields of the router's answer to `req` (its HSTS follows the name's owner); asked only when a fault is answered. */
  headersFor: (req: Req) => Readonly<Record<string, string>>,
  /**
   * The guard answered `req` itself (`status`; 0: cut): its access line. Without one, the router's
   * own faults were in no access line and no 5xx count, and the id a client reported was nowhere.
   */
  onAnswered?: (req: Req, requestId: string, status: number) => void,
): (req: Req, res: Res) => void {
  return (req, res) => {
    try {
      handle(req, res);
    } catch (err) {
      const requestId = requestIdOf(req);
      onFault(err, requestId);
      let status = 0;
      try {
        if (res.headersSent) res.destroy();
        else status = sendError(res as unknown as ServerResponse, 'internal_error', 'internal error', requestId, headersFor(req));
      } catch {
        res.destroy(); // the answer itself failed: the client at least learns the request is over
      }
      // A head already out was the handler's: the line is its own (an exchange's fault writes one).
      // Guarded too: a throw out of here would be the uncaught exception this guard exists to stop.
      try {
        if (status !== 0 || !res.headersSent) onAnswered?.(req, requestId, status);
      } catch (lineErr) {
        onFault(lineErr, requestId);
      }
    }
  };
}
