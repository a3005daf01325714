/**
 * An HTTP/1.1 upgrade (WebSocket) sent to a region through its pool, with undici's dispatch API
 * rather than `upgrade()`: the region either switches protocols (we get its headers and the
 * socket) or answers like any request (we get that answer, so the client can too — undici's
 * `upgrade()` turns it into an opaque "bad upgrade" error). The answer's body is read whole, up to
 * a bound: a refusal is small, and a bigger one is cut rather than buffered.
 */
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';

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

export function requestUpgrade(
  dispatcher: Dispatcher,
  options: { path: string; headers: string[]; protocol: string },
): Promise<UpgradeResult> {
  return new Promise((resolve, reject) => {
    let answer: { statusCode: number; statusMessage: string; headers: Record<string, string | string[] | undefined> } | undefined;
    const chunks: Buffer[] = [];
    let size = 0;
    const handler: Dispatcher.DispatchHandler = {
      // Its presence tells undici this handler speaks the controller-based API.
      onRequestStart() {},
      onRequestUpgrade(_controller, _statusCode, headers, socket) {
        resolve({ kind: 'upgraded', headers: headers as Record<string, string | string[] | undefined>, socket: socket as Duplex });
      },
      onResponseStart(_controller, statusCode, headers, statusMessage) {
        answer = { statusCode, statusMessage: statusMessage ?? '', headers: headers as Record<string, string | string[] | undefined> };
      },
      onResponseData(_controller, chunk) {
        if (size >= MAX_REFUSAL_BODY_BYTES) return;
        const kept = chunk.subarray(0, MAX_REFUSAL_BODY_BYTES - size);
        chunks.push(kept);
        size += kept.length;
      },
      onResponseEnd() {
        if (answer === undefined) return reject(new Error('the region ended without an answer'));
        resolve({ kind: 'answered', ...answer, body: Buffer.concat(chunks, size) });
      },
      onResponseError(_controller, err) {
        reject(err);
      },
    };
    dispatcher.dispatch({ path: options.path, method: 'GET', headers: options.headers, upgrade: options.protocol }, handler);
  });
}
