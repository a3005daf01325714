import { describe, expect, it } from 'vitest';
import { boundedFunctionLists, busiestFunctions, describeRegion } from '../../src/registry/region-view.js';
import { regionHealthFromConfig } from '../../src/registry/static-snapshot.js';
import { REGIONS } from '../support/regions.js';

describe('busiestFunctions', () => {
  it('lists the functions with the most containers first, names breaking ties, at most the limit', () => {
    const health = {
      ...regionHealthFromConfig(REGIONS[0]!),
      functionLoads: new Map([
        ['acme/web', { idle: 0, busy: 1, coldStartMs: null }],
        ['acme/api', { idle: 2, busy: 3, coldStartMs: 200 }],
        ['beta/api', { idle: 1, busy: 0, coldStartMs: 150 }],
        ['acme/cron', { idle: 1, busy: 0, coldStartMs: null }],
      ]),
    };
    expect(busiestFunctions(health, 3)).toEqual([
      { fn: 'acme/api', idle: 2, busy: 3 },
      { fn: 'acme/cron', idle: 1, busy: 0 },
      { fn: 'acme/web', idle: 0, busy: 1 },
    ]);
    expect(busiestFunctions(regionHealthFromConfig(REGIONS[0]!))).toEqual([]);
  });
});

describe('boundedFunctionLists', () => {
  it('keeps the warm functions with the most containers, then the first by name whatever order they came in, listed by name', () => {
    const warm = Array.from({ length: 1_000 }, (_, i) => `org/fn-${String(999 - i).padStart(4, '0')}`); // reverse name order
    const health = {
      ...regionHealthFromConfig(REGIONS[0]!),
      warmFunctions: new Set(warm),
      functionLoads: new Map([
        ['org/fn-0500', { idle: 1, busy: 0, coldStartMs: null }],
        ['org/fn-0900', { idle: 0, busy: 4, coldStartMs: null }],
        ['org/gone', { idle: 0, busy: 0, coldStartMs: null }],
      ]),
    };
    expect(boundedFunctionLists(health, 4)).toEqual({
      warmFunctions: ['org/fn-0000', 'org/fn-0001', 'org/fn-0500', 'org/fn-0900'],
      warmFunctionsTotal: 1_000,
      functionLoads: { 'org/fn-0500': { idle: 1, busy: 0, coldStartMs: null }, 'org/fn-0900': { idle: 0, busy: 4, coldStartMs: null }, 'org/gone': { idle: 0, busy: 0, coldStartMs: null } },
      functionLoadsTotal: 3,
      truncated: true,
    });
  });

  it('writes short lists whole, and says nothing was cut', () => {
    const health = { ...regionHealthFromConfig(REGIONS[0]!), warmFunctions: new Set(['b/x', 'a/y']) };
    expect(boundedFunctionLists(health, 2)).toEqual({ warmFunctions: ['a/y', 'b/x'], warmFunctionsTotal: 2, functionLoads: {}, functionLoadsTotal: 0, truncated: false });
  });
});

describe('describeRegion', () => {
  it('shows the median service time its orchestrator reports beside the request times, and null when it reports none', () => {
    const health = { ...regionHealthFromConfig(REGIONS[0]!), latencyMs: { p50: 900, p99: 2_000 }, serviceMs: 120 };
    expect(describeRegion(REGIONS[0]!, health, 0)).toMatchObject({ latencyMs: { p50: 900, p99: 2_000 }, serviceMs: 120 });
    expect(describeRegion(REGIONS[0]!, regionHealthFromConfig(REGIONS[0]!), 0)).toMatchObject({ serviceMs: null });
  });

  it('gives no request or service time (null) for a region that has served nothing, not 0 ms, which reads as very fast', () => {
    // An orchestrator's latency window answers 0 for every figure until a request has been served
    // (nothing in the heartbeat counts the samples, and routers of earlier versions would refuse a
    // heartbeat with a new field or a null): both request times at 0 are that, never a measurement.
    const idle = { ...regionHealthFromConfig(REGIONS[0]!), latencyMs: { p50: 0, p99: 0 }, serviceMs: 0 };
    expect(describeRegion(REGIONS[0]!, idle, 0)).toMatchObject({ latencyMs: { p50: null, p99: null }, serviceMs: null });
    // No heartbeat yet (the snapshot's default) reads the same.
    expect(describeRegion(REGIONS[0]!, regionHealthFromConfig(REGIONS[0]!), 0)).toMatchObject({ latencyMs: { p50: null, p99: null } });
    // Requests answered without ever holding a container (each refused or failed before one was
    // free): request times, but no service time.
    const unserved = { ...idle, latencyMs: { p50: 30_000, p99: 30_000 } };
    expect(describeRegion(REGIONS[0]!, unserved, 0)).toMatchObject({ latencyMs: { p50: 30_000, p99: 30_000 }, serviceMs: null });
    // A fast region keeps its figures, however small.
    const fast = { ...idle, latencyMs: { p50: 0, p99: 0.1 }, serviceMs: 0.1 };
    expect(describeRegion(REGIONS[0]!, fast, 0)).toMatchObject({ latencyMs: { p50: 0, p99: 0.1 }, serviceMs: 0.1 });
  });
});
