/** An integer setting from the environment, checked against its range (benchmarks' knobs). */
export function envInt(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) throw new Error(`${name}: expected an integer in [${min}, ${max}], got "${raw}"`);
  return value;
}

/** A number setting (a load average, say) from the environment, checked against its range: `1,5` is refused, not taken as no limit. */
export function envNumber(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) throw new Error(`${name}: expected a number in [${min}, ${max}], got "${raw}"`);
  return value;
}
