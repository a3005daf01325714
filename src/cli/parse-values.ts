/** Parsers for flag values with units; each error names the flag and what it expected. */
import { UsageError } from '../core/errors.js';

const UNITS: Record<string, number> = { '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

/** `100MB`, `128MiB`, `65536` → bytes. */
export function parseBytes(raw: string, flag: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b|b)?\s*$/i.exec(raw);
  const unit = UNITS[(match?.[2] ?? '').toLowerCase()];
  if (match === null || unit === undefined) throw new UsageError(`--${flag}: expected a size such as 10MB, 128MiB or 65536, got ${JSON.stringify(raw)}`);
  return Math.floor(Number(match[1]) * unit);
}

export function parseInteger(raw: string, flag: string, min: number, max: number): number {
  const value = Number(raw);
  if (!/^\s*-?\d+\s*$/.test(raw) || value < min || value > max) {
    throw new UsageError(`--${flag}: expected a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

export function parsePort(raw: string, flag: string): number {
  return parseInteger(raw, flag, 0, 65_535);
}

export function parseChoice<T extends string>(raw: string, flag: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(raw)) throw new UsageError(`--${flag}: expected one of ${choices.join(', ')}, got ${JSON.stringify(raw)}`);
  return raw as T;
}
