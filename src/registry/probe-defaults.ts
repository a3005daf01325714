/**
 * The prober's defaults, apart from the prober: the router's and `probe`'s flags show them in
 * `--help`, which must not load the prober's HTTP client (undici) to say so.
 */
export const DEFAULT_PROBE_PATH = '/healthz';
export const DEFAULT_PROBE_INTERVAL_MS = 2_000;
export const DEFAULT_PROBE_TIMEOUT_MS = 1_000;
