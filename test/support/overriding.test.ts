import { describe, expect, it } from 'vitest';
import { overriding } from './overriding.js';

/** Opens its connection on first use, as RedisRegistry.subscribe opens its subscriber connection. */
class LazyConnection {
  connection: { open: boolean } | undefined;
  read(): string {
    return 'real';
  }
  subscribe(): void {
    this.connection ??= { open: true };
  }
  close(): void {
    if (this.connection !== undefined) this.connection.open = false;
  }
  describe(): string {
    return `reads ${this.read()}`;
  }
}

describe('overriding', () => {
  it('answers the overridden member from the override', () => {
    const wrapped = overriding(new LazyConnection(), { read: () => 'counted' });
    expect(wrapped.read()).toBe('counted');
  });

  it('leaves state opened through the wrapper on the object, where its close() finds it', () => {
    // Object.create(target) kept it on the wrapper: a subscriber connection nobody closed, which
    // went on reconnecting to a stopped Redis in every later test file of a shared worker.
    const target = new LazyConnection();
    const wrapped = overriding(target, { read: () => 'counted' });
    wrapped.subscribe();
    target.close();
    expect(target.connection).toEqual({ open: false });
  });

  it("runs the object's own methods on the object itself, its calls to the overridden member included", () => {
    const wrapped = overriding(new LazyConnection(), { read: () => 'counted' });
    expect(wrapped.describe()).toBe('reads real');
  });
});
