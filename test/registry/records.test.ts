import { describe, expect, it } from 'vitest';
import { DECODE_SLICE, MAX_RECORD_BYTES, RecordDecoder, decodeRecord, heartbeatSchema, overridesSchema } from '../../src/registry/records.js';
import { heartbeat } from './registry-contract.js';
import { MAX_REPORTED_FUNCTIONS } from '../../src/registry/health-registry.js';

const KNOWN = new Set(['atl', 'fra']);

function decoder() {
  const rejected: string[] = [];
  return { decode: new RecordDecoder(KNOWN, (where, reason) => rejected.push(`${where}: ${reason}`)), rejected };
}

describe('decodeRecord', () => {
  it.each([
    [null, 'missing'],
    ['{', 'not valid JSON'],
    ['{"drained":"yes","weight":null}', 'drained: Invalid input: expected boolean, received string'],
    ['{"drained":true,"weight":null,"extra":1}', '(value): Unrecognized key: "extra"'],
    ['x'.repeat(MAX_RECORD_BYTES + 1), `record of ${MAX_RECORD_BYTES + 1} bytes exceeds ${MAX_RECORD_BYTES}`],
  ])('%#: refuses with a reason', (raw, reason) => {
    expect(decodeRecord(overridesSchema, raw)).toEqual({ ok: false, reason });
  });
  it('accepts a valid value', () => {
    expect(decodeRecord(overridesSchema, '{"drained":true,"weight":2}')).toEqual({ ok: true, value: { drained: true, weight: 2 } });
  });
});

describe('RecordDecoder: each bad entry is left out with where and why, the rest kept', () => {
  it('heartbeats: by key, refusing unknown regions and a heartbeat filed under another region', () => {
    const { decode, rejected } = decoder();
    const atl = heartbeat('atl', { reportedAt: 1 });
    const out = decode.heartbeats(['atl', 'fra', 'nyc'], [JSON.stringify(atl), JSON.stringify(heartbeat('atl')), null]);
    expect(out).toEqual(new Map([['atl', atl]]));
    expect(rejected).toEqual(['hb:fra: heartbeat names region atl']);
    decode.heartbeats(['atl'], [JSON.stringify(heartbeat('syd'))]);
    decode.heartbeats(['atl'], ['{"region":"atl"}']);
    expect(rejected.slice(1)).toEqual(['hb:atl: unknown region syd', expect.stringMatching(/^hb:atl: status: /)]);
  });

  it('heartbeats may carry a bounded per-function list (idle, busy, cold start), refused past the bound', () => {
    const { decode, rejected } = decoder();
    const functions = [{ fn: 'acme/api', idle: 2, busy: 1, coldStartMs: 240 }, { fn: 'acme/web', idle: 0, busy: 3, coldStartMs: null }];
    const withList = heartbeat('atl', { functions, functionsTotal: 40 });
    expect(decode.heartbeats(['atl'], [JSON.stringify(withList)]).get('atl')).toEqual(withList);
    const tooMany = heartbeat('atl', { functions: Array.from({ length: MAX_REPORTED_FUNCTIONS + 1 }, (_, i) => ({ fn: `acme/f${i}`, idle: 0, busy: 1, coldStartMs: null })) });
    expect(decode.heartbeats(['atl'], [JSON.stringify(tooMany)]).size).toBe(0);
    expect(rejected).toEqual([expect.stringMatching(/^hb:atl: functions: /)]);
  });

  describe("a report's median service time, stored beside it (service:<region>)", () => {
    const atl = heartbeat('atl', { reportedAt: 1_000 });
    const fra = heartbeat('fra', { reportedAt: 2_000 });
    const withService = (raws: (string | null)[]) => {
      const { decode, rejected } = decoder();
      const reports = decode.heartbeats(['atl', 'fra'], [JSON.stringify(atl), JSON.stringify(fra)]);
      return { reports: decode.serviceTimes(reports, ['atl', 'fra'], raws), rejected };
    };

    it('is attached to the report it was written with', () => {
      const { reports, rejected } = withService(['{"reportedAt":1000,"serviceMs":42.5}', '{"reportedAt":2000,"serviceMs":0}']);
      expect(reports).toEqual(new Map([['atl', { ...atl, serviceMs: 42.5 }], ['fra', { ...fra, serviceMs: 0 }]]));
      expect(rejected).toEqual([]);
    });

    it('may be absent (an orchestrator of an earlier version), or left from an earlier report: the report stands without one', () => {
      const { reports, rejected } = withService([null, '{"reportedAt":1999,"serviceMs":42}']);
      expect(reports).toEqual(new Map([['atl', atl], ['fra', fra]]));
      expect(rejected).toEqual([]);
    });

    it.each([
      ['{"reportedAt":1000,"serviceMs":-1}', 'service:atl: serviceMs: Too small: expected number to be >=0'],
      ['{"reportedAt":1000,"serviceMs":"fast"}', 'service:atl: serviceMs: Invalid input: expected number, received string'],
      ['{"reportedAt":1000,"serviceMs":3600001}', 'service:atl: serviceMs: Too big: expected number to be <=3600000'],
      ['{"reportedAt":1000}', 'service:atl: serviceMs: Invalid input: expected number, received undefined'],
      ['{"reportedAt":1000,"serviceMs":5,"p99":9}', 'service:atl: (value): Unrecognized key: "p99"'],
      ['12', 'service:atl: (value): Invalid input: expected object, received number'],
    ])('a bad one (%s) is refused with where and why, and the report kept without it', (raw, reason) => {
      const { reports, rejected } = withService([raw, null]);
      expect(reports.get('atl')).toEqual(atl);
      expect(rejected).toEqual([reason]);
    });

    it('is not written into the report itself, which routers of earlier versions read with a strict schema', () => {
      expect(decodeRecord(heartbeatSchema, JSON.stringify({ ...atl, serviceMs: 5 }))).toEqual({ ok: false, reason: '(value): Unrecognized key: "serviceMs"' });
    });
  });

  it.each([
    [`{"v":1,"kind":"heartbeat","heartbeat":${JSON.stringify(heartbeat('fra', { reportedAt: 5 }))},"serviceMs":120}`, { kind: 'heartbeat', heartbeat: heartbeat('fra', { reportedAt: 5, serviceMs: 120 }) }, []],
    [`{"v":1,"kind":"heartbeat","heartbeat":${JSON.stringify(heartbeat('fra', { reportedAt: 5 }))},"serviceMs":-3}`, { kind: 'heartbeat', heartbeat: heartbeat('fra', { reportedAt: 5 }) }, ['changes: serviceMs: Too small: expected number to be >=0']],
    [`{"v":1,"kind":"heartbeat","heartbeat":${JSON.stringify(heartbeat('fra', { reportedAt: 5 }))},"serviceMs":"120"}`, { kind: 'heartbeat', heartbeat: heartbeat('fra', { reportedAt: 5 }) }, ['changes: serviceMs: Invalid input: expected number, received string']],
    [`{"v":1,"kind":"heartbeat","heartbeat":${JSON.stringify(heartbeat('fra', { reportedAt: 5, source: 'probe' }))},"serviceMs":120}`, { kind: 'heartbeat', heartbeat: heartbeat('fra', { reportedAt: 5, source: 'probe' }) }, []],
  ])("change carrying a report's service time beside its heartbeat %#", (message, change, reasons) => {
    const { decode, rejected } = decoder();
    expect(decode.change(message)).toEqual(change);
    expect(rejected).toEqual(reasons);
  });

  it.each([
    ['{"v":1,"kind":"overrides"}', { kind: 'overrides' }, []],
    ['{"v":1,"kind":"resync"}', { kind: 'resync' }, []],
    [`{"v":1,"kind":"heartbeat","heartbeat":${JSON.stringify(heartbeat('fra', { reportedAt: 5 }))}}`, { kind: 'heartbeat', heartbeat: heartbeat('fra', { reportedAt: 5 }) }, []],
    ['not json', undefined, ['changes: message is not valid JSON']],
    ['{"v":2,"kind":"overrides"}', undefined, ['changes: message schema version 2 is not supported']],
    ['{"kind":"overrides"}', undefined, ['changes: message schema version (none) is not supported']],
    ['{"v":"1","kind":"overrides"}', undefined, ['changes: message schema version "1" is not supported']],
    [`{"v":1,"kind":"${'k'.repeat(100)}"}`, undefined, [`changes: unknown change kind "${'k'.repeat(64)}\u2026"`]],
    ['{"v":1,"kind":{"a":1}}', undefined, ['changes: unknown change kind (an object)']],
    ['{"v":1,"kind":"explode"}', undefined, ['changes: unknown change kind "explode"']],
    [`{"v":1,"kind":"heartbeat","heartbeat":${JSON.stringify(heartbeat('syd'))}}`, undefined, ['changes: unknown region syd']],
  ])('change %s', (message, change, reasons) => {
    const { decode, rejected } = decoder();
    expect(decode.change(message)).toEqual(change);
    expect(rejected).toEqual(reasons);
  });

  // A few KB nested thousands deep: JSON.parse takes it, but JSON.stringify or String on it
  // overflows the stack, thrown inside ioredis's message event in every subscriber at once.
  const DEEP = '['.repeat(20_000) + ']'.repeat(20_000);
  it.each([
    [`{"v":1,"kind":"heartbeat","heartbeat":${DEEP}}`, 'changes: (value): Invalid input: expected object, received array'],
    [`{"v":1,"kind":${DEEP}}`, 'changes: unknown change kind (an array)'],
    [`{"v":${DEEP}}`, 'changes: message schema version (an array) is not supported'],
  ])('refuses a change message nested thousands deep without recursing into it %#', (message, reason) => {
    const { decode, rejected } = decoder();
    expect(decode.change(message)).toBeUndefined();
    expect(rejected).toEqual([reason]);
  });

  it('region hashes refuse unknown regions and bad values', () => {
    const { decode, rejected } = decoder();
    const out = decode.regionHash('overrides', { atl: '{"drained":true,"weight":null}', fra: '{"drained":1}', mars: '{"drained":true,"weight":null}' }, overridesSchema);
    expect(out).toEqual(new Map([['atl', { drained: true, weight: null }]]));
    expect(rejected).toEqual([expect.stringMatching(/^overrides\[fra\]: drained: /), 'overrides[mars]: unknown region mars']);
  });

  it('functions must match their key; one deployed in a region this router does not know is kept', async () => {
    const { decode, rejected } = decoder();
    const record = (org: string, fn: string, regions: string[] | null) => JSON.stringify({ org, fn, regions, tier: 'standard', enabled: true });
    const out = await decode.functions({
      'acme/api': record('acme', 'api', ['fra', 'atl']),
      'acme/web': record('acme', 'other', null),
      'acme/eu': record('acme', 'eu', ['mars']),
      'acme/bad': '{"org":"acme"}',
    });
    expect(out).toEqual(
      new Map([
        [
          'acme',
          new Map([
            ['api', { org: 'acme', fn: 'api', regions: new Set(['atl', 'fra']), tier: 'standard', enabled: true }],
            // Routing ranks configured regions only: served from none of these, so no_healthy_region, not 404.
            ['eu', { org: 'acme', fn: 'eu', regions: new Set(['mars']), tier: 'standard', enabled: true }],
          ]),
        ],
      ]),
    );
    expect(rejected).toEqual(['functions[acme/web]: record is for acme/other', expect.stringMatching(/^functions\[acme\/bad\]: /)]);
  });

  it('lets the event loop turn while it validates a large directory, every DECODE_SLICE entries', async () => {
    const { decode } = decoder();
    const hash: Record<string, string> = {};
    for (let i = 0; i < 4 * DECODE_SLICE; i++) hash[`acme/f${i}`] = JSON.stringify({ org: 'acme', fn: `f${i}`, regions: null, tier: 'standard', enabled: true });
    let turns = 0;
    const count = () => {
      turns++;
      if (turns < 100) setImmediate(count);
    };
    setImmediate(count);
    const out = await decode.functions(hash);
    expect(out.get('acme')?.size).toBe(4 * DECODE_SLICE);
    expect(turns).toBeGreaterThanOrEqual(3); // in one go, none would have run
  });

  it('residency rules are never left out (a rule this router cannot read allows no region); domains and events must be well formed', async () => {
    const { decode, rejected } = decoder();
    // A region this router does not know stays in the rule (routing ranks configured regions only);
    // a rule it cannot read confines the org to no region rather than freeing it to every region.
    expect(await decode.residency({ eu: '["fra"]', moon: '["fra","mars"]', none: '[]', broken: '{not json' })).toEqual(
      new Map([
        ['eu', new Set(['fra'])],
        ['moon', new Set(['fra', 'mars'])],
        ['none', new Set()],
        ['broken', new Set()],
      ]),
    );
    expect(await decode.domains({ 'a.example.com': '{"fn":"api","org":"acme"}', 'b.example.com': '{"fn":"API","org":"acme"}' })).toEqual(
      new Map([['a.example.com', { fn: 'api', org: 'acme' }]]),
    );
    const event = { at: 1, region: null, kind: 'domain', cause: 'added' };
    expect(decode.events([JSON.stringify(event), '{"at":"yesterday"}'])).toEqual([event]);
    expect(rejected).toEqual([
      expect.stringMatching(/^residency\[none\]: .*; the org is served from no region until its rule is written again$/),
      'residency[broken]: not valid JSON; the org is served from no region until its rule is written again',
      expect.stringMatching(/^domains\[b\.example\.com\]: fn: /),
      expect.stringMatching(/^events: /),
    ]);
  });
});
