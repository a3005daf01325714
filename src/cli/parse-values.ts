/**
 * Parsers for flag values with units. Each takes the value's source, as `sourceOf` gives it (the
 * flag, or the env variable that set it), so an error names what the operator has to change.
 */
import { isIP } from 'node:net';
import { UsageError } from '../core/errors.js';

const UNITS: Record<string, number> = { '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

/**
 * `100MB`, `128MiB`, `65536` → bytes, from `min` to `max`. Beyond 2^53 a byte count is no longer
 * exact, and each limit's own range is its caller's to give (HTTP/2 carries the header limit in
 * 32 bits; Node threw on the first connection when it was larger).
 */
export function parseBytes(raw: string, source: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b|b)?\s*$/i.exec(raw);
  const unit = UNITS[(match?.[2] ?? '').toLowerCase()];
  const bytes = match === null || unit === undefined ? NaN : Math.floor(Number(match[1]) * unit);
  if (!Number.isSafeInteger(bytes)) throw new UsageError(`${source}: expected a size such as 10MB, 128MiB or 65536, got ${JSON.stringify(raw)}`);
  if (bytes < min || bytes > max) throw new UsageError(`${source}: expected a size from ${min} to ${max} bytes, got ${JSON.stringify(raw)}`);
  return bytes;
}

/**
 * A plain decimal number in [min, max], such as 2 or 0.25. Number() alone would also take hex
 * (0x32 is 50), exponents (1e3), Infinity and blank text (0): a value an operator never meant.
 */
export function parseDecimal(raw: string, source: string, min: number, max: number, what = 'a number'): number {
  const value = Number(raw);
  if (!/^\s*\d+(\.\d+)?\s*$/.test(raw) || value < min || value > max) {
    throw new UsageError(`${source}: expected ${what} from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

export function parseInteger(raw: string, source: string, min: number, max: number, what = 'a whole number'): number {
  const value = Number(raw);
  if (!/^\s*-?\d+\s*$/.test(raw) || value < min || value > max) {
    throw new UsageError(`${source}: expected ${what} from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

/**
 * The least a timing setting takes (0 aside, where 0 means none): a timeout of 30 ms is "30 s"
 * written without its unit far more often than a wish, and it answered every request 504, cut every
 * client or ended the drain at once, with nothing in the log to say why.
 */
export const MIN_TIMING_MS = 100;

/**
 * A time in whole milliseconds in [MIN_TIMING_MS, max], or 0 where `zero` says what 0 means.
 * A value under the floor is named as the seconds it probably was.
 */
export function parseMilliseconds(raw: string, source: string, options: { max?: number; zero?: string } = {}): number {
  const { max = 86_400_000, zero } = options;
  const value = Number(raw);
  const whole = /^\s*\d+\s*$/.test(raw);
  if (whole && ((value >= MIN_TIMING_MS && value <= max) || (value === 0 && zero !== undefined))) return value;
  const orZero = zero === undefined ? '' : ` (or 0: ${zero})`;
  const seconds = whole && value > 0 && value < MIN_TIMING_MS && value * 1000 <= max ? `; in milliseconds, ${value} s is ${value * 1000}` : '';
  throw new UsageError(`${source}: expected a time in milliseconds from ${MIN_TIMING_MS} to ${max}${orZero}, got ${JSON.stringify(raw)}${seconds}`);
}

export function parsePort(raw: string, source: string): number {
  return parseInteger(raw, source, 0, 65_535);
}

export function parseChoice<T extends string>(raw: string, source: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(raw)) throw new UsageError(`${source}: expected one of ${choices.join(', ')}, got ${JSON.stringify(raw)}`);
  return raw as T;
}

/**
 * An address to listen on. Only an IP literal: a name would be looked up when the listener
 * starts, long after `validate` passed it, and could answer with any address.
 */
export function parseAddress(raw: string, source: string): string {
  if (isIP(raw) === 0) throw new UsageError(`${source}: expected an IP address, got ${JSON.stringify(raw)}`);
  return raw;
}
