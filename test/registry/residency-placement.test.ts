import { describe, expect, it } from 'vitest';
import type { FunctionRecord } from '../../src/core/types.js';
import { describeStranded, regionsOutsideResidency, ResidencyConflict, strandedFunctions } from '../../src/registry/residency-placement.js';
import { describeError } from '../../src/core/errors.js';

const fn = (name: string, regions: string[] | null): [string, FunctionRecord] => [name, { org: 'acme', fn: name, regions: regions === null ? null : new Set(regions), tier: 'standard', enabled: true }];

describe('regionsOutsideResidency', () => {
  it.each<[string[] | null, string[] | null, string[]]>([
    [['fra', 'nyc'], ['fra'], ['nyc']],
    [['nyc', 'atl'], ['fra'], ['nyc', 'atl']],
    [['fra'], ['fra', 'lax'], []],
    // No rule: anywhere. Deployed everywhere: served from the allowed regions, never none.
    [['nyc'], null, []],
    [null, ['fra'], []],
  ])('%j with residency %j → %j', (deployIn, allowed, outside) => {
    expect(regionsOutsideResidency(deployIn, allowed === null ? null : new Set(allowed))).toEqual(outside);
  });
});

describe('strandedFunctions', () => {
  it('lists, by name, the functions deployed in no allowed region; not those with one allowed region, nor those deployed everywhere', () => {
    const functions = new Map([fn('web', ['fra', 'nyc']), fn('search', ['nyc']), fn('everywhere', null), fn('checkout', ['syd', 'lax'])]);
    const stranded = strandedFunctions(functions, new Set(['fra']));
    expect(stranded).toEqual([
      { fn: 'checkout', regions: ['lax', 'syd'] },
      { fn: 'search', regions: ['nyc'] },
    ]);
    expect(describeStranded(stranded)).toEqual(['checkout (deployed in lax, syd)', 'search (deployed in nyc)']);
    expect(strandedFunctions(functions, null)).toEqual([]);
    expect(strandedFunctions(undefined, new Set(['fra']))).toEqual([]);
  });
});

describe('ResidencyConflict', () => {
  it('is the catalogue\'s residency_conflict (409, exit 2), naming the regions outside and the allowed ones', () => {
    const described = describeError(new ResidencyConflict('acme', 'api', ['nyc'], ['fra', 'lax']));
    expect(described).toMatchObject({ code: 'residency_conflict', status: 409, exitCode: 2 });
    expect(described.message).toMatch(/^acme\/api: nyc is outside org acme's data residency \(allowed: fra, lax\)/);
  });
});
