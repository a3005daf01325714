/**
 * The error catalogue: every error the router answers or exits with on purpose, by stable code,
 * with its HTTP status, whether its message may be shown to whoever caused it, and the exit code
 * of a command that stops on it. Everything that turns an error into an HTTP answer or an exit
 * code reads this table (statusOf, exitCodeOf, describeError); nothing else decides a status.
 */
import { hostAndPort } from './ip.js';

/** Why a Host could not be resolved to a function. Stable: shown by `explain` and in logs. */
export type HostErrorCode =
  | 'empty_host'
  | 'ip_literal'
  | 'host_outside_zone'
  | 'nested_subdomain'
  | 'label_too_long'
  | 'invalid_characters'
  | 'missing_function'
  | 'missing_org'
  | 'invalid_hyphen'
  | 'invalid_port';

interface ErrorEntry {
  readonly status: number;
  /** The message names only what the caller sent (or is a fixed text): it may be shown to them. */
  readonly expose: boolean;
  /** A command that stops on this error exits with this code (2: fix the input; 1: a fault). */
  readonly exitCode: 1 | 2;
}

const shown = (status: number): ErrorEntry => ({ status, expose: true, exitCode: 2 });

export const ERROR_CATALOGUE = {
  // A public request (ingress and proxy).
  invalid_host: shown(400),
  unknown_host: shown(404),
  misdirected_request: shown(421),
  function_not_found: shown(404),
  function_disabled: shown(403),
  no_healthy_region: shown(503),
  capacity_exhausted: shown(503),
  deadline_unreachable: shown(503),
  too_many_requests: shown(429),
  upstream_unavailable: shown(502),
  upstream_timeout: shown(504),
  payload_too_large: shown(413),
  headers_too_large: shown(431),
  expectation_failed: shown(417),
  bad_request: shown(400),
  transfer_coding_unsupported: shown(501),
  request_timeout: shown(408),
  method_not_allowed: shown(405),
  upgrade_required: shown(426),
  not_found: shown(404),
  shutting_down: shown(503),
  // The admin API.
  unauthorized: shown(401),
  invalid_body: shown(400),
  invalid_query: shown(400),
  invalid_path: shown(400),
  region_not_found: shown(404),
  domain_not_found: shown(404),
  // A write that contradicts what is stored (a deployment outside the org's residency): the
  // command exits 2 on it, too.
  residency_conflict: shown(409),
  // Starting and running commands: one line on stderr, exit 2, never a stack trace.
  usage: shown(400),
  configuration: shown(400),
  geoip_database: shown(400),
  certificate: shown(400),
  registry_unreachable: shown(503),
  registry_schema: shown(503),
  // A restore (`registry import`) into a key of another Redis type: refused, nothing written.
  registry_key_type: shown(409),
  // Any other refusal of Redis's own (OOM, MISCONF, an ACL's NOPERM …): it lasts until an operator acts.
  registry_refused: shown(503),
  address_in_use: shown(503),
  address_not_permitted: shown(503),
  address_not_available: shown(503),
  // A fault: the details are for the log, never for the client.
  internal_error: { status: 500, expose: false, exitCode: 1 },
} as const satisfies Record<string, ErrorEntry>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** The codes a public request may be answered with. */
export type RequestErrorCode =
  | 'invalid_host'
  | 'unknown_host'
  | 'misdirected_request'
  | 'function_not_found'
  | 'function_disabled'
  | 'no_healthy_region'
  | 'capacity_exhausted'
  | 'deadline_unreachable'
  | 'too_many_requests'
  | 'upstream_unavailable'
  | 'upstream_timeout'
  | 'payload_too_large'
  | 'headers_too_large'
  | 'expectation_failed'
  | 'bad_request'
  | 'transfer_coding_unsupported'
  | 'request_timeout'
  | 'method_not_allowed'
  | 'upgrade_required'
  | 'not_found'
  | 'shutting_down'
  | 'registry_unreachable'
  | 'internal_error';

export function statusOf(code: ErrorCode): number {
  return ERROR_CATALOGUE[code].status;
}

export function exitCodeOf(code: ErrorCode): 1 | 2 {
  return ERROR_CATALOGUE[code].exitCode;
}

/** An error raised on purpose: a catalogue code and a message for whoever caused it. */
export class EdgeError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** A configuration problem found at start; the message names the file, the path and the expectation. */
export class ConfigError extends EdgeError {
  override readonly name = 'ConfigError';
  constructor(message: string) {
    super('configuration', message);
  }
}

/** A GeoIP database that cannot be used (missing, corrupt or nonsensical). */
export class GeoDatabaseError extends EdgeError {
  override readonly name = 'GeoDatabaseError';
  constructor(
    readonly file: string,
    readonly reason: string,
    /** Where the path came from (a flag, a variable, the regions file's field), named first when known. */
    readonly source?: string,
  ) {
    super('geoip_database', `${source === undefined ? '' : `${source}: `}${file}: ${reason}`);
  }
}

/** Bad command-line usage (unknown flag, missing value); exit code 2. */
export class UsageError extends EdgeError {
  override readonly name = 'UsageError';
  constructor(message: string) {
    super('usage', message);
  }
}

export interface DescribedError {
  readonly code: ErrorCode;
  readonly status: number;
  /** Safe to show to whoever caused it: the error's own message when exposed, else a fixed text. */
  readonly message: string;
  readonly exitCode: 1 | 2;
}

/**
 * Any thrown value in the catalogue's terms: an EdgeError as it is; a port that cannot be bound
 * (Node's EADDRINUSE / EACCES from listen, or bind in a cluster worker) as the operator problem it is; anything else a fault.
 */
export function describeError(err: unknown): DescribedError {
  const of = (code: ErrorCode, message: string): DescribedError => ({ code, status: statusOf(code), message, exitCode: exitCodeOf(code) });
  if (err instanceof EdgeError) return of(err.code, ERROR_CATALOGUE[err.code].expose ? err.message : 'internal error');
  const sys = err as (NodeJS.ErrnoException & { address?: string; port?: number; syscall?: string }) | null;
  // `bind` is how a node:cluster worker hears of it: the primary binds for the worker. Read as a
  // fault, a taken port printed a stack, exited 1, and the primary replaced its workers for ever.
  if ((sys?.syscall === 'listen' || sys?.syscall === 'bind') && (sys.code === 'EADDRINUSE' || sys.code === 'EACCES' || sys.code === 'EADDRNOTAVAIL')) {
    const where = sys.port === undefined ? 'a port it needs' : hostAndPort(sys.address ?? '', sys.port);
    if (sys.code === 'EADDRINUSE') return of('address_in_use', `${where} is already in use (another edge-router, or another program)`);
    if (sys.code === 'EACCES') return of('address_not_permitted', `${where} may not be bound by this user (ports below 1024 need privileges)`);
    return of('address_not_available', `${where} is not an address of this host (check --bind / --admin-host)`);
  }
  return of('internal_error', 'internal error');
}

/**
 * What was thrown, as text for a log line, whatever it is: `String()` itself throws on an object
 * without a prototype (`Object.create(null)`) or with a `toString` that throws, and inside the
 * fault handler that threw past it, ending the process with no line and no drain.
 */
export function thrownText(value: unknown): string {
  if (value instanceof Error) return value.message;
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
