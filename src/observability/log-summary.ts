/**
 * A log line a client can cause over and over (a guessed admin token, a failing public read)
 * written for the first of a burst at once, then at most once per interval, saying how many it
 * stands for: a flood makes one line an interval, not one each, and the count keeps what was left
 * out. The last call held back is written when its interval ends, so the latest of a burst (an
 * operator's second failed call half a second after the first) is never lost for want of a third.
 */
export function summarisedEvery<A>(intervalMs: number, emit: (arg: A, count: number) => void, now: () => number = () => performance.now()): (arg: A) => void {
  let since = 0;
  let lineAt = -Infinity;
  let held: { arg: A } | undefined;
  let trailing: NodeJS.Timeout | undefined;
  const write = (arg: A) => {
    if (trailing !== undefined) clearTimeout(trailing);
    trailing = undefined;
    held = undefined;
    lineAt = now();
    const count = since;
    since = 0;
    emit(arg, count);
  };
  return (arg) => {
    since++;
    const wait = intervalMs - (now() - lineAt);
    if (wait <= 0) return write(arg);
    held = { arg };
    // Unref'd: a line still held at exit is counted in none, a price worth not holding the process.
    trailing ??= setTimeout(() => held !== undefined && write(held.arg), wait).unref();
  };
}
