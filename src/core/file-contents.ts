/**
 * Flags that name a file holding a secret (--tls-key, --orchestrator-client-key,
 * --admin-token-file) are sometimes given the secret itself: `EDGE_TLS_KEY="$(cat tls.key)"`, or a
 * Kubernetes Secret put in the environment rather than mounted. Reading that "path" fails, and the
 * error that named the path it could not read printed the private key (or the token) to stderr and
 * the log. These tell such a value apart so that it is refused without being shown.
 */

/** PEM text, or several lines: a file's contents, never a path anyone meant. */
export function isFileContents(value: string): boolean {
  return value.includes('-----BEGIN') || /[\r\n]/.test(value);
}

/**
 * Whether a path that could not be read may be a bearer token given in its place: at least 16 of
 * the characters an RFC 6750 token holds, and not absolute (a token given as a path is named
 * nowhere rather than shown; masking a relative path too is the harmless side to err on).
 */
export function mayBeToken(value: string): boolean {
  return !value.startsWith('/') && /^[A-Za-z0-9\-._~+/]{16,}=*$/.test(value.trim());
}
