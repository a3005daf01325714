/**
 * Node's private fields, found by their symbol's description: the few internals the router reads
 * (an HTTP server's connection list, a socket's inactivity timer, an HTTP/2 session's streams),
 * each exercised by a test so that a Node without one shows at once.
 */
const keys = new Map<string, symbol>();

/** The value Node keys with a symbol described `description` on `object` (the symbol found once per description). */
export function privateField<T>(object: object, description: string): T | undefined {
  let key = keys.get(description);
  if (key === undefined) {
    key = Object.getOwnPropertySymbols(object).find((s) => s.description === description);
    if (key === undefined) return undefined;
    keys.set(description, key);
  }
  return ((object as Record<symbol, T | undefined>)[key] ?? undefined) as T | undefined;
}
