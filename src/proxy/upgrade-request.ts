/**
 * An HTTP/1.1 upgrade (WebSocket) sent to a region through its pool, with undici's dispatch API
 * rather than `upgrade()`: the region either switches protocols (we get its headers and the
 * socket) or answers like any request (we get that answer, so the client can too — undici's
 * `upgrade()` turns it into an opaque "bad upgrade" error). The answer's body is read whole, up to
 * a bound: a refusal is small, and a bigger one is cut there (answered with what was kept).
 */
import type { Duplex } from 'node:stream';
import { errors, type Dispatcher } from 'undici';
import { UPSTREAM_SERVERNAME, type OrchestratorDispatchOptions } from './pools.js';
import { bodilessAnswerWhole } from './upstream-error.js';

export type UpgradeResult =
  | { readonly kind: 'upgraded'; readonly headers: Record<string, string | string[] | undefined>; readonly socket: Duplex }
  | {
      readonly kind: 'answered';
      readonly statusCode: number;
      readonly statusMessage: string;
      readonly headers: Record<string, string | string[] | undefined>;
      readonly body: Buffer;
    };

/** Bytes of a non-101 answer's body kept for the client; the rest is cut. */
export const MAX_REFUSAL_BODY_BYTES = 64 * 1024;

/** An upgrade on its way: its outcome, and a way to call it off while it waits for the region's head. */
export interface PendingUpgrade {
  readonly result: Promise<UpgradeResult>;
  /** undici read the first bytes of the region's answer (classifyAttemptError). */
  readonly answerBegun: boolean;
  /** Cuts the request (the client left); `result` rejects with `reason`. No-op once it settled. */
  abort(reason: Error): void;
}

export function requestUpgrade(
  dispatcher: Dispatcher,
  options: {
    path: string;
    headers: string[];
    protocol: string;
    headersTimeoutMs: number;
    /**
     * The whole answer must be read within this (the request's deadline; absent: no bound). A
     * refusal still being read then is answered with what was kept, as at the size bound.
     */
    answerTimeoutMs?: number;
  },
): PendingUpgrade {
  let controller: Dispatcher.DispatchController | undefined;
  let abortedWith: Error | undefined;
  let settled = false;
  let answerBegun = false;
  const result = new Promise<UpgradeResult>((resolve, reject) => {
    let answer: { statusCode: number; statusMessage: string; headers: Record<string, string | string[] | undefined> } | undefined;
    const chunks: Buffer[] = [];
    let size = 0;
    // The size bound alone let a slow stream through: an event stream's heartbeats never reach it,
    // and each restarts undici's body timeout, so the upgrade held its region's slot (and its client
    // waited for an answer) for as long as the function kept the stream open (seen in review).
    let answerTimer: NodeJS.Timeout | undefined;
    const settle = () => {
      settled = true;
      clearTimeout(answerTimer);
    };
    if (options.answerTimeoutMs !== undefined) {
      answerTimer = setTimeout(() => {
        if (settled) return;
        if (answer === undefined) {
          // No head yet: the deadline has passed all the same. undici's headers timeout is no
          // stand-in: it starts when the request is written, and past a second it runs on a coarse
          // clock that fires up to half a second late. A head arriving in between was taken, and
          // its body then bounded by nothing but its size: an event stream's heartbeats held the
          // region's slot, and the client, for as long as the function kept writing.
          const late = new errors.HeadersTimeoutError();
          settle();
          reject(late);
          if (controller === undefined) abortedWith = late;
          else controller.abort(late);
          return;
        }
        settle();
        resolve({ kind: 'answered', ...answer, body: Buffer.concat(chunks, size) });
        controller?.abort(new Error('the answer to an upgrade is cut at its deadline'));
      }, Math.max(0, options.answerTimeoutMs));
    }
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
        // Called off before undici got to it: cut it now.
        if (abortedWith !== undefined) c.abort(abortedWith);
      },
      onRequestUpgrade(_controller, _statusCode, headers, socket) {
        if (settled) return void (socket as Duplex).destroy(); // past the deadline: nobody takes it
        settle();
        resolve({ kind: 'upgraded', headers: headers as Record<string, string | string[] | undefined>, socket: socket as Duplex });
      },
      onResponseStarted() {
        answerBegun = true;
      },
      onResponseStart(_controller, statusCode, headers, statusMessage) {
        // An interim answer (102, 103) is not the answer: taken as one, a function that sent 103
        // and then nothing had the 103 relayed as its final answer at the deadline, its region
        // counted a success (seen in review). The deadline gives the 504 it is.
        if (statusCode < 200) return;
        answer = { statusCode, statusMessage: statusMessage ?? '', headers: headers as Record<string, string | string[] | undefined> };
      },
      onResponseData(c, chunk) {
        if (settled) return;
        const kept = chunk.subarray(0, MAX_REFUSAL_BODY_BYTES - size);
        chunks.push(kept);
        size += kept.length;
        if (size < MAX_REFUSAL_BODY_BYTES) return;
        // Enough: the answer goes with what was kept, and the rest is cut, not read. A function
        // that streams without end (server-sent events) held the upgrade, and its slot, for ever.
        settle();
        resolve({ kind: 'answered', ...answer!, body: Buffer.concat(chunks, size) });
        c.abort(new Error('the answer to an upgrade is cut at its bound'));
      },
      onResponseEnd() {
        if (settled) return;
        settle();
        if (answer === undefined) return reject(new Error('the region ended without an answer'));
        resolve({ kind: 'answered', ...answer, body: Buffer.concat(chunks, size) });
      },
      onResponseError(_controller, err) {
        if (settled) return; // the body was cut at its bound: answered already
        settle();
        // A function's 304 stating its 200's length was a 502 "no region accepted the upgrade",
        // counted against the region as a bad answer: the request path takes it whole, so does this.
        if (answer !== undefined && bodilessAnswerWhole(answer.statusCode, err)) return resolve({ kind: 'answered', ...answer, body: Buffer.alloc(0) });
        reject(err);
      },
    };
    // headersTimeout: the region's head must come within the request's deadline, as for any request.
    const dispatch: OrchestratorDispatchOptions = { path: options.path, method: 'GET', headers: options.headers, upgrade: options.protocol, headersTimeout: options.headersTimeoutMs, servername: UPSTREAM_SERVERNAME };
    dispatcher.dispatch(dispatch, handler);
  });
  return {
    result,
    get answerBegun() {
      return answerBegun;
    },
    abort(reason) {
      if (settled || abortedWith !== undefined) return;
      abortedWith = reason;
      controller?.abort(reason);
    },
  };
}
