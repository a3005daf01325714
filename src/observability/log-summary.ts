/**
 * A log line a client can cause over and over (a guessed admin token, a failing public read)
 * written for the first of a burst, then at most once per interval, saying how many it stands for:
 * a flood makes one line an interval, not one each, and the count keeps what was left out.
 */
export function summarisedEvery<A>(intervalMs: number, emit: (arg: A, count: number) => void, now: () => number = () => performance.now()): (arg: A) => void {
  let since = 0;
  let lineAt = -Infinity;
  return (arg) => {
    since++;
    const at = now();
    if (at - lineAt < intervalMs) return;
    lineAt = at;
    const count = since;
    since = 0;
    emit(arg, count);
  };
}
