/**
 * Waits for a condition, not for a number of milliseconds: polls until it holds or the time runs
 * out. The time limit is the longest the condition may reasonably take, not a prediction.
 * `until('what', check)` names the condition in the failure; `until(check)` quotes the check's source.
 */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs?: number): Promise<void>;
export async function until(check: () => boolean | Promise<boolean>, timeoutMs?: number): Promise<void>;
export async function until(
  a: string | (() => boolean | Promise<boolean>),
  b?: number | (() => boolean | Promise<boolean>),
  c?: number,
): Promise<void> {
  const [what, check, timeoutMs] = typeof a === 'string' ? [a, b as () => boolean | Promise<boolean>, c ?? 5_000] : [a.toString(), a, (b as number | undefined) ?? 5_000];
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Polls `read` until it gives a value (a rejection counts as none yet); resolves with that value. */
export async function untilDefined<T>(what: string, read: () => Promise<T | undefined>, timeoutMs = 5_000, intervalMs = 10): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
