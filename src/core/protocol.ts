/** Paths of the router ↔ orchestrator protocol that are not function requests. */

/** Everything under this prefix is the platform's; the public never reaches it through a router. */
export const RESERVED_PREFIX = '/_edge/';

/** A router asks a region for one container of a function, ahead of its next request. */
export const PREWARM_PATH = `${RESERVED_PREFIX}prewarm`;

/**
 * True when a request target (origin form, query allowed) names a path under RESERVED_PREFIX as
 * any server behind the router might read it. The router forwards the path as the client wrote
 * it, and servers differ in what they undo before matching: percent-encoding (`/%5Fedge/`, twice
 * over: `/%255Fedge/`), dot segments (`/x/../_edge/`), repeated or back slashes, case, path
 * parameters (`/_edge;x/`, `/..;/_edge/`: servlet containers take `;…` off each segment). So the test
 * undoes all of it, and errs towards refusing: only names that spell the reserved prefix under
 * some reading are caught, and those are the platform's anyway. Plain paths take the fast exit.
 */
export function isReservedPath(target: string): boolean {
  const end = target.indexOf('?');
  const path = end === -1 ? target : target.slice(0, end);
  if (!NEEDS_NORMALIZING.test(path)) return startsReserved(path);
  let decoded = path;
  for (let i = 0; i < 3 && decoded.includes('%'); i++) decoded = decodePercent(decoded);
  const segments: string[] = [];
  for (const part of decoded.replace(/\\/g, '/').split('/')) {
    const parameters = part.indexOf(';');
    const segment = parameters === -1 ? part : part.slice(0, parameters);
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  return startsReserved(`/${segments.join('/')}/`);
}

/** Percent-encoding, a back slash, a path parameter, or a slash followed by a dot or another slash. */
const NEEDS_NORMALIZING = /[%\\;]|\/[./]/;

/** `/_edge` itself or anything under it, in any case; allocates only for paths that start `/_`. */
function startsReserved(path: string): boolean {
  if (path.charCodeAt(1) !== 0x5f /* _ */ || path.length < RESERVED_PREFIX.length - 1) return false;
  const head = path.slice(0, RESERVED_PREFIX.length).toLowerCase();
  return head === RESERVED_PREFIX || head === RESERVED_PREFIX.slice(0, -1);
}

/** Each valid %XX decoded to its byte's character; anything else left as it is. */
function decodePercent(text: string): string {
  return text.replace(/%([0-9a-f]{2})/gi, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}
