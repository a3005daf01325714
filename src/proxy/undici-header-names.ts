/**
 * Tells undici the names of the headers the router adds to every upstream request, so that it
 * takes them as they are.
 *
 * For each request header undici looks the name up in a table of well-known names
 * (`headerNameLowerCasedRecord`, in `undici/lib/core/constants.js`); a name missing from it is
 * lower-cased and checked against the token grammar, with a regular expression for names of twelve
 * characters or more. Eight of the ten names the router adds (x-real-ip, x-forwarded-*, x-request-id,
 * traceparent, x-edge-*) are not in the table: callgrind counted that lower-casing and checking at
 * about 2 % of the router's instructions per request (docs/performance-notes.md). The names are
 * constants, lower-case tokens already, so the table entry each gets (the name itself) is what the
 * lower-casing would have produced, and the check could only pass; nothing else reads the table
 * but undici's own name normalisation, which gives the same answer for them with or without it.
 *
 * The table is internal to undici (not part of its API). When it cannot be found, or is not a plain
 * object of strings, nothing is changed and undici works as before, only with the extra steps:
 * `registerHeaderNames` says which (and a test fails first when an undici upgrade moves it).
 */
import { createRequire } from 'node:module';

const TOKEN = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;

type NameTable = Record<string, string | undefined>;

/** undici's table, from the same undici the router imports (its module cache), or undefined. */
export function undiciNameTable(): NameTable | undefined {
  try {
    const constants = createRequire(import.meta.url)('undici/lib/core/constants.js') as { headerNameLowerCasedRecord?: unknown };
    const table = constants.headerNameLowerCasedRecord;
    if (typeof table !== 'object' || table === null) return undefined;
    // The layout this relies on: a well-known name maps to its lower-case spelling.
    if ((table as NameTable)['Content-Type'] !== 'content-type' || (table as NameTable)['content-type'] !== 'content-type') return undefined;
    return table as NameTable;
  } catch {
    return undefined;
  }
}

/** Adds `names` (lower-case tokens; anything else is left out) to undici's table. Returns false when the table is not there. */
export function registerHeaderNames(names: readonly string[]): boolean {
  const table = undiciNameTable();
  if (table === undefined) return false;
  for (const name of names) if (TOKEN.test(name)) table[name] ??= name;
  return true;
}
