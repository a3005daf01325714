/**
 * How far V8 lets the heap grow past what the last full collection kept before it marks again.
 *
 * A proxy keeps little live state (about 25 MB here) but promotes a steady stream of short-lived
 * connection objects: every TLS connection, parser and upstream socket that lives a second. With
 * V8's default growth the old generation fills again within a second under a few hundred
 * connections, and each full mark costs 20–40 ms of the one thread every client shares (measured
 * in `npm run bench:hostile`: one mark-compact a second, the event loop stalled 40 ms each time).
 * Letting the heap grow to four times the live set before the next mark spaces them ten times
 * further apart, for some tens of MB of memory.
 *
 * Applied at run time (V8 reads this limit at every full collection). A `--heap-growing-percent`
 * given on node's own command line wins.
 */
import { setFlagsFromString } from 'node:v8';

export const HEAP_GROWING_PERCENT = 300;

export function growHeapBeforeMarking(execArgv: readonly string[] = process.execArgv): boolean {
  if (execArgv.some((arg) => arg.startsWith('--heap-growing-percent') || arg.startsWith('--heap_growing_percent'))) return false;
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  return true;
}
