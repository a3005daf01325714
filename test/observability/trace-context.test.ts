import { describe, expect, it } from 'vitest';
import { clientTraceContext, IdentityPool, newIdentity, randomHex, traceContextOf, validTraceparent } from '../../src/observability/trace-context.js';

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

  it('cuts a new request id and trace from records laid out for them, the text flat', () => {
    let draw = 0;
    const pool = new IdentityPool(2, (into) => {
      for (let i = 0; i < into.length; i++) into[i] = (draw * 7 + i) & 0xff;
      draw++;
    });
    // The first record's hex is that of bytes 0…43: separators written over digits 0–2, 35, 52–54.
    const hex = Buffer.from(Array.from({ length: 88 }, (_, i) => i & 0xff)).toString('hex');
    const first = pool.next();
    expect(first).toEqual({
      requestId: hex.slice(55, 87),
      trace: { traceparent: `00-${hex.slice(3, 35)}-${hex.slice(36, 52)}-00`, traceId: hex.slice(3, 35), fromClient: false },
    });
    expect(validTraceparent(first.trace.traceparent)).toEqual({ traceId: first.trace.traceId });
    const second = pool.next();
    expect(second.trace.traceparent).toBe(`00-${hex.slice(88 + 3, 88 + 35)}-${hex.slice(88 + 36, 88 + 52)}-00`);
    // Past the last record, a refill: new bytes.
    const third = pool.next();
    expect(draw).toBe(2);
    expect(third.trace.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    expect(third.trace.traceparent).not.toBe(first.trace.traceparent);
  });

  it('passes over a record whose trace id or parent id is all zeros', () => {
    const records = [0, 1, 2].map((kind) => {
      const bytes = Buffer.alloc(44, 0xab);
      if (kind === 0) bytes.fill(0, 1, 18); // trace id: digits 3–34
      if (kind === 1) bytes.fill(0, 18, 26); // parent id: digits 36–51
      return bytes;
    });
    const pool = new IdentityPool(3, (into) => Buffer.concat(records).copy(into));
    const { trace, requestId } = pool.next();
    const third = 'ab'.repeat(44);
    expect(trace.traceparent).toBe(`00-${third.slice(3, 35)}-${third.slice(36, 52)}-00`);
    expect(requestId).toBe(third.slice(55, 87));
  });

  it('draws new ids that are all different, with client ids and traces kept apart', () => {
    const drawn = Array.from({ length: 1_000 }, () => newIdentity());
    for (const { requestId, trace } of drawn) {
      expect(requestId).toMatch(/^[0-9a-f]{32}$/);
      expect(validTraceparent(trace.traceparent)).toEqual({ traceId: trace.traceId });
      expect(trace.fromClient).toBe(false);
    }
    expect(new Set(drawn.flatMap(({ requestId, trace }) => [requestId, trace.traceId])).size).toBe(2_000);
    expect(clientTraceContext(CLIENT)).toEqual(traceContextOf(CLIENT));
    expect(clientTraceContext('garbage')).toBeNull();
    expect(clientTraceContext([CLIENT, CLIENT])).toBeNull();
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
