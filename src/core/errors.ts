/**
 * The error catalogue: every error the router raises on purpose has a stable code here.
 * Translation to HTTP status happens in exactly one place (the ingress); this file only names.
 */

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

/** A configuration problem found at start; the message names the file, the path and the expectation. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'EDGE_CONFIG';
  constructor(message: string) {
    super(message);
  }
}

/** A GeoIP database that cannot be used (missing, corrupt or nonsensical). */
export class GeoDatabaseError extends Error {
  override readonly name = 'GeoDatabaseError';
  readonly code = 'EDGE_GEOIP_DATABASE';
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`${file}: ${reason}`);
  }
}

/** Bad command-line usage (unknown flag, missing value); exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly code = 'EDGE_USAGE';
}
