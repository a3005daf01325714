/**
 * The router's own flags (`router`, and `start` and `validate`, which take them too) and the
 * defaults they show. Light by design: `--help` reads it, and must not load the router to do so.
 */
import type { ClientBounds } from '../edge-router.js';
import { DEFAULT_TIER_TIMEOUT_MS, RESPONSE_GRACE_MS, type TimeoutTier } from '../core/types.js';
import { DEFAULT_LINGER_LIMITS } from '../ingress/lingering-close.js';
import { DEFAULT_LIMITS } from '../ingress/server-limits.js';
import { LOG_LEVELS } from '../observability/process-log.js';
import { sourceOf, valueOf, type FlagSpec, type ParsedFlags } from './flags.js';
import { parseMilliseconds } from './parse-values.js';
import { PREWARM_TOKEN_FILE_FLAG, PREWARM_TOKEN_FLAG } from './prewarm-token.js';

/** How long a replaced admin token is still taken: time for clients and open dashboards to move over. */
export const DEFAULT_ADMIN_TOKEN_OVERLAP_MS = 60_000;

/** A router's client bounds when no flag sets them (parsing gives each flag its part as its default). */
export const DEFAULT_CLIENT_BOUNDS: ClientBounds = {
  poolConnections: 128,
  queueTimeoutMs: 5_000,
  maxQueue: 1_024,
  uploadShare: 0.25,
  tenantShare: 0.5,
  bodyBufferBytes: 64 * 1024,
  pace: { bodyIdleTimeoutMs: 10_000, bodyMinBytesPerSecond: 1_024, sendTimeoutMs: 30_000 },
  maxConnectionsPerAddress: 256,
  // A browser opens a handful of connections per site; an office behind one NAT address, some tens
  // a second. A handshake loop from one address is held to a tenth of what one core can sign.
  maxConnectRatePerAddress: 100,
  maxRequestsPerClient: 64,
  floodPenaltyMs: 10_000,
  // Envoy's stream idle timeout: long enough for any application that pings (browsers do not; the
  // usual libraries ping every 20–60 s), short enough that an abandoned socket gives back its
  // region's container.
  tunnelIdleTimeoutMs: 300_000,
};

/**
 * The functions' time limits: the router's deadlines, and (`orchestrator`, `start`) the limits a
 * simulated region cuts a function at. One pair of flags and variables for both: a router that
 * waited 120 s for a region cutting at 60 s passed that region's 504 on as the function's.
 */
export const TIER_TIMEOUT_FLAGS: readonly FlagSpec[] = [
  { name: 'timeout-standard', type: 'string', env: 'EDGE_TIMEOUT_STANDARD_MS', valueName: 'ms', default: String(DEFAULT_TIER_TIMEOUT_MS.standard), description: `standard tier deadline → 504 (an answer still streaming ${RESPONSE_GRACE_MS / 1_000} s past it is cut)` },
  { name: 'timeout-extended', type: 'string', env: 'EDGE_TIMEOUT_EXTENDED_MS', valueName: 'ms', default: String(DEFAULT_TIER_TIMEOUT_MS.extended), description: `extended tier deadline → 504 (an answer still streaming ${RESPONSE_GRACE_MS / 1_000} s past it is cut)` },
];

export const ROUTER_FLAGS: readonly FlagSpec[] = [
  { name: 'https-port', type: 'string', env: 'EDGE_HTTPS_PORT', valueName: 'port', default: '8443', description: 'HTTPS listener (TLS 1.2/1.3, h2 and http/1.1)' },
  { name: 'http-port', type: 'string', env: 'EDGE_HTTP_PORT', valueName: 'port', default: '8080', description: 'plain HTTP listener: 308 to HTTPS, /healthz, /readyz' },
  { name: 'admin-port', type: 'string', env: 'EDGE_ADMIN_PORT', valueName: 'port', default: '9090', description: 'admin listener: dashboard, admin API, /metrics, /healthz, /readyz' },
  { name: 'admin-host', type: 'string', env: 'EDGE_ADMIN_HOST', valueName: 'addr', default: '127.0.0.1', description: 'address the admin listener binds (keep it private)' },
  { name: 'admin-token', type: 'string', env: 'EDGE_ADMIN_TOKEN', valueName: 'token', defaultText: 'none: admin API disabled', description: 'bearer token for the admin API and dashboard actions (prefer the env variable or --admin-token-file: flags show in ps)' },
  { name: 'admin-token-file', type: 'string', env: 'EDGE_ADMIN_TOKEN_FILE', valueName: 'file', description: 'read the admin token from this file; a replaced file is read again (no restart needed)' },
  { name: 'admin-token-overlap', type: 'string', env: 'EDGE_ADMIN_TOKEN_OVERLAP_MS', valueName: 'ms', default: String(DEFAULT_ADMIN_TOKEN_OVERLAP_MS), description: 'when --admin-token-file is replaced, how long the token it held is still taken (and its dashboard streams kept); 0 = refused at once' },
  { name: 'admin-public-reads', type: 'boolean', env: 'EDGE_ADMIN_PUBLIC_READS', description: 'allow admin GET and HEAD endpoints (status, metrics) without the token, for a Host that is an IP address, localhost or in --admin-allowed-hosts; writes always need it' },
  { name: 'admin-allowed-hosts', type: 'string', list: true, env: 'EDGE_ADMIN_ALLOWED_HOSTS', valueName: 'names', defaultText: 'none: IP addresses and localhost only', description: 'comma-separated host names token-less public reads are answered for (e.g. a Prometheus target name); others need the token (DNS rebinding)' },
  { name: 'bind', type: 'string', env: 'EDGE_BIND', valueName: 'addr', default: '0.0.0.0', description: 'address the public listeners bind' },
  { name: 'tls-cert', type: 'string', env: 'EDGE_TLS_CERT', valueName: 'file', description: 'default certificate, typically *.<zone> (PEM file, chain may follow)' },
  { name: 'tls-key', type: 'string', env: 'EDGE_TLS_KEY', valueName: 'file', description: 'its private key (PEM file)' },
  { name: 'tls-dir', type: 'string', env: 'EDGE_TLS_DIR', valueName: 'dir', description: 'per-name pairs <name>.crt + <name>.key chosen by SNI (custom domains); reloaded on change' },
  { name: 'dev-cert', type: 'boolean', env: 'EDGE_DEV_CERT', description: 'generate a self-signed development certificate when none is configured' },
  { name: 'workers', type: 'string', env: 'EDGE_WORKERS', valueName: 'n', defaultText: 'usable cores (CPU affinity and container CPU quota)', description: 'router processes (node:cluster); 1 = no cluster' },
  { name: 'plain-http', type: 'string', env: 'EDGE_PLAIN_HTTP', valueName: 'mode', default: 'redirect', description: 'redirect (308 to HTTPS) or serve (route plain HTTP: TLS ends at a trusted load balancer)' },
  { name: 'redirect-port', type: 'string', env: 'EDGE_REDIRECT_PORT', valueName: 'port', defaultText: "the HTTPS listener's port", description: 'the HTTPS port the 308 sends clients to: the one they reach, e.g. 443 where a port mapping or load balancer puts 443 in front of --https-port (443 is left out of the URL)' },
  { name: 'lingering-time', type: 'string', env: 'EDGE_LINGERING_TIME_MS', valueName: 'ms', default: String(DEFAULT_LINGER_LIMITS.totalMs), description: 'after an early answer (413, 429) to an HTTP/1 upload, how long what the client still sends is read and thrown away so the close sends it no reset (nginx lingering_time; 0 = close at once)' },
  { name: 'lingering-timeout', type: 'string', env: 'EDGE_LINGERING_TIMEOUT_MS', valueName: 'ms', default: String(DEFAULT_LINGER_LIMITS.idleMs), description: 'a lingering connection whose client sends nothing this long is closed (nginx lingering_timeout)' },
  { name: 'lingering-max-bytes', type: 'string', env: 'EDGE_LINGERING_MAX_BYTES', valueName: 'size', default: `${DEFAULT_LINGER_LIMITS.maxBytes / 1024 ** 2}MiB`, description: 'a lingering connection whose client sends more than this is cut (up to 16GiB; 0 = none lingers, as --lingering-time 0)' },
  { name: 'lingering-max-connections', type: 'string', env: 'EDGE_LINGERING_MAX_CONNECTIONS', valueName: 'n', default: String(DEFAULT_LINGER_LIMITS.maxConnections), description: 'connections lingering at once per worker; past it, an early answer closes at once, as without lingering (0 = none lingers)' },
  { name: 'lingering-max-per-ip', type: 'string', env: 'EDGE_LINGERING_MAX_PER_IP', valueName: 'n', default: String(DEFAULT_LINGER_LIMITS.maxPerAddress), description: "connections of one peer address lingering at once: a lingering connection gives its --max-conns-per-ip slot back, so an address may hold this many over that limit; past it, an early answer closes at once (0 = no bound but --lingering-max-connections; trusted proxies are exempt)" },
  { name: 'websocket-idle-timeout', type: 'string', env: 'EDGE_WEBSOCKET_IDLE_TIMEOUT_MS', valueName: 'ms', default: String(DEFAULT_CLIENT_BOUNDS.tunnelIdleTimeoutMs), description: 'a WebSocket that carries no byte either way this long is closed (0 = never)' },
  { name: 'websocket-over-http2', type: 'string', env: 'EDGE_WEBSOCKET_OVER_HTTP2', valueName: 'on|off', default: 'on', description: 'accept WebSockets on HTTP/2 connections (RFC 8441 extended CONNECT); off: clients open them over HTTP/1.1' },
  { name: 'proxy-protocol', type: 'boolean', env: 'EDGE_PROXY_PROTOCOL', description: 'expect a PROXY protocol v1/v2 header on both public listeners (L4 load balancer in front); needs --proxy-protocol-from' },
  { name: 'proxy-protocol-from', type: 'string', list: true, env: 'EDGE_PROXY_PROTOCOL_FROM', valueName: 'cidrs', description: "the load balancer's addresses (comma-separated CIDRs): only connections from these may announce a client; any other is closed" },
  { name: 'client-address-header', type: 'string', env: 'EDGE_CLIENT_ADDRESS_HEADER', valueName: 'name', default: 'x-forwarded-for', description: "x-forwarded-for or forwarded: the header whose chain --trusted-proxies extend; the other is replaced, as from any client" },
  { name: 'unknown-functions', type: 'string', env: 'EDGE_UNKNOWN_FUNCTIONS', valueName: 'mode', default: 'reject', description: 'a function missing from the directory: reject (404) or forward (deployed everywhere)' },
  { name: 'log-level', type: 'string', env: 'EDGE_LOG_LEVEL', valueName: 'level', default: 'info', description: `one of ${LOG_LEVELS.join(', ')}` },
  { name: 'access-log', type: 'string', env: 'EDGE_ACCESS_LOG', valueName: 'on|off', default: 'on', description: 'one JSON line per request' },
  { name: 'max-attempts', type: 'string', env: 'EDGE_MAX_ATTEMPTS', valueName: 'n', default: '3', description: 'regions tried per request at most' },
  { name: 'connect-timeout', type: 'string', env: 'EDGE_CONNECT_TIMEOUT_MS', valueName: 'ms', default: '1000', description: 'connect timeout to a region' },
  { name: 'headers-timeout', type: 'string', env: 'EDGE_HEADERS_TIMEOUT_MS', valueName: 'ms', default: '65000', description: 'cap on waiting for response headers (the tier deadline may cut it shorter)' },
  ...TIER_TIMEOUT_FLAGS,
  { name: 'max-body-standard', type: 'string', env: 'EDGE_MAX_BODY_STANDARD', valueName: 'size', default: '128MiB', description: 'request body limit, standard tier → 413' },
  { name: 'max-body-extended', type: 'string', env: 'EDGE_MAX_BODY_EXTENDED', valueName: 'size', default: '512MiB', description: 'request body limit, extended tier → 413' },
  { name: 'max-header-size', type: 'string', env: 'EDGE_MAX_HEADER_SIZE', valueName: 'size', default: '16KiB', description: 'request head limit → 431 (1KiB up to 4GiB less one byte)' },
  { name: 'max-connections', type: 'string', env: 'EDGE_MAX_CONNECTIONS', valueName: 'n', default: '10000', description: 'open connections per listener and worker, held at accept (past it a new connection is closed); near it (within 1/64), the idle ones used least recently are closed to make room, and new connections of an address holding more than 16 and half an equal share of it are refused' },
  { name: 'client-header-timeout', type: 'string', env: 'EDGE_CLIENT_HEADER_TIMEOUT_MS', valueName: 'ms', default: '10000', description: 'a client must send its whole request head within this (a longer one than --client-request-timeout gets that)' },
  { name: 'tls-handshake-timeout', type: 'string', env: 'EDGE_TLS_HANDSHAKE_TIMEOUT_MS', valueName: 'ms', default: String(DEFAULT_LIMITS.tlsHandshakeTimeoutMs), description: 'a client must finish its TLS handshake within this of connecting, or it is cut' },
  { name: 'keep-alive-timeout', type: 'string', env: 'EDGE_KEEP_ALIVE_TIMEOUT_MS', valueName: 'ms', default: String(DEFAULT_LIMITS.keepAliveTimeoutMs), description: 'HTTP/1.1: how long a client connection may wait between requests before it is closed (said in its Keep-Alive header; 1000 up to 3600000)' },
  { name: 'http2-idle-timeout', type: 'string', env: 'EDGE_HTTP2_IDLE_TIMEOUT_MS', valueName: 'ms', default: String(DEFAULT_LIMITS.http2IdleTimeoutMs), description: 'HTTP/2: how long a client session may carry no frame before it is asked to go (GOAWAY; streams in progress finish; 1000 up to 3600000)' },
  { name: 'client-request-timeout', type: 'string', env: 'EDGE_CLIENT_REQUEST_TIMEOUT_MS', valueName: 'ms', default: '300000', description: 'a client must send its whole request within this' },
  { name: 'pool-connections', type: 'string', env: 'EDGE_POOL_CONNECTIONS', valueName: 'n', default: String(DEFAULT_CLIENT_BOUNDS.poolConnections), description: 'upstream connections per orchestrator: requests dispatched to it at once' },
  { name: 'queue-timeout', type: 'string', env: 'EDGE_QUEUE_TIMEOUT_MS', valueName: 'ms', default: String(DEFAULT_CLIENT_BOUNDS.queueTimeoutMs), description: 'longest wait for a free upstream connection at one region before trying the next (then 503)' },
  { name: 'queue-max', type: 'string', env: 'EDGE_QUEUE_MAX', valueName: 'n', default: String(DEFAULT_CLIENT_BOUNDS.maxQueue), description: 'requests waiting per region; more spill to the next region at once' },
  { name: 'upload-share', type: 'string', env: 'EDGE_UPLOAD_SHARE', valueName: 'fraction', default: String(DEFAULT_CLIENT_BOUNDS.uploadShare), description: "share of a region's upstream connections that streaming uploads (bodies over --body-buffer) may hold" },
  { name: 'tenant-share', type: 'string', env: 'EDGE_TENANT_SHARE', valueName: 'fraction', default: String(DEFAULT_CLIENT_BOUNDS.tenantShare), description: "share of a region's upstream connections, and of its queue, that one organisation's requests may hold, and of the retry budget its retries may take (1: no limit); waiting organisations are served in turn" },
  { name: 'body-buffer', type: 'string', env: 'EDGE_BODY_BUFFER', valueName: 'size', default: '64KiB', description: 'request bodies up to this size are read whole before a region is called (no upstream connection held while a client uploads slowly)' },
  { name: 'body-idle-timeout', type: 'string', env: 'EDGE_BODY_IDLE_TIMEOUT_MS', valueName: 'ms', default: String(DEFAULT_CLIENT_BOUNDS.pace.bodyIdleTimeoutMs), description: 'longest pause between two request body chunks → 408' },
  { name: 'body-min-rate', type: 'string', env: 'EDGE_BODY_MIN_RATE', valueName: 'size', default: '1KiB', description: 'slowest average request body rate per second, judged once the body has been arriving for --body-idle-timeout → 408 (0 = none)' },
  { name: 'send-timeout', type: 'string', env: 'EDGE_SEND_TIMEOUT_MS', valueName: 'ms', default: String(DEFAULT_CLIENT_BOUNDS.pace.sendTimeoutMs), description: 'longest a response may wait for the client to read before the request is cut' },
  { name: 'max-conns-per-ip', type: 'string', env: 'EDGE_MAX_CONNS_PER_IP', valueName: 'n', default: String(DEFAULT_CLIENT_BOUNDS.maxConnectionsPerAddress), description: 'open connections per peer address (0 = no limit; trusted proxies are exempt)' },
  { name: 'max-conn-rate-per-ip', type: 'string', env: 'EDGE_MAX_CONN_RATE_PER_IP', valueName: 'n', default: String(DEFAULT_CLIENT_BOUNDS.maxConnectRatePerAddress), description: 'new connections per peer address per second, in bursts of twice that; more are closed before the TLS handshake (0 = no limit; trusted proxies are exempt)' },
  { name: 'max-requests-per-ip', type: 'string', env: 'EDGE_MAX_REQUESTS_PER_IP', valueName: 'n', default: String(DEFAULT_CLIENT_BOUNDS.maxRequestsPerClient), description: 'requests in progress per client address (IPv6: per /64) → 429 (0 = no limit)' },
  { name: 'flood-penalty', type: 'string', env: 'EDGE_FLOOD_PENALTY_MS', valueName: 'ms', default: String(DEFAULT_CLIENT_BOUNDS.floodPenaltyMs), description: 'an address whose HTTP/2 connection was closed as a reset or frame flood is refused at connect this long, twice its last penalty when it floods again soon after one (up to 16 times this; 0 = not at all)' },
  { name: 'tls-ticket-rotation', type: 'string', env: 'EDGE_TLS_TICKET_ROTATION_MS', valueName: 'ms', default: String(12 * 3_600_000), description: 'TLS session resumption across workers and routers: a session-ticket key kept in the registry, replaced this often by one staged a period ahead; the previous one still opens tickets (at least 5000; 0 = each process keeps its own)' },
  { name: 'drain-timeout', type: 'string', env: 'EDGE_DRAIN_TIMEOUT_MS', valueName: 'ms', defaultText: 'the longest tier deadline + 5 s (65000)', description: 'on SIGTERM, how long in-flight requests and open WebSockets may take before they are ended (a request admitted just before SIGTERM may take its whole tier; 0 = ended at once)' },
  { name: 'probe', type: 'string', env: 'EDGE_PROBE', valueName: 'auto|on|off', default: 'auto', description: 'active health probes: auto = on with the memory registry' },
  PREWARM_TOKEN_FLAG,
  PREWARM_TOKEN_FILE_FLAG,
];

/** The tier limits TIER_TIMEOUT_FLAGS give (their defaults applied by parsing). */
export function tierTimeouts(flags: ParsedFlags): Record<TimeoutTier, number> {
  const limit = (name: string) => parseMilliseconds(valueOf(flags, name), sourceOf(flags, name));
  return { standard: limit('timeout-standard'), extended: limit('timeout-extended') };
}
