/**
 * What bounds a public listener's clients at the socket and HTTP level, and the defaults. Apart from
 * public-servers.ts so that the CLI's help can show the defaults without loading the listeners.
 */
export interface ServerLimits {
  /** Largest request head, HTTP/1 (→ 431) and HTTP/2 header list. */
  readonly maxHeaderBytes: number;
  /** Whole head must arrive within this (slowloris). */
  readonly headersTimeoutMs: number;
  /** Whole request (head and body) must arrive within this (slow bodies). */
  readonly requestTimeoutMs: number;
  /** HTTP/1.1: how long a connection may wait for its next request before it is closed (Node's keepAliveTimeout). */
  readonly keepAliveTimeoutMs: number;
  /**
   * HTTP/2: how long a session may carry no frame at all before it is asked to go (GOAWAY; its
   * streams in progress finish). Node has no head timeout for HTTP/2: this bounds an idle session.
   */
  readonly http2IdleTimeoutMs: number;
  /** How often Node checks the two timeouts above; its 30 s default would let slow clients linger. */
  readonly checkIntervalMs: number;
  /** Open connections per listener. */
  readonly maxConnections: number;
  readonly tlsHandshakeTimeoutMs: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  maxHeaderBytes: 16 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 300_000,
  keepAliveTimeoutMs: 5_000,
  http2IdleTimeoutMs: 60_000,
  checkIntervalMs: 1_000,
  maxConnections: 10_000,
  tlsHandshakeTimeoutMs: 10_000,
};
