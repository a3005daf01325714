/**
 * The public listeners: HTTPS (TLS 1.2/1.3, ALPN h2 + http/1.1, one http2 secure server with
 * allowHTTP1) and plain HTTP (308 to HTTPS, or routing when TLS ends at a trusted load balancer).
 * Owns the slow-client and size limits and the drain on shutdown; knows nothing of routing.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { constants, createSecureServer, type Http2SecureServer, type Http2Session, type IncomingHttpHeaders, type SecureServerOptions, type ServerHttp2Stream } from 'node:http2';
import { Socket, type Server as NetServer } from 'node:net';
import type { SecureContext, TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import { httpsRedirectLocation } from './https-redirect.js';
import type { AnyRequest, AnyResponse } from './edge-handler.js';
import { AddressQuota } from './address-quota.js';
import { ConnectRate } from './connect-rate.js';
import { HandOffServer } from './hand-off-server.js';
import { endUpgradedSocket, rawErrorReply, sendError, statusOf, type EdgeErrorCode } from './error-response.js';
import { answersLeft, closeIdleByAnswersOnClose, http2AnswerLeaving } from '../core/idle-http-close.js';
import { limitKeyOf } from '../core/ip.js';
import { peerOfSocket } from './proxy-protocol/listener.js';
import { lengthOf, PenaltyBox } from '../core/penalty-box.js';
import { frameFloodOf, guardAgainstResetFloods, type FrameFloodKind } from './reset-flood-guard.js';
import { ResetTallies } from './reset-tally.js';
import { installTicketKeyRing, type TicketKeys } from './certificates/ticket-key-callback.js';
import { serveHttp2Stream } from './http2-stream-pair.js';
import { afterAnswerAhead, answerIgnoringUpgrade } from './ignored-upgrade.js';
import { holdsTunnels, type ExtendedConnectHandler } from './extended-connect.js';
import { SendStallWatch } from './send-stall-watch.js';
import { readSessionAgain, sessionQuietSince, wasReclaimed, type ConnectionFacts } from './idle-connections.js';
import { EndedSessionSweep } from './http2-ended-sessions.js';
import { ConnectionCap } from './connection-cap.js';
import { standingOf, type Standing } from './idle-reclaim.js';
import { DEFAULT_LINGER_LIMITS, LingeringClose, type LingerLimits } from './lingering-close.js';
import { handshakeFailureOf, noHandshakeFailures, type HandshakeFailureCounts } from '../core/tls-handshake-failure.js';
import { answeredByRouter } from '../proxy/connection-riders.js';
import { CONNECT_MESSAGE, HTTP2_MAX_HEADER_LIST_PAIRS, http2HeaderListSize } from './admission.js';
import type { ServerLimits } from './server-limits.js';


/** Each HTTP/2 connection's receive window, for all its streams together: 1 MiB, as Go's server (Caddy) and Envoy's edge advice have it. */
export const HTTP2_CONNECTION_WINDOW_BYTES = 1024 * 1024;

export interface PublicServersOptions {
  readonly bindAddress: string;
  readonly httpsPort: number;
  readonly httpPort: number;
  /** TLS material and SNI callback; null = no HTTPS listener. */
  readonly tls: Pick<SecureServerOptions, 'SNICallback' | 'cert' | 'key' | 'minVersion' | 'maxVersion' | 'ciphers' | 'honorCipherOrder' | 'ecdhCurve'> | null;
  readonly plainHttp: 'redirect' | 'serve';
  /**
   * The port redirects name, where clients reach HTTPS on another port than the listener's (a
   * container's 8443 published as 443): the listener's own sent them to a port nobody published.
   */
  readonly redirectPort?: number;
  readonly limits: ServerLimits;
  readonly handleHttps: (req: AnyRequest, res: AnyResponse) => void;
  readonly handlePlain: (req: AnyRequest, res: AnyResponse) => void;
  /** HTTP/1.1 Upgrade requests (WebSocket), per listener. */
  readonly upgradeHttps?: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  readonly upgradePlain?: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** WebSockets over HTTP/2 (RFC 8441) on the HTTPS listener; absent, extended CONNECT is not announced. */
  readonly connectHttps?: ExtendedConnectHandler;
  readonly ready: () => boolean;
  /**
   * Puts a listener of its own in front of a public server (PROXY protocol, when configured), which
   * must hand it only connections both checks keep: `hasRoom` (connection-cap.ts: room to send a
   * header, one reserve past the cap at most) asked at accept, before anything is read; `admit` (the
   * per-address limits, then the cap with its look for room) once the client's address is known.
   * Its close closes the server too (HandOffServer), as the drain expects.
   */
  readonly wrapListener?: (server: NetServer, admit: (socket: Socket) => boolean, hasRoom: () => boolean) => NetServer;
  readonly onError?: (where: string, err: Error) => void;
  /** Open connections per peer address (0 = no limit). */
  readonly maxConnectionsPerAddress?: number;
  /** New connections per peer address per second, bursts of twice that (0 = no limit). */
  readonly maxConnectRatePerAddress?: number;
  /** Peers exempt from the per-address limit (trusted proxies carry many clients). */
  readonly exemptPeer?: (address: string) => boolean;
  /**
   * How long a client may take nothing of what waits for it (--send-timeout; 0 or absent: no
   * limit): an HTTP/2 answer already ended is reset, an HTTP/1.1 connection closed (send-stall-watch.ts).
   */
  readonly sendTimeoutMs?: number;
  /** HTTP/2 streams open at once per connection (default 128). */
  readonly maxConcurrentStreams?: number;
  /** How long an address whose connection was closed as a reset or frame flood is refused at connect (0 = not at all). */
  readonly floodPenaltyMs?: number;
  /**
   * Told when this process put an address (its limit key) in the penalty box, so other processes
   * serving the same port can do the same (`penalizeAddress`): with --workers, the kernel hands the
   * attacker's next connections to any worker.
   */
  readonly onPenalized?: (address: string, untilMs: number, lengthMs: number) => void;
  /** Told when an HTTP/2 connection was closed for a frame flood (for the log). */
  readonly onFrameFlood?: (address: string, kind: FrameFloodKind) => void;
  /** A listener closed a new connection as it came, at its --max-connections (nothing idle long enough to close). */
  readonly onAtCapacity?: (listener: 'https' | 'http', maxConnections: number) => void;
  /** Answers ACME HTTP-01 challenges on the plain listener (returns true when the request was one). */
  readonly answerAcmeChallenge?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** Bounds of an HTTP/1 connection's lingering close (lingering-close.ts; the `--lingering-*` flags). */
  readonly lingering?: LingerLimits;
  /**
   * Told of each request Node's HTTP/1 parser refused (answerClientError), once its answer went out
   * or could not, of each HTTP/1 request line of another version (refusedHttpVersion), which
   * the parser takes, and of each HTTP/1 CONNECT (refuseConnect): `status` 400, 431, 408 or 405,
   * or 0 when the connection was cut without one;
   * `clientIp` the peer (PROXY protocol's announced source). For the access log and requests_total.
   */
  readonly onRefusedRequest?: (clientIp: string, status: number, code: EdgeErrorCode) => void;
}

type SniCallback = NonNullable<SecureServerOptions['SNICallback']>;

export interface ListeningPorts {
  readonly https: number | null;
  readonly http: number;
}

export class PublicServers {
  private https: Http2SecureServer | undefined;
  private http: HttpServer | undefined;
  private readonly listeners: NetServer[] = [];
  /**
   * Open HTTP/2 sessions by their peer's limit key (read once: a session that failed has no socket
   * left to ask). By key, so a penalty reaches its address's sessions without a walk over everyone's.
   */
  private readonly sessions = new Map<string, Set<Http2Session>>();
  /** Sessions of trusted peers: kept under their address's key like any, never closed for its penalty. */
  private readonly exemptSessions = new WeakSet<Http2Session>();
  /** Sessions gone quiet are asked to read again, so that the leaving of a client whose session nghttp2 ended is seen. */
  private readonly endedSessions = new EndedSessionSweep<Http2Session>({ sessions: () => this.allSessions(), quietSince: sessionQuietSince, readAgain: readSessionAgain });
  private draining = false;
  private httpsPort = 0;
  /** The session-ticket keys (ticket-key-callback.ts). */
  private ticketKeys: TicketKeys | undefined;
  /** Client connections open right now, across the public listeners. */
  get openConnections(): number {
    return this.admitted.size;
  }
  /** Connections refused because their address had too many open. */
  refusedConnections = 0;
  /** HTTP/2 connections closed for resetting most of their streams (rapid reset). */
  resetFloods = 0;
  /** Connections refused because their address opened new ones faster than its rate. */
  rateRefusedConnections = 0;
  /** HTTP/2 connections nghttp2 or Node closed for a flood of control or invalid frames (frameFloodOf). */
  frameFloods = 0;
  /** Connections refused because their address recently flooded (penalty box). */
  penalizedConnections = 0;
  /** Each listener's --max-connections, and its reclaiming of idle connections near it (connection-cap.ts). */
  private readonly caps: ConnectionCap[] = [];
  /** Connections closed as they came because their listener was at --max-connections. */
  get droppedAtCapacity(): number {
    return this.caps.reduce((sum, cap) => sum + cap.refused, 0);
  }
  /** Connections of addresses holding more than their share closed as they came near --max-connections. */
  get droppedHeavyNearCapacity(): number {
    return this.caps.reduce((sum, cap) => sum + cap.refusedHeavy, 0);
  }
  /** Idle connections closed to make room for new ones near --max-connections. */
  get reclaimedIdleConnections(): number {
    return this.caps.reduce((sum, cap) => sum + cap.reclaimed, 0);
  }
  /**
   * Requests the plain listener answered with a redirect to HTTPS, or refused because no redirect
   * could be made of them (a bad Host or path): they reach no function and write no access line,
   * so without this count how much plain HTTP still comes was nowhere to be read.
   */
  readonly httpsRedirects = { redirected: 0, refused: 0 };
  /** TLS handshakes that failed on the HTTPS listener, by reason (tls-handshake-failure.ts). */
  readonly tlsHandshakeFailures: HandshakeFailureCounts = noHandshakeFailures();
  /** Whether the HTTPS server has a certificate of its own (for clients naming none, or a name no other certificate covers). */
  private hasDefaultCertificate = false;
  /**
   * TLS connections whose SNI name found no certificate while the server had none of its own
   * either: their handshake fails as a cipher or signature algorithm OpenSSL could not agree on,
   * counted as no_certificate. Only such connections are added, and each goes when it is collected.
   */
  private readonly uncovered = new WeakSet<object>();
  private readonly perAddress: AddressQuota;
  /** Every connection kept, until it closes: counted, and reached by forceClose even when no server has a request on it (a silent client, a handshake under way). */
  private readonly admitted = new Set<Socket>();
  /**
   * HTTP/1 connections (plain, and over TLS without h2), as their HTTP server reads them: a drain
   * tells the answer in progress on each to close its connection (closeInFlightHttp1).
   */
  private readonly http1Connections = new Set<Socket>();
  /** HTTP/2 connections (their TLS sockets), until they close: a drain waits for their answers to leave (answersLeft). */
  private readonly http2Connections = new Set<Socket>();
  private readonly connectRate: ConnectRate;
  private readonly penalty: PenaltyBox;
  /** Each address's HTTP/2 streams and resets over its recent connections (reset-tally.ts). */
  private readonly resetTallies = new ResetTallies();
  /**
   * HTTP/1.1 connections whose client stopped taking bytes after the answer ended. A second past
   * the send timeout, so that an answer still in progress is cut by its own exchange first (logged
   * as send_timeout); its watchdog looks every 250 ms.
   */
  private readonly stalls: SendStallWatch | undefined;
  /** HTTP/1.1 connections closed because their client took nothing of their answers for the send timeout. */
  get sendStalledConnections(): number {
    return this.stalls?.closed ?? 0;
  }
  /**
   * HTTP/1 connections answered early and closed while their client still sent a body: read and
   * discarded for a while first, so that the close sends the client no reset (lingering-close.ts).
   */
  private readonly lingering: LingeringClose;
  /** HTTP/1 connections lingering right now (counted in openConnections, not in their address's limit). */
  get lingeringConnections(): number {
    return this.lingering.count;
  }
  /** HTTP/1 connections that lingered, since the start. */
  get lingeredConnections(): number {
    return this.lingering.lingered;
  }
  /**
   * Each kept connection's limit key (undefined for an exempt peer) and the giving back of its
   * per-address slot, once: when it starts to linger (it serves nothing more) or when it closes.
   * By the accepted socket, which a TLS socket names as its `_parent`.
   */
  private readonly admittedAs = new WeakMap<object, Admitted>();

  constructor(private readonly options: PublicServersOptions) {
    this.perAddress = new AddressQuota(options.maxConnectionsPerAddress ?? 0);
    this.connectRate = new ConnectRate(options.maxConnectRatePerAddress ?? 0);
    this.penalty = new PenaltyBox(options.floodPenaltyMs ?? 10_000);
    const sendTimeoutMs = options.sendTimeoutMs ?? 0;
    if (sendTimeoutMs > 0) this.stalls = new SendStallWatch({ timeoutMs: sendTimeoutMs + 1_000 });
    this.lingering = new LingeringClose(
      options.lingering ?? DEFAULT_LINGER_LIMITS,
      (socket) => this.admissionOf(socket)?.releaseSlot(),
      // Trusted peers carry many clients: their lingering is bounded by the pool only.
      (socket) => this.admissionOf(socket)?.key,
    );
  }

  isDraining(): boolean {
    return this.draining;
  }

  async start(): Promise<ListeningPorts> {
    const { limits, bindAddress } = this.options;
    let httpsPort: number | null = null;
    if (this.options.tls !== null) {
      // HTTP/2 has no head timeout in Node: an idle session (no frame at all) is closed instead.
      const http2IdleMs = limits.http2IdleTimeoutMs;
      this.hasDefaultCertificate = this.options.tls.cert !== undefined;
      const sni = this.options.tls.SNICallback;
      const https = createSecureServer({
        ...this.options.tls,
        ...(sni === undefined ? {} : { SNICallback: noticingUncoveredNames(sni, () => this.hasDefaultCertificate, this.uncovered) }),
        allowHTTP1: true,
        ALPNProtocols: ['h2', 'http/1.1'],
        // Node's http and https servers turn Nagle's algorithm off on every connection they accept;
        // its HTTP/2 server only once a connection has become an HTTP/2 session (after the
        // handshake), so its HTTP/1.1 connections (allowHTTP1) kept it. With Nagle on, the first
        // answer, a small write after the handshake's last ones (TLS 1.3's session tickets), waits
        // for the client's delayed ACK: 40 ms stalls on Linux, seen as a 40–50 ms maximum in every
        // HTTPS run of `npm run bench`'s latency probe (docs/performance-notes.md).
        noDelay: true,
        // Node's default is 120 s: a connection that never finishes its handshake would hold a
        // per-address slot and a --max-connections slot that long.
        handshakeTimeout: limits.tlsHandshakeTimeoutMs,
        // Node's default allows 2^32-1 concurrent streams: one connection could open any number of requests.
        settings: { maxHeaderListSize: http2HeaderListSize(limits.maxHeaderBytes), maxConcurrentStreams: this.options.maxConcurrentStreams ?? 128, enableConnectProtocol: this.options.connectHttps !== undefined },
        maxSessionInvalidFrames: 100,
        // Node's default, 128 pairs with each cookie crumb and pseudo-header counted, reset (no
        // answer, no access line) a browser holding about 125 cookies for a host; admission judges
        // the fields as sent (headerFieldCount) and answers 431. Bytes stay bounded by maxHeaderListSize,
        // which leaves room for what HTTP/2 counts on top of HTTP/1 (http2HeaderListSize): the head's
        // bytes are judged as HTTP/1's parser judges them, there too.
        maxHeaderListPairs: HTTP2_MAX_HEADER_LIST_PAIRS,
      });
      if (this.ticketKeys !== undefined) installTicketKeyRing(https, this.ticketKeys);
      const handleHttps = (req: IncomingMessage, res: ServerResponse) => {
        if (!refusedHttpVersion(req, res, this.refusedVersion)) this.options.handleHttps(req, res);
      };
      https.on('request', handleHttps);
      // Expect: 100-continue is answered by whoever reads the body (the exchange), not by Node up
      // front: a request refused without reading its body (413, 421, 429, …) gets no 100 (see the exchange's begin).
      https.on('checkContinue', handleHttps);
      // Any other Expect too: admission answers it 417, with its access line (Node's own had none).
      https.on('checkExpectation', handleHttps);
      // Node wires its HTTP/2 compatibility layer to 'stream' as soon as a 'request' listener
      // exists; that listener stays, for HTTP/1.1 over TLS (allowHTTP1). HTTP/2 streams take the
      // stream API instead, a quarter cheaper per request (http2-stream-pair.ts).
      https.removeAllListeners('stream');
      https.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => serveHttp2Stream(this.options.handleHttps, this.options.connectHttps, stream, headers, rawHeaders, this.options.sendTimeoutMs));
      (https as unknown as HttpServer).on('connect', this.refuseConnect);
      const upgradeHttps = this.options.upgradeHttps;
      if (upgradeHttps) {
        https.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
          socket.on('error', destroyQuietly); // see the plain port's
          if (refusedUpgradeVersion(req, socket, this.refusedVersion)) return;
          if (!answerIgnoringUpgrade(req, socket, handleHttps)) upgradeHttps(req, socket, head);
        });
      }
      https.on('session', (session: Http2Session) => {
        const peer = sessionAddress(session);
        const address = limitKeyOf(peer);
        const exempt = this.options.exemptPeer?.(peer) === true;
        guardAgainstResetFloods(session, {
          ...(exempt ? { sharedByClients: true } : { address: this.resetTallies.of(address, Date.now()) }),
          onFlood: () => {
            this.resetFloods++;
            this.penalize(session, peer, address);
          },
        });
        // nghttp2 (or Node) has already ended the session; what is left is the address.
        session.on('error', (err: Error) => {
          const kind = frameFloodOf(err);
          if (kind === null) return;
          this.frameFloods++;
          this.options.onFrameFlood?.(peer, kind);
          this.penalize(session, peer, address);
        });
        this.trackSession(session, address);
        if (exempt) this.exemptSessions.add(session);
        // Node leaves the connection's receive window at HTTP/2's initial 65,535 bytes, which then
        // caps every upload on the connection together at 64 KiB a round trip (about 1.3 MB/s at
        // 50 ms). Raising it costs no memory: Node gives connection-level window back as DATA
        // arrives, so what a connection can make us buffer is bounded by its streams' windows
        // (left at 64 KiB each, Envoy's advice for an edge) and its stream limit, not by this.
        session.setLocalWindowSize(HTTP2_CONNECTION_WINDOW_BYTES);
        // The idle timeout closes a connection that carried no frame for a while; one that
        // carries a WebSocket (RFC 8441) only waits for its next message, as an upgraded HTTP/1.1
        // socket would: then the timer is set again, to look once more a period later. The close
        // is a GOAWAY, not a cut: a request waiting for its function is as quiet as an idle
        // connection (no frame either way until the answer), and a tier deadline may be longer than
        // this timeout; cut, it was answered nothing and logged as the client's doing (seen in
        // review). Its own bounds (tier deadline, body and send timeouts) still hold; a connection
        // without streams closes at once.
        session.removeAllListeners('timeout');
        session.setTimeout(http2IdleMs);
        session.on('timeout', () => {
          // A session already closing (GOAWAY sent, on drain) finishes its streams; drain's deadline bounds it.
          if (session.closed || session.destroyed) return;
          if (holdsTunnels(session)) session.setTimeout(http2IdleMs);
          else session.close();
        });
        if (this.draining) session.close();
      });
      // No idle timeout on the server: it would also be the idle timeout of HTTP/1.1 sockets over
      // TLS, which Node destroys when it fires, a request waiting for its function included. Their
      // bounds are those of plain HTTP/1.1 (head, request, keep-alive, tier, send timeouts).
      this.applyHttp1Limits(https);
      https.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
        // Closed to make room before its ClientHello came (connection-cap.ts): counted as that.
        if (wasReclaimed((socket as TLSSocket & { _parent?: object | null })._parent ?? socket)) return void socket.destroy(err);
        const noCertificate = !this.hasDefaultCertificate && (this.uncovered.has(socket) || !sniOf(socket));
        this.tlsHandshakeFailures[handshakeFailureOf(err.code, noCertificate)]++;
        socket.destroy(err);
      });
      // HTTP/2 writes go from nghttp2 to the TLS socket's handle, past its stream buffer: its streams have their own timers.
      const stalls = this.stalls;
      https.on('secureConnection', (socket: Socket & { alpnProtocol?: string | false }) => {
        if (socket.alpnProtocol === 'h2') return this.trackHttp2(socket);
        this.trackHttp1(socket);
        stalls?.watch(socket);
      });
      // The drain closes the listeners, which closes the idle connections before beginDrain can:
      // by the rule that lets an answer still leaving go out.
      closeIdleByAnswersOnClose(https as unknown as HttpServer);
      this.https = https;
      this.endedSessions.start();
      httpsPort = await this.listen(https, this.options.httpsPort, bindAddress);
      this.httpsPort = httpsPort;
    }
    // Host is checked by the edge handler (same JSON answer on every listener), not by Node.
    const http = createHttpServer({ maxHeaderSize: limits.maxHeaderBytes, requireHostHeader: false }, (req, res) => this.handlePlain(req, res));
    http.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => this.handlePlain(req, res));
    http.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => this.handlePlain(req, res));
    this.applyHttp1Limits(http);
    const stalls = this.stalls;
    http.on('connection', (socket: Socket) => {
      this.trackHttp1(socket);
      stalls?.watch(socket);
    });
    http.on('connect', this.refuseConnect);
    const upgradePlain = this.options.upgradePlain;
    if (upgradePlain !== undefined) {
      http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        // Node took its own 'error' listener off the socket it hands over. Until a WebSocket tunnel
        // takes it (websocket-tunnel.ts listens then), it is answered (an h2c request's redirect)
        // or waits for the answers ahead of it: a client's reset meanwhile emitted an 'error' no
        // one heard, an uncaught exception that took the whole router down. A TLS socket has one
        // of its own; the plain port's had none.
        socket.on('error', destroyQuietly);
        if (refusedUpgradeVersion(req, socket, this.refusedVersion)) return;
        // Not a WebSocket (h2c, say): answered as the plain request it is, a redirect by default.
        if (answerIgnoringUpgrade(req, socket, (plainReq, plainRes) => this.handlePlain(plainReq, plainRes))) return;
        if (this.options.plainHttp === 'serve') upgradePlain(req, socket, head);
        else afterAnswerAhead(socket, () => endUpgradedSocket(socket, rawErrorReply('upgrade_required', 'upgrades (WebSocket) are served over HTTPS only', null)));
      });
    }
    closeIdleByAnswersOnClose(http);
    this.http = http;
    const httpPort = await this.listen(http, this.options.httpPort, bindAddress);
    return { https: httpsPort, http: httpPort };
  }

  /** Node's HTTP/1 timeouts and a JSON answer for requests its parser refuses. */
  private applyHttp1Limits(server: HttpServer | Http2SecureServer): void {
    const { limits } = this.options;
    const s = server as HttpServer;
    s.headersTimeout = limits.headersTimeoutMs;
    s.requestTimeout = limits.requestTimeoutMs;
    s.keepAliveTimeout = limits.keepAliveTimeoutMs;
    (s as unknown as { connectionsCheckingInterval: number }).connectionsCheckingInterval = limits.checkIntervalMs;
    // Read by Node's HTTP/1 parser setup, also for the HTTP/1 side of the http2 server (allowHTTP1).
    (s as unknown as { maxHeaderSize: number }).maxHeaderSize = limits.maxHeaderBytes;
    const refused = (socket: Socket, status: number, code: EdgeErrorCode) => this.refusedRequest(socket, status, code);
    (server as HttpServer).on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => answerClientError(err, socket, refused, this.lingering));
  }

  /**
   * A request Node's parser refused, answered (or cut): one access line. Not a connection that sent
   * nothing at all before its head timeout (an unused preconnect, a port scan): Node answers it 408
   * too, but it carried no request, and nginx logs none either.
   */
  private refusedRequest(socket: Socket, status: number, code: EdgeErrorCode): void {
    const report = this.options.onRefusedRequest;
    if (report === undefined || (code === 'request_timeout' && this.sentNothing(socket))) return;
    report(peerOfSocket(socket), status, code);
  }

  /**
   * A request line of another version, refused by the router where the parser took it
   * (refusedHttpVersion): logged as the parser's own refusals are, HTTP/1.2 among them, since
   * nothing of its head is trusted either. A field, not a method: one function for every request,
   * none made per request.
   */
  private readonly refusedVersion = (socket: Socket): void => this.refusedRequest(socket, statusOf('bad_request'), 'bad_request');

  /**
   * An HTTP/1 CONNECT, on either listener: refused 405 (refuseConnect), logged as the parser's
   * refusals are. A field, not a method: one function for every request, none made per request.
   */
  private readonly refuseConnect = (req: IncomingMessage, socket: Duplex): void =>
    refuseConnect(req.socket, socket, (status) => this.refusedRequest(req.socket, status, 'method_not_allowed'));

  /**
   * Whether no byte of HTTP came on `socket`. A TLS socket counts what it decrypted (so none of the
   * handshake); a plain one what it read, less what went before HTTP (the PROXY protocol header).
   */
  private sentNothing(socket: Socket): boolean {
    if ((socket as TLSSocket).encrypted === true) return socket.bytesRead === 0;
    return socket.bytesRead <= (this.admissionOf(socket)?.readBeforeHttp ?? 0);
  }

  private handlePlain(req: IncomingMessage, res: ServerResponse): void {
    if (refusedHttpVersion(req, res, this.refusedVersion)) return;
    const path = req.url ?? '/';
    if (path === '/healthz') return plainText(res, 200, 'ok\n');
    if (path === '/readyz') return this.options.ready() && !this.draining ? plainText(res, 200, 'ready\n') : plainText(res, 503, 'not ready\n');
    // ACME HTTP-01 comes over plain HTTP on port 80 (RFC 8555 §8.3), before any redirect or routing.
    if (this.options.answerAcmeChallenge?.(req, res) === true) return;
    if (this.options.plainHttp === 'serve') return this.options.handlePlain(req, res);
    const location = httpsRedirectLocation(req.headers.host ?? '', path, this.options.redirectPort ?? this.httpsPort);
    if (location === null) {
      this.httpsRedirects.refused++;
      sendError(res, 'bad_request', 'cannot redirect this request to HTTPS', '-');
      return;
    }
    this.httpsRedirects.redirected++;
    res.writeHead(308, { location, 'content-length': 0, connection: 'close' });
    res.end();
  }

  /**
   * A connection from `peer` flooded: its `address` (limitKeyOf: an IPv6 peer's /64) is refused at
   * connect for the penalty time, and its other HTTP/2 connections, opened before this one
   * tripped, are closed too (the penalty box only stops new ones). Trusted peers carry many
   * clients and are spared.
   */
  private penalize(session: Http2Session, peer: string, address: string): void {
    if (this.options.exemptPeer?.(peer) === true) return;
    const penalty = this.penalty.add(address, Date.now());
    this.closeSessionsOf(address, session);
    if (penalty !== null) this.options.onPenalized?.(address, penalty.untilMs, lengthOf(penalty));
  }

  /** Keeps `session` under its address's key until it closes. */
  private trackSession(session: Http2Session, address: string): void {
    let ofAddress = this.sessions.get(address);
    if (ofAddress === undefined) this.sessions.set(address, (ofAddress = new Set()));
    ofAddress.add(session);
    session.once('close', () => {
      ofAddress.delete(session);
      if (ofAddress.size === 0 && this.sessions.get(address) === ofAddress) this.sessions.delete(address);
    });
  }

  /** A copy: closing a session may end it (and drop it from its set) before the walk is over. */
  private allSessions(): Http2Session[] {
    const all: Http2Session[] = [];
    for (const ofAddress of this.sessions.values()) all.push(...ofAddress);
    return all;
  }

  /**
   * Another process caught `address` (a limit key) flooding, for a penalty `lengthMs` long: refuse
   * it here too until `untilMs`, and close its HTTP/2 connections; a penalty already over is only
   * remembered, toward the address's next offence. The exemption was judged where the flood was seen.
   */
  penalizeAddress(address: string, untilMs: number, lengthMs: number): void {
    const nowMs = Date.now();
    this.penalty.addUntil(address, untilMs, lengthMs, nowMs);
    if (untilMs > nowMs) this.closeSessionsOf(address, undefined);
  }

  /** Closes `address`'s HTTP/2 sessions but the one that flooded (which closes itself). */
  private closeSessionsOf(address: string, flooding: Http2Session | undefined): void {
    // On the next turn: this may run inside nghttp2's callback.
    setImmediate(() => {
      for (const other of this.sessions.get(address) ?? []) {
        if (other === flooding || other.closed || other.destroyed || this.exemptSessions.has(other)) continue;
        this.penalizedConnections++;
        other.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM);
        setImmediate(() => other.destroy());
      }
    });
  }

  /**
   * Whether to keep a freshly accepted connection, asked before any TLS work (hand-off-server.ts):
   * an address in the penalty box, over its connect rate or at its open-connection limit is refused.
   * A kept connection is counted until it closes.
   */
  private admit(socket: Socket): boolean {
    const peer = peerOfSocket(socket);
    const address = limitKeyOf(peer);
    const now = Date.now();
    // A trusted peer is never held by a penalty: one flooding client sharing its IPv6 /64 (the key
    // penalties are kept under) would otherwise refuse every client behind the proxy.
    const exempt = this.options.exemptPeer?.(peer) === true;
    if (!exempt && this.penalty.holds(address, now)) {
      this.penalizedConnections++;
      return false;
    }
    if (!exempt && !this.connectRate.tryTake(address, now)) {
      this.rateRefusedConnections++;
      return false;
    }
    if (!exempt && !this.perAddress.tryTake(address)) {
      this.refusedConnections++;
      return false;
    }
    this.admitted.add(socket);
    // What was read before HTTP: the PROXY protocol header (what came after it is put back, unread).
    const readBeforeHttp = socket.bytesRead - socket.readableLength;
    let slotHeld = !exempt;
    const releaseSlot = () => {
      // An exempt peer took nothing: giving back under its key would lower the count of clients
      // counted under the same key (an IPv6 /64 shared with a trusted proxy), letting them past.
      if (!slotHeld) return;
      slotHeld = false;
      this.perAddress.release(address);
    };
    this.admittedAs.set(socket, { key: exempt ? undefined : address, releaseSlot, readBeforeHttp, acceptedAtMs: performance.now() });
    socket.once('close', () => {
      this.admitted.delete(socket);
      releaseSlot();
    });
    return true;
  }

  /**
   * How a connection just admitted stands near its listener's cap (idle-reclaim.ts, Standing): by
   * how many its address holds, on both listeners; a trusted proxy's, or any when addresses are
   * not counted (--max-conns-per-ip 0), is unknown.
   */
  private standingOf(socket: Socket): Standing {
    const key = this.admittedAs.get(socket)?.key;
    if (key === undefined || this.perAddress.limit === 0) return 'unknown';
    return standingOf(this.perAddress.held(key), this.options.limits.maxConnections, this.perAddress.addresses);
  }

  /**
   * How `socket` (accepted, or a TLS socket over it) was admitted. A lingering connection gives its
   * slot back through it: a client answered 413 may connect again at once.
   */
  private admissionOf(socket: Socket): Admitted | undefined {
    return this.admittedAs.get(socket) ?? this.admittedAs.get((socket as Socket & { _parent?: object })._parent ?? socket);
  }

  private listen(server: NetServer, port: number, host: string): Promise<number> {
    // Set once the listener exists; no connection is accepted before it listens.
    let cap: ConnectionCap | undefined;
    const admit = (socket: Socket): boolean => this.admit(socket);
    const outer =
      // Behind the PROXY protocol the cap is held at accept, before the client's address is known;
      // idle connections are closed for room (and a heavy address refused near the cap) only once
      // the header has named the client and its per-address limits have let it in, as below.
      this.options.wrapListener?.(server, (socket) => admit(socket) && cap!.admit(socket), () => cap!.hasRoom()) ??
      new HandOffServer(server, (socket, handOff) => {
        // Per-address limits first: a connection they refuse must not cost an idle one its place.
        if (admit(socket) && cap!.admit(socket)) handOff(socket);
        else socket.destroy();
      });
    this.listeners.push(outer);
    const isHttps = server === (this.https as unknown);
    const kind = isHttps ? 'https' : 'http';
    const onAtCapacity = this.options.onAtCapacity;
    cap = new ConnectionCap({
      listener: outer,
      server,
      cap: this.options.limits.maxConnections,
      ...(onAtCapacity === undefined ? {} : { onRefused: () => onAtCapacity(kind, this.options.limits.maxConnections) }),
      accepted: this.admitted,
      standingOf: (socket) => this.standingOf(socket),
      sessions: () => (isHttps ? this.allSessions() : []),
      facts: this.connectionFacts,
    });
    this.caps.push(cap);
    return new Promise((resolve, reject) => {
      outer.once('error', reject);
      outer.listen(port, host, () => {
        outer.off('error', reject);
        resolve((outer.address() as { port: number }).port);
      });
    });
  }

  /** What idle-connections.ts asks of a connection, from its admission. */
  private readonly connectionFacts: ConnectionFacts = {
    acceptedAtMs: (socket) => this.admissionOf(socket)?.acceptedAtMs,
    sentNothing: (socket) => this.sentNothing(socket),
  };

  /** New default certificate (clients without SNI never reach the SNICallback, so the server's own context must follow reloads). */
  updateDefaultCredentials(credentials: { cert: string; key: string } | undefined): void {
    if (this.https === undefined || this.options.tls === null) return;
    const { SNICallback: _sni, cert: _cert, key: _key, ...hardening } = this.options.tls;
    // Without credentials, a context with none: a name no certificate covers fails its handshake,
    // as on a router started without a default certificate.
    this.https.setSecureContext({ ...hardening, ...credentials });
    this.hasDefaultCertificate = credentials !== undefined;
    // A new context comes with a random ticket key of its own: keep the shared ones.
    if (this.ticketKeys !== undefined) installTicketKeyRing(this.https, this.ticketKeys);
  }

  /**
   * The session-ticket keys for new TLS connections (ticket-keys.ts): the current one seals, each
   * opens. They live on the server's own context, which OpenSSL uses to seal and open tickets
   * whatever certificate SNI chose. False when only the current one can be used (this Node lacks
   * the hook ticket-key-callback.ts needs).
   */
  setTicketKeys(keys: TicketKeys): boolean {
    this.ticketKeys = keys;
    return this.https === undefined ? true : installTicketKeyRing(this.https, keys);
  }

  /** Keeps an HTTP/2 connection until it closes (answersLeft); one its client leaves open is cut. */
  private trackHttp2(socket: Socket): void {
    if (socket.destroyed) return;
    this.http2Connections.add(socket);
    socket.once('close', () => this.http2Connections.delete(socket));
    cutWhenLeftOpen(socket);
  }

  /** Keeps an HTTP/1 connection until it closes; its close after an early answer lingers. */
  private trackHttp1(socket: Socket): void {
    if (socket.destroyed) return;
    this.lingering.install(socket);
    this.http1Connections.add(socket);
    socket.once('close', () => this.http1Connections.delete(socket));
  }

  /**
   * The answers in progress when the drain began: the edge handler says `Connection: close` only
   * on requests that arrive during it, so a request already waiting for its function was answered
   * keep-alive, its client sent its next request on that connection, and the drain's end cut it
   * (ECONNRESET on a POST nobody can tell was served or not: seen in review). One whose head has
   * not gone out says `Connection: close`; one already streaming closes its connection once it
   * ends, as Node itself does for a client that half-closed (`_last`).
   */
  private closeInFlightHttp1(): void {
    for (const socket of this.http1Connections) {
      const res = (socket as Socket & { _httpMessage?: (ServerResponse & { _last?: boolean }) | null })._httpMessage;
      if (res === undefined || res === null || res.writableEnded) continue;
      if (!res.headersSent) res.shouldKeepAlive = false;
      else res._last = true;
    }
  }

  /** Stop accepting, ask keep-alive clients to go (Connection: close / GOAWAY), close idle connections. */
  beginDrain(): void {
    this.draining = true;
    for (const listener of this.listeners) listener.close();
    for (const session of this.allSessions()) session.close();
    this.closeInFlightHttp1();
    // The idle connections were closed by each listener's close, which closes its server: by the
    // rule that lets an answer that has ended but is still leaving go out (closeIdleByAnswersOnClose),
    // not Node's, which cut it.
  }

  /**
   * Resolves true once no HTTP/1 connection lingers after an early answer, or false when
   * `timeoutMs` (what is left of the drain) passes first.
   */
  async lingeringSettled(timeoutMs: number): Promise<boolean> {
    if (this.lingering.count === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const settled = await Promise.race([this.lingering.settled().then(() => true as const), timedOut]);
    clearTimeout(timer);
    return settled;
  }

  /**
   * Resolves true once no connection holds an answer still leaving for its client, or false when
   * `timeoutMs` (what is left of the drain) passes first: forceClose() destroys them all. HTTP/2's
   * included: a stream the router has ended may still wait for its client's flow-control window.
   */
  async answersLeft(timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    if (!(await answersLeft(this.http1Connections, timeoutMs))) return false;
    return answersLeft(this.http2Connections, Math.max(0, deadline - performance.now()), http2AnswerLeaving);
  }

  /** After the drain timeout: cut whatever is left. */
  forceClose(): void {
    for (const session of this.allSessions()) session.destroy();
    this.http?.closeAllConnections();
    (this.https as unknown as HttpServer | undefined)?.closeAllConnections?.();
    for (const socket of this.admitted) socket.destroy();
    this.lingering.destroyAll();
    this.stalls?.stop();
    this.endedSessions.stop();
  }
}

/**
 * How long a client may keep its side of an HTTP/2 connection open after the router closed its own
 * (nginx's lingering_timeout): enough for a GOAWAY, and a request sent across it, to be read.
 */
export const HTTP2_CLOSE_GRACE_MS = 5_000;

/**
 * Node closes an HTTP/2 connection gracefully (GOAWAY, then it ends the socket once the streams are
 * done, and reads on until the client closes, so that a request sent meanwhile meets no reset that
 * could take the GOAWAY with it), and waits for the client for as long as it likes: one that never
 * closed its side held its connection, its per-address slot and a --max-connections place for good
 * (seen still open 20 s after the idle timeout's GOAWAY, and never closed). The socket is cut
 * HTTP2_CLOSE_GRACE_MS after Node ends it, whether its FIN could be written or not (a client that
 * stopped reading may keep the last bytes from going). No stream is left by then: Node ends an
 * HTTP/2 socket only once its session is done, or after the client's own FIN, when the session
 * and its streams are destroyed at once anyway. One wrapper per connection, nothing per request.
 */
function cutWhenLeftOpen(socket: Socket): void {
  const end = socket.end;
  socket.end = function (this: Socket, ...args: Parameters<Socket['end']>) {
    socket.end = end;
    if (!socket.destroyed) {
      const timer = setTimeout(() => socket.destroy(), HTTP2_CLOSE_GRACE_MS);
      timer.unref();
      socket.once('close', () => clearTimeout(timer));
    }
    return end.apply(this, args);
  } as Socket['end'];
}

/** How a kept connection was admitted (see admittedAs). */
interface Admitted {
  readonly key: string | undefined;
  readonly releaseSlot: () => void;
  /** Bytes read before HTTP began (the PROXY protocol header), for sentNothing. */
  readonly readBeforeHttp: number;
  /** performance.now() when it was accepted: how long a connection that never sent a byte has been idle. */
  readonly acceptedAtMs: number;
}

/**
 * `sni`, noting in `uncovered` the connections whose name found no certificate while the server
 * has none of its own (node:tls calls it on the TLS socket). With a default certificate, as most
 * routers have, it adds nothing to a handshake.
 */
function noticingUncoveredNames(sni: SniCallback, hasDefault: () => boolean, uncovered: WeakSet<object>): SniCallback {
  return function sniCallback(this: TLSSocket, servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void {
    if (hasDefault()) return sni.call(this, servername, cb);
    sni.call(this, servername, (err, ctx) => {
      if (err === null && ctx === undefined && typeof this === 'object' && this !== null) uncovered.add(this);
      cb(err, ctx);
    });
  };
}

/** The name a TLS client asked for ('' when none), read from the handshake under way. */
function sniOf(socket: TLSSocket): string {
  const handle = (socket as TLSSocket & { _handle?: { getServername?: () => string | false } | null })._handle;
  return handle?.getServername?.() || '';
}

function sessionAddress(session: Http2Session): string {
  return peerOfSocket(session.socket as unknown as Socket);
}

/**
 * Node's HTTP/1 parser also takes `HTTP/2.0` and `HTTP/0.9` request lines (headers and all). The
 * router tells an HTTP/2 stream by its version number, so one `GET / HTTP/2.0` line over HTTP/1
 * was taken for a stream it does not have: a TypeError outside any handler (http2-after-read.ts),
 * and the process went down (seen in review). Only HTTP/1.x is served on an HTTP/1 connection; any
 * other version is refused, and the connection closed (its framing is not HTTP/1.1's to trust).
 */
const OTHER_VERSION_MESSAGE = 'only HTTP/1.0 and HTTP/1.1 requests are served over an HTTP/1 connection';

/** `refused` is told of the connection a request line of another version came on (its access line). */
function refusedHttpVersion(req: IncomingMessage, res: ServerResponse, refused: (socket: Socket) => void): boolean {
  if (req.httpVersionMajor === 1) return false;
  res.shouldKeepAlive = false;
  sendError(res, 'bad_request', OTHER_VERSION_MESSAGE, '-');
  refused(req.socket);
  return true;
}

function refusedUpgradeVersion(req: IncomingMessage, socket: Duplex, refused: (socket: Socket) => void): boolean {
  if (req.httpVersionMajor === 1) return false;
  // After the answers ahead of it (pipelined before it): written at once, it went out before them.
  afterAnswerAhead(socket, () => {
    endUpgradedSocket(socket, rawErrorReply('bad_request', OTHER_VERSION_MESSAGE, null));
    refused(req.socket);
  });
  return true;
}

/**
 * Node hands the connection over after a CONNECT's head (what came after it, for the tunnel, is
 * never read): the 405 goes after the answers still in progress on it (pipelined requests before
 * it), then the connection closes, and `refused` is told what went out (0: the connection was gone
 * before its turn). Each answer before it is bounded by its deadline.
 */
function refuseConnect(connection: Socket, socket: Duplex, refused: (status: number) => void): void {
  // Node took its own 'error' listener off when it handed the socket over: a reset while the answers
  // before this one go out must not take the process down.
  socket.on('error', destroyQuietly);
  afterAnswersInProgress(connection, () => {
    const answered = socket.writable;
    endUpgradedSocket(socket, rawErrorReply('method_not_allowed', CONNECT_MESSAGE, null));
    refused(answered ? statusOf('method_not_allowed') : 0);
  });
}

function destroyQuietly(this: Duplex): void {
  this.destroy();
}

function plainText(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

/** The answer Node's HTTP/1 server is writing on a connection, with the request it answers. */
type AnswerInProgress = { headersSent?: boolean; writableEnded?: boolean; req?: object & { complete?: boolean } } & Pick<ServerResponse, 'once'>;
const answerInProgress = (socket: Socket) => (socket as Socket & { _httpMessage?: AnswerInProgress | null })._httpMessage ?? null;

/**
 * The request whose body Node's parser is still reading on `socket` (its head was whole: it has a
 * handler and an answer of its own), or null when the parser is between requests or in a head.
 */
function requestBeingRead(socket: Socket): object | null {
  const incoming = (socket as Socket & { parser?: { incoming?: (object & { complete?: boolean }) | null } | null }).parser?.incoming;
  return incoming === undefined || incoming === null || incoming.complete === true ? null : incoming;
}

/**
 * Connections on which a refusal waits for the answers before it (pipelined): nothing more is
 * refused there. The parser, left in its error state, calls answerClientError again for any byte
 * still read (a request's handler may resume the socket), and each call would answer and log anew.
 */
const refusalsWaiting = new WeakSet<Socket>();

/** Told of a request the parser refused: the status it was answered (0: none went out) and its code. */
export type RefusedRequestReport = (socket: Socket, status: number, code: EdgeErrorCode) => void;

/**
 * What Node's HTTP/1 parser refused, answered in the same JSON shape as everything else, then
 * closed; `refused` is told of it (one access line), once its answer went out or could not.
 * Not told: a reset (ECONNRESET) — Node reports every client that resets a connection, mostly
 * idle keep-alive ones, which carried no request; one reset or closed mid-body is logged by its
 * own request (499) — nor a request whose head was read and whose body broke or did not arrive in
 * time: it has a handler (the exchange), which logs it, told through the connection what went out
 * (connection-riders.ts answeredByRouter).
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Socket, refused?: RefusedRequestReport, lingering?: LingeringClose): void {
  // Not writable: answered (and ended) already, and the parser, left in its error state, refused
  // the next bytes too. Node calls this for each such read: one line is the first one's.
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  if (refusalsWaiting.has(socket)) return;
  // Only what the parser or its timeouts refused is a request; a socket error (EPIPE, …) is not.
  const report = isParserRefusal(err.code) ? refused : undefined;
  const code: EdgeErrorCode =
    err.code === 'HPE_HEADER_OVERFLOW' ? 'headers_too_large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'request_timeout' : 'bad_request';
  const message =
    code === 'headers_too_large'
      ? 'the request head is too large'
      : code === 'request_timeout'
        ? 'the request did not arrive in time'
        : 'the request is not valid HTTP/1.1';
  const reply = rawErrorReply(code, message, null);
  const current = answerInProgress(socket);
  const reading = requestBeingRead(socket);
  if (current === null) {
    // Bounded: only ended, a client that kept its side open and said nothing more held the
    // connection, its per-address slot and its place for ever (the parser's timeouts are spent,
    // and nothing else watches a half-closed socket). Lingering reads the rest within its bounds;
    // without it, the connection goes once its answer is written.
    socket.end(reply);
    if (lingering !== undefined) lingering.lingerAfterRefusal(socket);
    else Socket.prototype.destroySoon.call(socket);
    // A request whose head was read and whose answer is over already was logged by its handler.
    if (reading === null) report?.(socket, statusOf(code), code);
    return;
  }
  if (reading !== null && reading !== current.req) {
    // The request that broke (its body, or its upload timed out) came pipelined behind answers
    // still going out; its own answer is queued after them. At its turn it is cut as the one in
    // progress below would be. Taken for bytes behind whole requests (the branch after this), it
    // was logged twice (0 `request_timeout` here, and 408 by its exchange once the body-idle
    // timeout cut it), or, that timeout being longer than the client waited, never answered: its
    // exchange waited for a body nothing read any more. Nothing more is read.
    socket.pause();
    refusalsWaiting.add(socket);
    afterAnswersBefore(socket, reading, () => {
      refusalsWaiting.delete(socket);
      const turn = answerInProgress(socket);
      if (turn !== null && turn.req === reading && turn.writableEnded !== true) return cutAnswerInProgress(err, socket, turn, code, reply, lingering);
      // Its handler answered it meanwhile (and logged it): that answer goes out, then the
      // connection closes, its byte stream broken. One gone with its connection is logged by its handler too.
      afterAnswersInProgress(socket, () => {
        if (socket.writable) endBroken(socket, lingering);
      });
    });
    return;
  }
  if (current.req?.complete === true) {
    // The refused bytes came after whole requests still being answered (pipelined): those answers
    // go out first, in order, and then this one, as nginx does. Written at once, the 400 took the
    // first answer's place and the requests before it were lost, though logged as answered. Nothing
    // more is read: the byte stream is broken from here. Each answer is bounded by its deadline.
    socket.pause();
    refusalsWaiting.add(socket);
    afterAnswersInProgress(socket, () => {
      refusalsWaiting.delete(socket);
      const answered = socket.writable;
      if (answered) endBroken(socket, lingering, reply);
      report?.(socket, answered ? statusOf(code) : 0, code);
    });
    return;
  }
  cutAnswerInProgress(err, socket, current, code, reply);
}

/**
 * The request being answered is the one that broke (its body, or its upload timed out): a second
 * status line would corrupt its answer once that has begun, and it cannot be finished. Cut. Its
 * own handler (the exchange) logs it, once the connection closes: told what went out, not left to
 * take the close for its client leaving (a 408 was logged 499 `client_closed`).
 * (A socket error is no answer of the router's: its request's client is gone, 499.)
 */
function cutAnswerInProgress(err: NodeJS.ErrnoException, socket: Socket, current: AnswerInProgress, code: EdgeErrorCode, reply: string, lingering?: LingeringClose): void {
  if (!socket.writable) return;
  if (endedMidBody(err.code)) {
    // Its client left: closed without an answer and not marked as the router's doing, so that its
    // exchange logs 499 client_closed, as for the same departure over HTTP/2.
    socket.destroy();
    return;
  }
  if (isParserRefusal(err.code)) answeredByRouter(socket, { response: current, status: current.headersSent === true ? 0 : statusOf(code), code });
  if (current.headersSent === true) socket.destroy();
  // `lingering` is given only when the broken request came behind answers, its socket paused since.
  else endBroken(socket, lingering, reply);
}

/**
 * Ends a connection whose byte stream broke behind pipelined answers, with `last` (its 400) when
 * there is one, and lets it linger: it was paused, nothing more is to be parsed, and lingering
 * reads (and throws away) the rest up to its client's close.
 */
function endBroken(socket: Socket, lingering: LingeringClose | undefined, last?: string): void {
  if (last === undefined) socket.end();
  else socket.end(last);
  lingering?.lingerAfterRefusal(socket);
}

/**
 * The client's FIN came while a request's body was still coming (llhttp finishing mid-body). Not a
 * body broken otherwise (a bad chunk size: 400): the client can send nothing more, so its request
 * can never be whole. Whether it still reads (a half-close) or closed, the FIN does not tell, and a
 * reset that bytes written after it would meet comes too late to tell, if Node reports it at all;
 * Node takes a FIN after a whole request for the client leaving too (httpAllowHalfOpen unset: the
 * connection ends, its answer unsent), and this is taken the same way. (Mid-head, the same code
 * is a refused head: that is answered 400, as nginx does.)
 */
function endedMidBody(code: string | undefined): boolean {
  return code === 'HPE_INVALID_EOF_STATE';
}

/** llhttp's errors (HPE_*: bad bytes, a head too large, a connection ended mid-head) and Node's head and request timeouts. */
function isParserRefusal(code: string | undefined): boolean {
  return code !== undefined && (code.startsWith('HPE_') || code === 'ERR_HTTP_REQUEST_TIMEOUT');
}

/** Calls `then` once no answer is in progress on `socket` (Node attaches the next queued one as each finishes). */
function afterAnswersInProgress(socket: Socket, then: () => void): void {
  const current = answerInProgress(socket);
  // Destroyed, the connection keeps the answer it was cut under, closed already.
  if (current === null || socket.destroyed) return then();
  current.once('close', () => setImmediate(() => afterAnswersInProgress(socket, then)));
}

/** Calls `then` once the answer in progress on `socket` is `req`'s, or none is: those before it have gone out (or their connection with them). */
function afterAnswersBefore(socket: Socket, req: object, then: () => void): void {
  const current = answerInProgress(socket);
  if (current === null || current.req === req || socket.destroyed) return then();
  current.once('close', () => setImmediate(() => afterAnswersBefore(socket, req, then)));
}
