/**
 * `target` with some members answered by `overrides` (a registry whose reads a test counts or
 * delays). Everything else is the target's own: its methods run on the target itself, so that
 * what they open (RedisRegistry.subscribe's connection) is on the object whose close() ends it.
 * Object.create(target) kept such state on the wrapper instead, where no close() found it.
 */
export function overriding<T extends object>(target: T, overrides: Partial<T>): T {
  return new Proxy(target, {
    get(object, key) {
      if (Object.hasOwn(overrides, key)) return overrides[key as keyof T];
      const value: unknown = Reflect.get(object, key, object);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(object) : value;
    },
  });
}
