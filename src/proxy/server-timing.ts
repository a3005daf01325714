/**
 * The Server-Timing value of a forwarded answer: `route;dur=R, upstream;dur=U`, two decimals each.
 *
 * Made flat. Node checks every response header value with a regular expression before it writes
 * the head (`checkInvalidHeaderChar`), and V8 runs one in JIT code only on a flat string: a value
 * joined per request (a rope of five pieces) went through V8's runtime for that check on every
 * HTTP/1 answer, which flattened it there. Reading a character flattens it in place first, and the
 * check then stays in JIT code: about 470 instructions a value fewer (counted with a harness under
 * callgrind, docs/performance-notes.md). Over HTTP/2 the value is flattened on its way out anyway.
 */
import { millisecondsText2 } from '../core/duration-text.js';

/** Written by each call so that the character read is not dropped as unused. */
let flattenedFirst = 0;

export function serverTimingValue(routeMs: number, upstreamMs: number): string {
  const value = `route;dur=${millisecondsText2(routeMs)}, upstream;dur=${millisecondsText2(upstreamMs)}`;
  flattenedFirst = value.charCodeAt(0);
  return value;
}

/** For tests: the first character of the last value made (what the flattening read). */
export function lastFlattenedFirst(): number {
  return flattenedFirst;
}

/** The metric names the edge writes: a function's entries of these names are its own forgery. */
const EDGE_METRICS = ['route', 'upstream'];
const MENTIONS_EDGE_METRIC = new RegExp(EDGE_METRICS.join('|'), 'i');

/**
 * A function's Server-Timing value without entries named `route` or `upstream` (in any case), or
 * undefined when none is left. The edge adds those two itself, after the function's fields, and
 * browsers' `PerformanceServerTiming` (and most dashboards) list every entry: a function's
 * `route;dur=0` ahead of the edge's read as the edge's own time. Other metrics pass unchanged.
 *
 * Entries are split at commas outside quoted strings (`desc="a, b"` is one entry, RFC 9110 §5.6.4
 * with its backslash escapes). A value with no such entry is returned as it came, not rebuilt.
 */
export function withoutEdgeMetrics(value: string): string | undefined {
  // Most values name neither: one search, nothing split or made.
  if (!MENTIONS_EDGE_METRIC.test(value)) return value;
  const entries = serverTimingEntries(value);
  const kept = entries.filter((entry) => !isEdgeEntry(entry));
  if (kept.length === entries.length) return value;
  const named = kept.filter((entry) => entry !== '');
  return named.length === 0 ? undefined : named.join(', ');
}

/** The value's entries, trimmed, split at commas outside quoted strings. */
function serverTimingEntries(value: string): string[] {
  const entries: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (quoted) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) quoted = false;
    } else if (c === 0x22) quoted = true;
    else if (c === 0x2c /* , */) {
      entries.push(value.slice(start, i).trim());
      start = i + 1;
    }
  }
  entries.push(value.slice(start).trim());
  return entries;
}

/** Whether an entry's metric name (before any `;` parameter) is one of the edge's. */
function isEdgeEntry(entry: string): boolean {
  const semicolon = entry.indexOf(';');
  const name = (semicolon === -1 ? entry : entry.slice(0, semicolon)).trim().toLowerCase();
  return EDGE_METRICS.includes(name);
}
