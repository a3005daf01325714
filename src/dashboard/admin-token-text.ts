/**
 * What an admin token may be, read from any source (flag, variable, file, a file replaced while
 * the router runs). Pure. A problem names the character and its place, never the token: problems go
 * to logs.
 */

/** The shortest admin token taken. */
export const MIN_ADMIN_TOKEN_LENGTH = 16;

/**
 * The token as clients can send it. Surrounding whitespace is dropped (a Kubernetes Secret or
 * `echo` leaves a newline), and only RFC 6750 token characters are taken: `Authorization: Bearer
 * <token>` cannot carry a space or non-ASCII, so a router running with one would refuse every admin
 * call.
 */
export function parseAdminToken(raw: string): { ok: true; token: string } | { ok: false; problem: string } {
  const token = raw.trim();
  if (token === '') return { ok: false, problem: 'the admin token is empty' };
  if (token.length < MIN_ADMIN_TOKEN_LENGTH) return { ok: false, problem: `the admin token must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters` };
  if (!/^[A-Za-z0-9\-._~+/]+=*$/.test(token)) {
    const at = token.search(/[^A-Za-z0-9\-._~+/=]|=+[^=]/);
    const bad = token.charAt(at);
    const what = /\s/.test(bad) ? 'whitespace' : bad.charCodeAt(0) > 0x7e ? 'a non-ASCII character' : bad.charCodeAt(0) < 0x20 ? 'a control character' : bad === '=' ? '"=" before the end' : JSON.stringify(bad);
    return {
      ok: false,
      problem: `expected an admin token of letters, digits and - . _ ~ + / only (then any = padding), as an HTTP Bearer token allows (RFC 6750); found ${what} at character ${at + 1}`,
    };
  }
  return { ok: true, token };
}
