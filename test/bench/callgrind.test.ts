import { describe, expect, it } from 'vitest';
import { callgrindTotal, dumpThread, netCosts, PerfMap, selfCosts, splitThreads } from '../../bench/callgrind.js';

const OUT = '/tmp/x/router.callgrind';

describe('callgrind output', () => {
  it('reads the totals line, or nothing', () => {
    expect(callgrindTotal('events: Ir\nsummary: 1234\ntotals: 1234\n')).toBe(1234);
    expect(callgrindTotal('events: Ir\n')).toBeUndefined();
  });

  it("names a per-thread dump's dump and thread, and nothing else", () => {
    expect(dumpThread(OUT, `${OUT}.1-01`)).toEqual({ dump: 1, thread: 1 });
    expect(dumpThread(OUT, `${OUT}.2-11`)).toEqual({ dump: 2, thread: 11 });
    expect(dumpThread(OUT, `${OUT}.1`)).toBeUndefined();
    expect(dumpThread(OUT, '/tmp/x/bare.callgrind.1-01')).toBeUndefined();
  });

  it("splits the last dump into the main thread's count and the rest", () => {
    const file = (suffix: string, total: number) => ({ name: `${OUT}.${suffix}`, text: `totals: ${total}\n` });
    // An earlier dump (a second subject run, say) is ignored: only the last one counts.
    const files = [file('1-01', 999), file('2-01', 1000), file('2-02', 0), file('2-03', 70), file('2-11', 5), file('1-03', 12345)];
    expect(splitThreads(OUT, files)).toEqual({ main: 1000, others: 75, mainFile: `${OUT}.2-01` });
    // Chosen by number, or counted back from the last.
    expect(splitThreads(OUT, files, 1)).toEqual({ main: 999, others: 12345, mainFile: `${OUT}.1-01` });
    expect(splitThreads(OUT, files, -1)).toEqual({ main: 999, others: 12345, mainFile: `${OUT}.1-01` });
    expect(splitThreads(OUT, files, 3)).toBeUndefined();
    expect(splitThreads(OUT, [file('1-02', 5)])).toBeUndefined();
    expect(splitThreads(OUT, [])).toBeUndefined();
  });
});

describe('naming JIT code', () => {
  const map = new PerfMap(
    [
      '3d51771e5040 1a0 JS:*processHeader /app/node_modules/undici/lib/core/request.js:385:24',
      '3d51771e6000 80 JS:~old /app/x.js:1:1',
      // Recompiled later at the same address: the newer line wins.
      '3d51771e6000 80 JS:*new /app/x.js:1:1',
      'not a map line',
    ].join('\n'),
  );

  it('finds the function whose code covers an address', () => {
    expect(map.nameAt(0x3d51771e5040)).toBe('JS:*processHeader /app/node_modules/undici/lib/core/request.js:385:24');
    expect(map.nameAt(0x3d51771e5100)).toBe('JS:*processHeader /app/node_modules/undici/lib/core/request.js:385:24');
    expect(map.nameAt(0x3d51771e51e0)).toBeUndefined(); // just past its end
    expect(map.nameAt(0x3d51771e6010)).toBe('JS:*new /app/x.js:1:1');
    expect(map.nameAt(0x10)).toBeUndefined();
  });

  it("adds up an annotate listing's entries by name, named JIT code included, largest first", () => {
    const listing = [
      '--------------------------------------------------------------------------------',
      '1,150,000,000 (100.0%)  PROGRAM TOTALS',
      '--------------------------------------------------------------------------------',
      'Ir                   file:function',
      '49,065,000 ( 4.27%)  ???:Builtins_KeyedLoadIC_Megamorphic [/usr/bin/node]',
      '16,965,000 ( 1.48%)  ???:0x00003d51771e5040 [???]',
      ' 5,000,000 ( 0.43%)  ???:0x00003d51771e50a0 [???]',
      ' 1,000,000 ( 0.09%)  ???:0x0000000000000010 [???]',
    ].join('\n');
    expect(selfCosts(listing, map)).toEqual([
      { name: 'Builtins_KeyedLoadIC_Megamorphic', instructions: 49_065_000 },
      { name: 'JS:*processHeader /app/node_modules/undici/lib/core/request.js:385:24', instructions: 21_965_000 },
      { name: 'JIT code 0x0000000000000010', instructions: 1_000_000 },
    ]);
    // Without a map the addresses stay as they are.
    expect(selfCosts(listing, undefined).map((f) => f.name)).toContain('JIT code 0x00003d51771e5040');
  });
});

describe('net of the clock', () => {
  it("takes an idle count's functions off a load count's, by name, and re-sorts", () => {
    const load = [
      { name: 'probe', instructions: 900 },
      { name: 'handle', instructions: 800 },
      { name: 'timers', instructions: 100 },
    ];
    const idle = [
      { name: 'probe', instructions: 850 },
      { name: 'timers', instructions: 60 },
      { name: 'only-idle', instructions: 5 },
    ];
    expect(netCosts(load, idle)).toEqual([
      { name: 'handle', instructions: 800 },
      { name: 'probe', instructions: 50 },
      { name: 'timers', instructions: 40 },
    ]);
  });
});
