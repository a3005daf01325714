import { existsSync } from 'node:fs';
import { dirname } from 'node:path';

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
 * Whether a path that could not be read can be shown in the error: only one that names a
 * directory that exists, other than the root, `.` or `..`. Tokens take any visible character, '/'
 * included (base64 starts with one time in 64), so no pattern tells a token from a path; a token
 * given as a path names no such directory, and is then named nowhere. Read once, on a start's
 * error path.
 */
export function pathWorthShowing(value: string): boolean {
  // Not the root, '.' or '..': they always exist, and a token with one '/' (at its start) has "/".
  const parent = dirname(value);
  return value.includes('/') && parent !== '/' && parent !== '.' && parent !== '..' && existsSync(parent);
}

/**
 * Why a secret's file could not be read, for a value pathWorthShowing refused to show. `file`
 * names the file ("private key file", "pre-warm token file"), `secret` what may have been given
 * in its place ("private key", "token"): a one-line base64 key (`kubectl get secret … -o
 * jsonpath='{.data.tls\.key}'`) is no PEM text, and "cannot read <it>" printed it, to be decoded
 * back from the log.
 */
export function unshownSecretFile(file: string, secret: string, code: string): string {
  return `cannot read the ${file} (${code}); its value is not shown: it names no directory that exists, so it may be the ${secret} itself, and this takes the path of a file holding it`;
}
