/**
 * `edge-router router`: the production router. Resolves flags into a RouterConfig, sets up TLS
 * (certificate store, SNI, reload), then runs one router process or a node:cluster of workers
 * that behave as one router (cluster/supervisor.ts). SIGTERM drains and exits 0.
 */
import cluster from 'node:cluster';
import { isIPv4, isIPv6 } from 'node:net';
import { resolveSharedSettings, splitList, trustedProxyList } from '../config/shared-settings.js';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, UsageError } from '../core/errors.js';
import { isFileContents, pathWorthShowing, unshownSecretFile } from '../core/file-contents.js';
import { startEdgeRouter, type ClientBounds, type RouterConfig } from '../edge-router.js';
import { growHeapBeforeMarking } from '../core/heap-growth.js';
import { usableCores } from '../core/cpu-limit.js';
import { notsentLowatWarning, readNotsentLowat } from '../ingress/kernel-settings.js';
import { CertificateStore, sniCallback } from '../ingress/certificates/certificate-store.js';
import { generateDevCertificate } from '../ingress/certificates/dev-certificate.js';
import { DEFAULT_LIMITS } from '../ingress/server-limits.js';
import { RESPONSE_GRACE_MS } from '../core/types.js';
import { MIN_TICKET_ROTATION_MS } from '../core/ticket-key-ring.js';
import { DEFAULT_LINGER_LIMITS, type LingerLimits } from '../ingress/lingering-close.js';
import { proxyProtocolServer } from '../ingress/proxy-protocol/listener.js';
import { CLIENT_ADDRESS_HEADERS, trustTest } from '../routing/client-address.js';
import { createLogger, LOG_LEVELS, type LogLevel, type Logger } from '../observability/logger.js';
import { boolFlag, sourceOf, stringFlag, valueOf, type ParsedFlags } from './flags.js';
import { stopCause, stopRequested, writeLine, type CliIo } from './io.js';
import { MessageLink, primaryEnd } from '../cluster/message-link.js';
import { announceDraining, answerHeartbeats, superviseWorkers } from '../cluster/supervisor.js';
import { regionsCopyEnv, regionsCopyFrom, workerSlotFrom } from '../cluster/worker-slot.js';
import { MemoryRegistry } from '../registry/memory-registry.js';
import { PrimaryRegistryClient } from '../registry/primary-registry.js';
import { probeHeartbeatTtlMs } from '../registry/prober.js';
import { connectOrchestrators } from './orchestrator-connection.js';
import { redisKeyPrefix, redisTarget } from './open-registry.js';
import { packageRoot } from './package-root.js';
import { parseAddress, parseBytes, parseChoice, parseInteger, parseMilliseconds, parsePort } from './parse-values.js';
import { proberSettings } from './probe-flags.js';
import { sharedInputs } from './shared-inputs.js';
import { routingSettings } from './routing-flags.js';
import { secretSourceOf } from './secret-source.js';
import { ignoredSettings } from './ignored-settings.js';
import { prewarmToken } from './prewarm-token.js';
import { acmeSettings, type AcmeSettings } from './acme-flags.js';
import { IssuedContexts } from '../acme/issued-contexts.js';
import { nameCover } from '../ingress/certificates/certificate-names.js';
import { parseAdminToken } from '../dashboard/admin-token-text.js';
import { tierTimeouts } from './router-flags.js';
import { hostAndPort, unmapAddress } from '../core/ip.js';
import { MAX_TOKEN_FILE_BYTES, readProblemOf, readRegularText } from '../core/regular-file.js';

/** The largest --lingering-max-bytes: 16 GiB. */
const MAX_LINGER_BYTES = 16 * 1024 ** 3;

export interface ResolvedRouter {
  readonly config: Omit<RouterConfig, 'tls' | 'wrapListener' | 'acme'>;
  /** Custom-domain certificates from an ACME CA, or null (off). */
  readonly acme: AcmeSettings | null;
  readonly workers: number;
  readonly logLevel: LogLevel;
  readonly tls: { certFile?: string; keyFile?: string; dir?: string; devCert: boolean };
  /** The peers allowed to send a PROXY header (their CIDRs), or null when the listeners expect none. */
  readonly proxyProtocolFrom: readonly string[] | null;
  /** Settings given that do nothing with the rest (ignored-settings.ts): one sentence each, logged at the start. */
  readonly ignoredSettings: readonly string[];
}

/** The most router processes `--workers` takes. */
export const MAX_WORKERS = 256;

/** One worker a usable core, within what `--workers` itself takes (a 384-core host started 384). */
export function defaultWorkers(usableCores: number): number {
  return Math.min(usableCores, MAX_WORKERS);
}

/**
 * The default drain: long enough for a request admitted just before SIGTERM to take its whole
 * tier, plus the margin its answer has to leave (the same grace that bounds a streaming response,
 * proxy/exchange.ts). A shorter drain cut requests a function was still legitimately running (a
 * deploy of the router must not fail them); the drain ends as soon as nothing is in progress, so
 * the wait is this long only when something needs it.
 */
export function drainCovering(...tierTimeoutsMs: number[]): number {
  return Math.max(...tierTimeoutsMs) + RESPONSE_GRACE_MS;
}

export async function resolveRouterFlags(flags: ParsedFlags, defaults: { devCert?: boolean; regionsCopy?: string } = {}): Promise<ResolvedRouter> {
  const str = (name: string) => stringFlag(flags, name);
  // Every flag read through `given` has a `default` in ROUTER_FLAGS: parsing has applied it already.
  const given = (name: string) => valueOf(flags, name);
  const source = (name: string) => sourceOf(flags, name);
  const int = (name: string, min = 1, max = 86_400_000) => parseInteger(given(name), source(name), min, max);
  const ms = (name: string, options?: { max?: number; zero?: string }) => parseMilliseconds(given(name), source(name), options);
  const port = (name: string) => parsePort(given(name), source(name));
  const bytes = (name: string, min?: number, max?: number) => parseBytes(given(name), source(name), min, max);
  const address = (name: string) => parseAddress(given(name), source(name));
  const choice = <T extends string>(name: string, choices: readonly T[]) => parseChoice(given(name), source(name), choices);
  const fraction = (name: string) => {
    const raw = given(name);
    const value = Number(raw);
    // Plain decimals only (Number() also reads hex and exponents).
    if (!/^\s*\d+(\.\d+)?\s*$/.test(raw) || value <= 0 || value > 1) throw new UsageError(`${source(name)}: expected a fraction in (0, 1], got ${JSON.stringify(raw)}`);
    return value;
  };

  // 0, or long enough for a staged key to reach every router (each looks once a second at most)
  // before any router seals tickets with it.
  const ticketRotation = () => {
    const value = int('tls-ticket-rotation', 0);
    if (value > 0 && value < MIN_TICKET_ROTATION_MS) {
      throw new UsageError(`${source('tls-ticket-rotation')}: expected 0 (each process keeps its own key) or at least ${MIN_TICKET_ROTATION_MS} ms (a shorter period would rotate before every router holds the next key), got ${JSON.stringify(given('tls-ticket-rotation'))}`);
    }
    return value;
  };

  const inputs = sharedInputs(flags);
  const shared = await resolveSharedSettings(defaults.regionsCopy === undefined ? inputs : { ...inputs, regionsCopy: defaults.regionsCopy }, packageRoot());
  const redis = redisTarget(flags);
  const probeMode = choice('probe', ['auto', 'on', 'off'] as const);
  const probeOn = probeMode === 'on' || (probeMode === 'auto' && redis === null);
  // Read while probing is off too, wherever the command has the probe flags (`start` has none).
  const probeSettings = probeOn || flags.values.has('probe-path') ? proberSettings(flags) : null;
  // An empty path would count as no certificate: validate passed it, and the router refused to start
  // with "TLS: no certificate", naming neither the flag nor the variable.
  const path = (name: string, expected: string) => {
    const value = str(name);
    if (value !== undefined && value.trim() === '') throw new ConfigError(`${source(name)}: expected ${expected}, got ${JSON.stringify(value)}`);
    // The key itself, as `$(cat tls.key)` gives it: named as a path it could not read, it was printed.
    if (value !== undefined && isFileContents(value)) throw new ConfigError(`${source(name)}: expected ${expected}, got PEM text (not shown: it may be a private key); write it to a file and give that file's path`);
    return value;
  };
  const certFile = path('tls-cert', 'a path to a PEM certificate');
  const keyFile = path('tls-key', 'a path to its PEM private key');
  // Named as it was given: with only EDGE_TLS_CERT set, the operator typed no flag at all.
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new UsageError(`${source(certFile === undefined ? 'tls-key' : 'tls-cert')}: a certificate and its key go together: give both --tls-cert and --tls-key (EDGE_TLS_CERT and EDGE_TLS_KEY)`);
  }
  const dir = path('tls-dir', 'a path to a directory of <name>.crt + <name>.key pairs');
  const devCert = boolFlag(flags, 'dev-cert') || (defaults.devCert ?? false);
  if (certFile === undefined && dir === undefined && !devCert) {
    throw new UsageError('no certificate: give --tls-cert and --tls-key (or --tls-dir), or --dev-cert for a self-signed development certificate');
  }
  const listeners = distinctListeners(flags, address('bind'), address('admin-host'), { https: port('https-port'), http: port('http-port'), admin: port('admin-port') });
  const accessLog = choice('access-log', ['on', 'off'] as const) === 'on';
  const adminToken = await adminTokenOf(flags);
  const adminTokenOverlapMs = ms('admin-token-overlap', { zero: 'refused at once' });
  // Only a file can be replaced: a token given by value is the router's until it restarts.
  const adminTokenFromFile = adminToken !== null && secretSourceOf(flags, 'admin-token', 'admin-token-file', 'the admin token') === 'file';
  const adminTokenRotation = adminTokenFromFile
    ? { adminTokenRotation: { file: stringFlag(flags, 'admin-token-file')!, overlapMs: adminTokenOverlapMs } }
    : {};
  const workers = str('workers') === undefined ? defaultWorkers(await usableCores()) : int('workers', 1, MAX_WORKERS);
  const tiers = tierTimeouts(flags);
  const clientHeaderTimeoutMs = ms('client-header-timeout');
  const clientRequestTimeoutMs = ms('client-request-timeout');
  return {
    workers,
    ignoredSettings: ignoredSettings(flags, { adminTokenFromFile, clientHeaderTimeoutMs, clientRequestTimeoutMs }),
    acme: await acmeSettings(flags, { workers, redis: redis !== null }),
    logLevel: choice('log-level', LOG_LEVELS),
    proxyProtocolFrom: proxyProtocolPeers(flags),
    tls: { ...(certFile ? { certFile, keyFile: keyFile! } : {}), ...(dir ? { dir } : {}), devCert },
    config: {
      shared,
      bindAddress: listeners.bind,
      httpsPort: listeners.https,
      httpPort: listeners.http,
      adminHost: listeners.adminHost,
      adminPort: listeners.admin,
      plainHttp: choice('plain-http', ['redirect', 'serve'] as const),
      ...(str('redirect-port') === undefined ? {} : { redirectPort: parseInteger(str('redirect-port')!, source('redirect-port'), 1, 65_535) }),
      http2WebSockets: choice('websocket-over-http2', ['on', 'off'] as const) === 'on',
      redis,
      redisPrefix: redisKeyPrefix(flags),
      unknownFunctions: choice('unknown-functions', ['reject', 'forward'] as const),
      clientAddressHeader: choice('client-address-header', CLIENT_ADDRESS_HEADERS),
      routing: routingSettings(flags),
      ...prewarmToken(flags),
      maxAttempts: int('max-attempts', 1, 5),
      connectTimeoutMs: ms('connect-timeout'),
      headersTimeoutMs: ms('headers-timeout'),
      tierTimeoutMs: tiers,
      maxBodyBytes: { standard: bytes('max-body-standard'), extended: bytes('max-body-extended') },
      drainTimeoutMs: str('drain-timeout') === undefined ? drainCovering(...Object.values(tiers)) : ms('drain-timeout', { zero: 'ended at once' }),
      tlsTicketRotationMs: ticketRotation(),
      clientBounds: {
        poolConnections: int('pool-connections', 1, 10_000),
        queueTimeoutMs: ms('queue-timeout'),
        maxQueue: int('queue-max', 0, 1_000_000),
        uploadShare: fraction('upload-share'),
        tenantShare: fraction('tenant-share'),
        bodyBufferBytes: bytes('body-buffer'),
        pace: {
          bodyIdleTimeoutMs: ms('body-idle-timeout'),
          bodyMinBytesPerSecond: bytes('body-min-rate'),
          sendTimeoutMs: ms('send-timeout'),
        },
        maxConnectionsPerAddress: int('max-conns-per-ip', 0, 1_000_000),
        maxConnectRatePerAddress: int('max-conn-rate-per-ip', 0, 1_000_000),
        maxRequestsPerClient: int('max-requests-per-ip', 0, 1_000_000),
        floodPenaltyMs: ms('flood-penalty', { zero: 'not at all' }),
        tunnelIdleTimeoutMs: ms('websocket-idle-timeout', { zero: 'never' }),
      },
      lingering: {
        totalMs: ms('lingering-time', { zero: 'close at once' }),
        idleMs: ms('lingering-timeout'),
        // 0 bytes or 0 connections: none lingers, as --lingering-time 0 (lingering that may read
        // nothing cuts the client at its first byte). The byte bound's top is far above any body a
        // client still sends after an early answer; a larger one is a slip of the unit, not a need.
        maxBytes: bytes('lingering-max-bytes', 0, MAX_LINGER_BYTES),
        maxConnections: int('lingering-max-connections', 0, 1_000_000),
        // 0: no bound per address (the pool's only), as every -per-ip limit's 0.
        maxPerAddress: int('lingering-max-per-ip', 0, 1_000_000),
      },
      limits: {
        ...DEFAULT_LIMITS,
        // At least a request line and a Host; at most what HTTP/2's 32-bit SETTINGS_MAX_HEADER_LIST_SIZE holds.
        maxHeaderBytes: bytes('max-header-size', 1_024, 2 ** 32 - 1),
        maxConnections: int('max-connections'),
        // The head is part of the request: a longer head timeout never applies (Node's request
        // timeout cuts first), and the PROXY header's wait, bound by the head's, must not outlast it.
        headersTimeoutMs: Math.min(clientHeaderTimeoutMs, clientRequestTimeoutMs),
        tlsHandshakeTimeoutMs: ms('tls-handshake-timeout'),
        requestTimeoutMs: clientRequestTimeoutMs,
        // At least a second: Node reads 0 as no timeout at all, and a client's next request must
        // have time to arrive. At most an hour, Envoy's default for an idle downstream connection.
        keepAliveTimeoutMs: int('keep-alive-timeout', 1_000, 3_600_000),
        http2IdleTimeoutMs: int('http2-idle-timeout', 1_000, 3_600_000),
      },
      // Read either way: a bad value (EDGE_PROBE_INTERVAL_MS=abc) passed unseen while probing was
      // off, then stopped the router the day probing was turned on.
      probe: probeOn ? probeSettings : null,
      hsts: 'max-age=31536000',
      accessLog,
      adminToken,
      ...adminTokenRotation,
      adminPublicReads: boolFlag(flags, 'admin-public-reads'),
      adminAllowedHosts: hostNames(str('admin-allowed-hosts'), sourceOf(flags, 'admin-allowed-hosts')),
    },
  };
}

/**
 * The admin token from its file or its flag / env variable (which one: secret-source.ts); an error
 * names which of them to fix, never the token.
 */
async function adminTokenOf(flags: ParsedFlags): Promise<string | null> {
  const source = secretSourceOf(flags, 'admin-token', 'admin-token-file', 'the admin token');
  if (source === 'file') return adminTokenFromFile(flags);
  if (source === 'value') return adminTokenChecked(stringFlag(flags, 'admin-token')!, sourceOf(flags, 'admin-token'));
  return null;
}

async function adminTokenFromFile(flags: ParsedFlags): Promise<string> {
  const tokenFile = stringFlag(flags, 'admin-token-file')!;
  if (tokenFile.trim() === '') throw new UsageError(`${sourceOf(flags, 'admin-token-file')}: expected the path of a file holding the admin token, got ""`);
  let token: string;
  try {
    token = await readRegularText(tokenFile, MAX_TOKEN_FILE_BYTES);
  } catch (err) {
    const code = readProblemOf(err);
    // The token itself, given where its file's path belongs, must not reach the log as a path.
    if (!pathWorthShowing(tokenFile)) throw new ConfigError(`${sourceOf(flags, 'admin-token-file')}: ${unshownSecretFile('admin token file', 'token', code)}`);
    throw new ConfigError(`${tokenFile}: cannot read the admin token (${code})`);
  }
  return adminTokenChecked(token, tokenFile);
}

/** The token as clients can send it (admin-token-text.ts), or a usage error naming `source`, never the token. */
function adminTokenChecked(raw: string, source: string): string {
  const parsed = parseAdminToken(raw);
  if (!parsed.ok) throw new UsageError(`${source}: ${parsed.problem}`);
  return parsed.token;
}

/**
 * The listeners' addresses and ports, refused when two of them would bind the same port: before,
 * `validate` passed such a configuration and the router stopped at start saying the port was
 * "already in use (another edge-router, or another program)". The HTTPS and HTTP listeners share
 * --bind; the admin listener collides with them when its address is theirs, or either is a
 * wildcard that covers the other (0.0.0.0: every IPv4 address; ::, dual stack: every address).
 * Port 0 (the system picks one) never collides.
 */
function distinctListeners(flags: ParsedFlags, bind: string, adminHost: string, ports: { https: number; http: number; admin: number }) {
  // IPv6 compared in its one short form: "0:0:0:0:0:0:0:0" or "::0" is the wildcard "::" too. A
  // zone id (fe80::1%eth0, which Node listens on) is no URL syntax: the URL parser threw on it, a
  // stack trace for a valid address. The address is shortened without it and the zone kept.
  // An IPv4-mapped address (::ffff:127.0.0.1) is bound as the IPv4 address it maps: Linux
  // refuses it beside 0.0.0.0 on the same port, so it is compared as that address.
  const canonical = (address: string) => {
    if (!isIPv6(address)) return address;
    const zone = address.indexOf('%');
    const ip = zone === -1 ? address : address.slice(0, zone);
    return unmapAddress(new URL(`http://[${ip}]`).hostname.slice(1, -1)) + (zone === -1 ? '' : address.slice(zone));
  };
  const covers = (a: string, b: string) => a === b || a === '::' || (a === '0.0.0.0' && isIPv4(b));
  const adminShares = covers(canonical(bind), canonical(adminHost)) || covers(canonical(adminHost), canonical(bind));
  const pairs: Array<[string, string]> = [['https-port', 'http-port'], ...(adminShares ? ([['https-port', 'admin-port'], ['http-port', 'admin-port']] as Array<[string, string]>) : [])];
  const value = { 'https-port': ports.https, 'http-port': ports.http, 'admin-port': ports.admin } as Record<string, number>;
  for (const [a, b] of pairs) {
    if (value[a] !== 0 && value[a] === value[b]) throw new UsageError(`${sourceOf(flags, a)} and ${sourceOf(flags, b)} are both ${value[a]}: each listener needs a port of its own`);
  }
  return { bind, adminHost, ...ports };
}

/** Host names as the admin API compares them: lower case, no trailing dot; each must be a DNS name. */
function hostNames(raw: string | undefined, source: string): readonly string[] {
  const names = splitList(raw ?? '').map((n) => n.toLowerCase().replace(/\.$/, '')).filter((n) => n !== '');
  for (const name of names) {
    if (!/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(name)) {
      throw new UsageError(`${source}: expected host names such as prometheus-target.internal, got ${JSON.stringify(name)}`);
    }
  }
  return Object.freeze(names);
}

/**
 * A PROXY header sets the client address the router believes, so, like a forwarding header, it is
 * taken only from the balancer: anyone else who reached the port could pick any address (and with
 * it the region, the per-address limits and, announcing a trusted proxy's, forwarding-header trust).
 */
function proxyProtocolPeers(flags: ParsedFlags): readonly string[] | null {
  const from = stringFlag(flags, 'proxy-protocol-from');
  const source = sourceOf(flags, 'proxy-protocol-from');
  if (!boolFlag(flags, 'proxy-protocol')) {
    if (from !== undefined) throw new UsageError(`${source} applies only with --proxy-protocol`);
    return null;
  }
  const cidrs = splitList(from ?? '');
  if (cidrs.length === 0) {
    throw new UsageError(`${sourceOf(flags, 'proxy-protocol')} needs --proxy-protocol-from <cidrs>, the load balancer's addresses: a PROXY header from anyone else would let them choose their client address`);
  }
  trustedProxyList(cidrs, source); // validates each entry, naming the flag or variable
  return Object.freeze(cidrs);
}

/** Each setting given that does nothing (ignored-settings.ts), as a warning in the process's log. */
export function logIgnoredSettings(resolved: ResolvedRouter, logger: Logger): void {
  for (const text of resolved.ignoredSettings) logger.warn({ event: 'setting_ignored' }, text);
}

/** For tests: a step run after the servers' default pair is read and before the router starts (a reload in that window). */
export interface StartHooks {
  readonly certificatesOpened?: (store: CertificateStore) => Promise<void>;
}

/** Starts one router in this process with TLS set up; returns its handle. */
export async function startRouterProcess(resolved: ResolvedRouter, logger: Logger, hooks: StartHooks = {}) {
  growHeapBeforeMarking();
  const kernelWarning = notsentLowatWarning(await readNotsentLowat());
  if (kernelWarning !== null) logger.warn({ event: 'kernel_setting' }, kernelWarning);
  const { config } = resolved;
  const proxyPeers = resolved.proxyProtocolFrom === null ? null : trustTest(trustedProxyList(resolved.proxyProtocolFrom, '--proxy-protocol-from'));
  const devCert = resolved.tls.devCert && resolved.tls.certFile === undefined && resolved.tls.dir === undefined
    ? await generateDevCertificate({ zone: config.shared.zone })
    : undefined;
  let onReload: (() => void) | undefined;
  // A reload that lands while the router is still starting finds no router to tell: remembered,
  // and applied once it runs (the servers' default pair, and which names the files now cover).
  let opened = false;
  let reloadedWhileStarting = false;
  // Whether the certificate files serve a name (with their wildcards): an issued certificate never replaces one.
  let coveredByFiles = nameCover([]);
  let tlsRefusals = 0;
  if (devCert !== undefined) logger.warn({ event: 'dev_cert' }, `serving a self-signed development certificate for *.${config.shared.zone} and localhost`);
  const store = await CertificateStore.open({
    ...(resolved.tls.certFile ? { certFile: resolved.tls.certFile, keyFile: resolved.tls.keyFile! } : {}),
    ...(resolved.tls.dir ? { dir: resolved.tls.dir } : {}),
    zone: config.shared.zone,
    ...(devCert ? { devCert } : {}),
    onEvent: (e) => {
      if (e.type === 'loaded') {
        coveredByFiles = nameCover(e.names);
        logger.info({ event: 'tls_loaded', names: e.names }, 'TLS certificates loaded');
        if (onReload !== undefined) onReload();
        else if (opened) reloadedWhileStarting = true;
      }
      else if (e.type === 'watch-failed') {
        logger.warn({ event: 'tls_watch', dir: e.dir, error: e.reason }, 'the watch on a certificate directory failed: files replaced there are seen by the periodic check of --tls-cert/--tls-key (every 10 s) and at the next certificate expiry, not at once');
      } else if (e.type === 'file-refused') {
        tlsRefusals++;
        const kept = e.keptPrevious ? 'its previous certificate stays in service' : 'it serves nothing until it is fixed';
        logger.error({ event: 'tls_file_refused', file: e.file, reason: e.reason, keptPrevious: e.keptPrevious }, `a certificate file was refused: ${kept}; the other files are served`);
      } else {
        tlsRefusals++;
        logger.error({ event: 'tls_reload_failed', file: e.file, reason: e.reason }, 'TLS reload refused; keeping the previous certificates (less any that have expired)');
      }
    },
  });
  opened = true;
  const startingDefault = store.defaultCredentials();
  await hooks.certificatesOpened?.(store);
  const issued = resolved.acme === null ? undefined : new IssuedContexts(store.tlsOptions(), (name, reason) => logger.error({ event: 'acme_bad_certificate', name, reason }, 'an issued certificate does not load; not serving it'));
  const fromFiles = sniCallback(store);
  const router = await startEdgeRouter(
    {
      ...config,
      tlsRefusals: () => tlsRefusals,
      tls: {
        ...store.tlsOptions(),
        ...startingDefault,
        // Issued certificates hold only names no file covers, so the files' own choice stands for every other name.
        SNICallback: issued === undefined ? fromFiles : (servername, cb) => {
          const context = issued.contextFor(servername);
          if (context === undefined) fromFiles(servername, cb);
          else cb(null, context);
        },
      },
      ...(resolved.acme === null || issued === undefined ? {} : { acme: { ...resolved.acme, issued, coveredByFiles: (name: string) => coveredByFiles(name) } }),
      ...(proxyPeers === null ? {} : { wrapListener: (server, admit, hasRoom) => proxyProtocolServer(server, { timeoutMs: config.limits.headersTimeoutMs, isTrustedPeer: proxyPeers, admit, hasRoom }) }),
    },
    logger,
  );
  onReload = () => {
    // None left (the default pair expired or was removed): the server's own certificate goes too,
    // or it went on serving the old one to clients without SNI and to every name no file covers.
    router.updateDefaultCredentials(store.defaultCredentials());
    router.certificates?.reconsider();
  };
  if (reloadedWhileStarting) onReload();
  return {
    ...router,
    async close() {
      await router.close();
      store.close();
    },
  };
}

/** A worker whose cluster primary probes: its probe heartbeats count as long as the primary's settings say. */
function primaryProbeTtl(probe: ResolvedRouter['config']['probe']): { probeHeartbeatTtlMs?: number } {
  return probe === null ? {} : { probeHeartbeatTtlMs: probeHeartbeatTtlMs(probe.intervalMs, probe.timeoutMs) };
}

/**
 * A worker's part of the per-address connection limits. node:cluster's primary hands accepted
 * connections to the workers in turn (round robin, its default on Linux), whatever their address,
 * so each worker sees about 1/N of an address's connections and enforces 1/N of the limit: the
 * flags then bound the router, not each worker. Approximate when other clients' connections
 * interleave (an address can be refused a little before the whole limit). Requests in progress per
 * address are not divided: an HTTP/2 client's requests all arrive on one connection, one worker.
 */
export function perWorkerShare(bounds: ClientBounds, workers: number): ClientBounds {
  if (workers <= 1) return bounds;
  return { ...bounds, maxConnectionsPerAddress: workerShare(bounds.maxConnectionsPerAddress, workers), maxConnectRatePerAddress: workerShare(bounds.maxConnectRatePerAddress, workers) };
}

/**
 * A worker's part of the per-address lingering bound, for the same reason: undivided, an address
 * could hold `--lingering-max-per-ip` lingering connections in every worker, N times what the flag
 * says over its `--max-conns-per-ip`. The pool (`--lingering-max-connections`) is each worker's
 * own, as `--max-connections` is.
 */
export function perWorkerLingering(limits: LingerLimits, workers: number): LingerLimits {
  if (workers <= 1) return limits;
  return { ...limits, maxPerAddress: workerShare(limits.maxPerAddress, workers) };
}

/** `limit` divided among `workers`, rounded up (never below the flag in total, never down to nothing); 0 (no limit) stays. */
function workerShare(limit: number, workers: number): number {
  return limit === 0 ? 0 : Math.max(1, Math.ceil(limit / workers));
}

export async function runRouter(flags: ParsedFlags, io: CliIo): Promise<number> {
  const regionsCopy = cluster.isWorker ? regionsCopyFrom(io.env) : undefined;
  const resolved = await resolveRouterFlags(flags, regionsCopy === undefined ? {} : { regionsCopy });
  const logger = createLogger(resolved.logLevel);
  // Once for the router, not once a worker: every worker resolves the same flags.
  if (cluster.isPrimary) logIgnoredSettings(resolved, logger);
  // Without Redis, the primary holds the one registry (and prober) of the whole cluster.
  const primaryHoldsRegistry = resolved.config.redis === null;
  if (resolved.workers > 1 && cluster.isPrimary) {
    // Every worker, a replacement too, reads the regions file as it was at the start (worker-slot.ts).
    const copyDir = await mkdtemp(join(tmpdir(), 'edge-router-regions-'));
    const copy = join(copyDir, 'regions.json');
    // The text the primary read and checked, not the file read again: one replaced in between
    // would have run unchecked in every worker, beside a primary (prober, registry) on the old one.
    const regionsBytes = resolved.config.shared.regions.text ?? (await readFile(resolved.config.shared.regions.file, 'utf8'));
    // A temp-file cleaner (systemd-tmpfiles ages /tmp: 10 days on Debian 13 and Fedora) may remove
    // the copy from under a router that runs for weeks: a replacement worker then failed to start,
    // for ever. Written now, and again before any fork that finds it gone.
    const restoreCopy = async () => {
      if ((await stat(copy).catch(() => undefined))?.isFile() === true) return;
      await mkdir(copyDir, { recursive: true, mode: 0o700 });
      await writeFile(copy, regionsBytes, { mode: 0o600 });
    };
    await restoreCopy();
    // The primary's prober (it holds the registry) connects as the workers' do, TLS files reloaded alike.
    const orchestrators = primaryHoldsRegistry && resolved.config.probe !== null ? connectOrchestrators(resolved.config.shared, resolved.config.connectTimeoutMs, logger) : undefined;
    try {
      return await superviseWorkers({
        workers: resolved.workers,
        logger,
        stopRequested: stopRequested(io),
        registry: primaryHoldsRegistry ? new MemoryRegistry() : null,
        probe: orchestrators === undefined ? null : { ...resolved.config.probe!, connect: orchestrators.connector.connect },
        regions: resolved.config.shared.regions.regions,
        stopTimeoutMs: resolved.config.drainTimeoutMs + 5_000,
        workerEnv: regionsCopyEnv(copy),
        beforeFork: restoreCopy,
      });
    } finally {
      orchestrators?.stop();
      await rm(copyDir, { recursive: true, force: true });
    }
  }
  const link = cluster.isWorker ? new MessageLink(primaryEnd()) : undefined;
  if (link !== undefined) answerHeartbeats(link);
  const clustered: Partial<ResolvedRouter['config']> =
    link === undefined ? {} : { primaryLink: link, ...(primaryHoldsRegistry ? { registry: new PrimaryRegistryClient(link), probe: null, ...primaryProbeTtl(resolved.config.probe) } : {}) };
  const slot = cluster.isWorker ? workerSlotFrom(io.env) : undefined;
  const shares = cluster.isWorker
    ? { clientBounds: perWorkerShare(resolved.config.clientBounds, resolved.workers), lingering: perWorkerLingering(resolved.config.lingering ?? DEFAULT_LINGER_LIMITS, resolved.workers) }
    : {};
  const router = await startRouterProcess({ ...resolved, config: { ...resolved.config, ...clustered, ...shares, ...(slot === undefined ? {} : { workerSlot: slot }) } }, logger);
  if (cluster.isPrimary) writeLine(io.stderr, `edge-router: https :${router.ports.https}, http :${router.ports.http}, admin ${hostAndPort(resolved.config.adminHost, router.ports.admin)}`);
  await stopRequested(io);
  logger.info({ event: 'shutdown' }, 'draining');
  const closed = router.close();
  // Its listeners are closed by now (the drain begins at once): the primary may start its successor.
  if (link !== undefined) {
    void announceDraining(link, stopCause(io)).then((alone) => {
      if (alone) leaveAdminPort(router, logger);
    });
  }
  await closed;
  logger.flush();
  link?.close();
  // A worker's IPC channel to the primary keeps it alive: let go of it so the process can end.
  if (cluster.isWorker) cluster.worker?.disconnect();
  return 0;
}

/**
 * A worker that drains while the router goes on (a fault, a signal of its own) would answer the
 * admin port's /readyz 503 until its drain is over, up to --drain-timeout, for every connection
 * node:cluster hands it, although the router (its other workers, its replacement) is ready: a
 * kubelet or load balancer probing that port saw the router flap. It leaves the port at once; the
 * admin connections it holds (a dashboard's stream, say) are served until its drain ends. When the whole router
 * stops, every worker keeps the port and answers 503, which is what takes the router out of service.
 */
function leaveAdminPort(router: { leaveAdminPort(): void }, logger: Logger): void {
  router.leaveAdminPort();
  logger.info({ event: 'admin_port_left' }, 'draining alone (the router goes on): this worker takes no more admin connections, the others answer them');
}
