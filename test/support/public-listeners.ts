/**
 * The router's public listeners alone (PublicServers, no routing behind them) on free loopback
 * ports, one handler answering both: what the ingress tests that exercise the listeners themselves
 * (HTTP/2 streams, lingering close, ticket keys) start. `extra` overrides any option; without a
 * `tls` of its own a self-signed certificate is made for `names`.
 */
import { generateSelfSignedCertificate } from '../../src/ingress/certificates/dev-certificate.js';
import type { AnyRequest, AnyResponse } from '../../src/ingress/edge-handler.js';
import { PublicServers, type PublicServersOptions } from '../../src/ingress/public-servers.js';
import { DEFAULT_LIMITS } from '../../src/ingress/server-limits.js';

export interface StartedListeners {
  readonly servers: PublicServers;
  readonly https: number;
  readonly http: number;
}

/** Answers `res` with `status` and `body`: the listeners hand handlers their own response types, which all have these two calls. */
export function answer(res: AnyResponse, status: number, body: string): void {
  (res as unknown as { writeHead(s: number): { end(b: string): void } }).writeHead(status).end(body);
}

export async function startPublicListeners(
  handle: (req: AnyRequest, res: AnyResponse) => void,
  extra: Partial<PublicServersOptions> = {},
  names: string[] = ['*.telnyxcompute.com', 'localhost'],
): Promise<StartedListeners> {
  const servers = new PublicServers({
    bindAddress: '127.0.0.1',
    httpsPort: 0,
    httpPort: 0,
    tls: extra.tls ?? (await generateSelfSignedCertificate({ names })),
    plainHttp: 'redirect',
    limits: DEFAULT_LIMITS,
    handleHttps: handle,
    handlePlain: handle,
    ready: () => true,
    ...extra,
  });
  const ports = await servers.start();
  return { servers, https: ports.https!, http: ports.http };
}
