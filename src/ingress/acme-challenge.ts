/**
 * HTTP-01 answers on the plain HTTP listener: `GET /.well-known/acme-challenge/<token>` answers the
 * key authorisation the ordering router stored in the vault (RFC 8555 §8.3). Any router may get
 * the CA's request, so the answer is read from the shared vault: a registry round trip, taken only
 * for this path and only for a well-formed token. Lookups in progress are capped, so a flood of
 * made-up tokens costs a bounded number of registry reads and is answered 503 beyond that.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isChallengeToken, type CertificateVault } from '../core/certificate-vault.js';

export const ACME_CHALLENGE_PREFIX = '/.well-known/acme-challenge/';

export interface AcmeChallengeOptions {
  readonly vault: Pick<CertificateVault, 'readChallenge'>;
  /** Lookups in progress at once (default 32). */
  readonly maxLookups?: number;
  readonly onError?: (err: unknown) => void;
}

/** A handler that answers the request and returns true when it is an HTTP-01 challenge, else returns false. */
export function createAcmeChallengeResponder(options: AcmeChallengeOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const maxLookups = options.maxLookups ?? 32;
  let lookups = 0;
  return function answerAcmeChallenge(req, res) {
    const url = req.url ?? '';
    if (!url.startsWith(ACME_CHALLENGE_PREFIX)) return false;
    const token = url.slice(ACME_CHALLENGE_PREFIX.length);
    if ((req.method !== 'GET' && req.method !== 'HEAD') || !isChallengeToken(token)) {
      text(res, 404, 'no such challenge\n');
      return true;
    }
    if (lookups >= maxLookups) {
      res.setHeader('retry-after', '1');
      text(res, 503, 'busy\n');
      return true;
    }
    lookups++;
    options.vault.readChallenge(token).then(
      (answer) => {
        lookups--;
        if (answer === null) text(res, 404, 'no such challenge\n');
        else text(res, 200, answer);
      },
      (err: unknown) => {
        lookups--;
        options.onError?.(err);
        text(res, 503, 'the certificate vault is unreachable\n');
      },
    );
    return true;
  };
}

function text(res: ServerResponse, status: number, body: string): void {
  // The client may have gone while the vault answered.
  if (res.destroyed || res.headersSent) return;
  res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}
