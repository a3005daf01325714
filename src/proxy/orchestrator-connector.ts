/**
 * How the router opens connections to orchestrators: undici's connector, with
 * - the server name (SNI, and the name the certificate must carry) taken from the orchestrator's
 *   own URL, whatever the request said (pools.ts, UPSTREAM_SERVERNAME): left out, undici's
 *   connector derives it from the host it connects to (no SNI for an IP address, RFC 6066);
 * - TLS settings that can change while the router runs (a rotated client certificate): new
 *   connections take the new ones, open connections keep theirs (TLS looks at certificates only
 *   in the handshake).
 * One connector serves the region pools and the prober alike.
 */
import { createSecureContext } from 'node:tls';
import { buildConnector } from 'undici';
import type { OrchestratorTls } from '../core/types.js';
import { thrownText } from '../core/errors.js';

export class OrchestratorConnector {
  private inner: buildConnector.connector;
  private tlsNow: OrchestratorTls | null;

  constructor(
    private readonly timeoutMs: number,
    tls: OrchestratorTls | null = null,
  ) {
    this.tlsNow = tls;
    this.inner = this.build(tls);
  }

  /** For undici's `connect` option (a Pool's, an Agent's). */
  readonly connect: buildConnector.connector = (opts, callback) => this.inner({ ...opts, servername: undefined }, callback);

  get tls(): OrchestratorTls | null {
    return this.tlsNow;
  }

  /** New connections use `tls` from now on (a fresh TLS session cache with it). */
  setTls(tls: OrchestratorTls | null): void {
    this.tlsNow = tls;
    this.inner = this.build(tls);
  }

  /**
   * One secure context per settings, built at the first TLS connection: given `ca`/`cert`/`key`,
   * node:tls builds one for every tls.connect, and with Node's bundled roots in `ca` (~145
   * certificates, orchestrator-tls.ts) that is ~20 ms of the event loop per new connection.
   */
  private build(tls: OrchestratorTls | null): buildConnector.connector {
    const plain = buildConnector({ timeout: this.timeoutMs });
    if (tls === null) return plain;
    let secure: buildConnector.connector | undefined;
    return (opts, callback) => {
      if (opts.protocol !== 'https:') return plain(opts, callback);
      if (secure === undefined) {
        try {
          secure = buildConnector({ timeout: this.timeoutMs, secureContext: createSecureContext({ ...tls }) });
        } catch (err) {
          return callback(err as Error, null);
        }
      }
      return secure(opts, callback);
    };
  }
}

export interface TlsReloadOptions {
  /** Reads and checks the files again (config/orchestrator-tls.ts); rejects when one is bad. */
  readonly read: () => Promise<OrchestratorTls | null>;
  /** How often to look (default 60 s). */
  readonly everyMs?: number;
  /** Told when new settings were taken, or when the files could not be used (the last good ones stay). */
  readonly onEvent?: (event: { readonly type: 'reloaded' } | { readonly type: 'refused'; readonly reason: string }) => void;
}

/**
 * Re-reads the TLS files once a period and hands changed settings to `connector`. A bad read (a
 * half-written file, a key that does not match yet) keeps what was in use, reported once per
 * distinct reason: certificate rotations write two files, and one look may fall between them.
 */
export function reloadOrchestratorTls(connector: OrchestratorConnector, options: TlsReloadOptions): { stop(): void } {
  let lastRefusal: string | null = null;
  let running = false;
  const look = async () => {
    if (running) return;
    running = true;
    try {
      const next = await options.read();
      lastRefusal = null;
      if (!sameTls(next, connector.tls)) {
        connector.setTls(next);
        options.onEvent?.({ type: 'reloaded' });
      }
    } catch (err) {
      const reason = thrownText(err);
      if (reason !== lastRefusal) options.onEvent?.({ type: 'refused', reason });
      lastRefusal = reason;
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void look(), options.everyMs ?? 60_000).unref();
  return { stop: () => clearInterval(timer) };
}

function sameTls(a: OrchestratorTls | null, b: OrchestratorTls | null): boolean {
  return a?.ca === b?.ca && a?.cert === b?.cert && a?.key === b?.key;
}
