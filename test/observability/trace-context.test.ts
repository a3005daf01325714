import { describe, expect, it } from 'vitest';
import { randomHex, traceContextOf, validTraceparent } from '../../src/observability/trace-context.js';

const CLIENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('trace context', () => {
  it("keeps a client's valid traceparent as it is", () => {
    expect(traceContextOf(CLIENT)).toEqual({ traceparent: CLIENT, traceId: '4bf92f3577b34da6a3ce929d0e0e4736', fromClient: true });
  });

  it('starts a new trace when there is none, or it is malformed, version ff, or all-zero', () => {
    for (const bad of [
      undefined,
      'garbage',
      CLIENT.toUpperCase(),
      'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`,
      `00-4bf92f3577b34da6a3ce929d0e0e4736-${'0'.repeat(16)}-01`,
      [CLIENT, CLIENT],
    ]) {
      const trace = traceContextOf(bad as string | undefined);
      expect(trace.fromClient).toBe(false);
      expect(trace.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
      expect(validTraceparent(trace.traceparent)).toEqual({ traceId: trace.traceId });
    }
  });

  it('builds a new trace from the hex it is handed, and ignores it for a valid client trace', () => {
    const hex = `${'a'.repeat(32)}${'b'.repeat(16)}${'c'.repeat(32)}`;
    expect(traceContextOf(undefined, hex)).toEqual({ traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-00`, traceId: 'a'.repeat(32), fromClient: false });
    expect(traceContextOf(CLIENT, hex).traceparent).toBe(CLIENT);
    // All-zero ids drawn are made valid.
    const zeros = traceContextOf(undefined, '0'.repeat(48));
    expect(validTraceparent(zeros.traceparent)).toEqual({ traceId: zeros.traceId });
  });

  it('draws random hex of the length asked, across refills of its pool', () => {
    const draws = Array.from({ length: 1_000 }, () => randomHex(40));
    for (const d of draws) expect(d).toMatch(/^[0-9a-f]{80}$/);
    expect(new Set(draws).size).toBe(1_000);
    for (const bad of [2_561, 0, -5, 2.5, Number.NaN]) expect(() => randomHex(bad)).toThrow(RangeError);
    // Refused draws moved nothing: what follows is still new.
    const after = randomHex(40);
    expect(draws).not.toContain(after);
  });

  it('never gives two requests the same trace id', () => {
    const ids = new Set(Array.from({ length: 2_000 }, () => traceContextOf(undefined).traceId));
    expect(ids.size).toBe(2_000);
  });
});
