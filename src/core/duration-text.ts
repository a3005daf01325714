/**
 * Durations in milliseconds as text with a fixed number of decimals, for the access log (three) and
 * Server-Timing (two). `Number.prototype.toFixed` goes through V8's runtime each time (about 1,000
 * instructions a call, and the router made five per request); whole units split into integer text
 * (cached by V8 for small numbers) and an entry of a table of fractions cost a quarter of that.
 */

const fractions = (digits: number): readonly string[] => Array.from({ length: 10 ** digits }, (_, i) => String(i).padStart(digits, '0'));
/** "000" … "999" */
const THOUSANDTHS = fractions(3);
/** "00" … "99" */
const HUNDREDTHS = fractions(2);
/** Beyond this many units (about 35 minutes in microseconds) the integer arithmetic below would overflow. */
const MAX_FAST_UNITS = 0x7fffffff;

/** `value` with three decimals ("2.000" for 2), as `toFixed(3)` but for rounding at exact halves. */
export function millisecondsText3(value: number): string {
  const us = Math.round(value * 1000);
  if (!(us >= 0 && us <= MAX_FAST_UNITS)) return value.toFixed(3); // negative, NaN or huge: never on a normal request
  const whole = (us / 1000) | 0;
  return `${whole}.${THOUSANDTHS[us - whole * 1000]!}`;
}

/** `value` with two decimals ("2.00" for 2), as `toFixed(2)` but for rounding at exact halves. */
export function millisecondsText2(value: number): string {
  const hundredths = Math.round(value * 100);
  if (!(hundredths >= 0 && hundredths <= MAX_FAST_UNITS)) return value.toFixed(2);
  const whole = (hundredths / 100) | 0;
  return `${whole}.${HUNDREDTHS[hundredths - whole * 100]!}`;
}
