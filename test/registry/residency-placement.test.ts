import { describe, expect, it } from 'vitest';
import type { FunctionRecord } from '../../src/core/types.js';
import { describePartlyOutside, describeStranded, importedResidency, partlyOutsideFunctions, regionsOutsideResidency, ResidencyConflict, ResidencyUnsettled, strandedFunctions } from '../../src/registry/residency-placement.js';
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

  it('counts a function deployed in no region as stranded under any rule, and never as partly outside', () => {
    const functions = new Map([fn('nowhere', [])]);
    expect(strandedFunctions(functions, new Set(['fra']))).toEqual([{ fn: 'nowhere', regions: [] }]);
    expect(partlyOutsideFunctions(functions, new Set(['fra']))).toEqual([]);
    expect(describeStranded(strandedFunctions(functions, new Set(['fra'])))).toEqual(['nowhere (deployed in no region)']);
  });
});

describe('partlyOutsideFunctions', () => {
  it('lists, by name, the functions deployed both inside and outside the rule; not those wholly inside, stranded, or deployed everywhere', () => {
    const functions = new Map([fn('web', ['nyc', 'fra']), fn('search', ['nyc']), fn('everywhere', null), fn('inside', ['fra', 'lax']), fn('checkout', ['syd', 'lax', 'atl'])]);
    const partly = partlyOutsideFunctions(functions, new Set(['fra', 'lax']));
    expect(partly).toEqual([
      { fn: 'checkout', regions: ['atl', 'lax', 'syd'], outside: ['atl', 'syd'] },
      { fn: 'web', regions: ['fra', 'nyc'], outside: ['nyc'] },
    ]);
    expect(describePartlyOutside(partly)).toEqual([
      'checkout (deployed in atl, lax, syd) is served from lax only: atl, syd are outside the rule',
      'web (deployed in fra, nyc) is served from fra only: nyc is outside the rule',
    ]);
    expect(partlyOutsideFunctions(functions, null)).toEqual([]);
    expect(partlyOutsideFunctions(undefined, new Set(['fra']))).toEqual([]);
  });
});

describe('ResidencyConflict', () => {
  it('is the catalogue\'s residency_conflict (409, exit 2), naming the regions outside and the allowed ones', () => {
    const described = describeError(new ResidencyConflict('acme', 'api', ['nyc'], ['fra', 'lax']));
    expect(described).toMatchObject({ code: 'residency_conflict', status: 409, exitCode: 2 });
    expect(described.message).toMatch(/^acme\/api: nyc is outside org acme's data residency \(allowed: fra, lax\)/);
  });

  it('says a rule allowing no region (one the registry could not read) allows none, not an empty list', () => {
    const conflict = new ResidencyConflict('acme', 'api', ['nyc'], []);
    expect(conflict.message).toMatch(/^acme\/api: nyc is outside org acme's data residency \(allowed: no region \(its rule could not be read: set it again\)\); /);
  });
});

describe('importedResidency', () => {
  const rules = (entries: Record<string, string[]>) => new Map(Object.entries(entries).map(([org, regions]) => [org, new Set(regions)]));
  const functions = new Map([['acme', new Map([fn('web', ['fra']), fn('api', ['nyc'])])]]);

  it.each<[string, Record<string, string[]>, Record<string, string[]>, ReturnType<typeof importedResidency>]>([
    ['the backup\'s rule holds', { acme: ['fra'] }, { acme: ['fra'] }, { notImported: [], stranded: [{ org: 'acme', allowed: ['fra'], functions: [{ fn: 'api', regions: ['nyc'] }] }], partlyOutside: [] }],
    ['the registry\'s rule holds where the backup has none', {}, { acme: ['nyc'] }, { notImported: [], stranded: [{ org: 'acme', allowed: ['nyc'], functions: [{ fn: 'web', regions: ['fra'] }] }], partlyOutside: [] }],
    [
      'the registry kept a rule other than the backup\'s',
      { acme: ['fra', 'nyc'] },
      { acme: ['syd'] },
      { notImported: [{ org: 'acme', standing: ['syd'], backup: ['fra', 'nyc'] }], stranded: [{ org: 'acme', allowed: ['syd'], functions: [{ fn: 'api', regions: ['nyc'] }, { fn: 'web', regions: ['fra'] }] }], partlyOutside: [] },
    ],
    ['the rule was cleared since', { acme: ['fra'] }, {}, { notImported: [{ org: 'acme', standing: null, backup: ['fra'] }], stranded: [], partlyOutside: [] }],
    ['no rule at all', {}, {}, { notImported: [], stranded: [], partlyOutside: [] }],
  ])('%s', (_case, backupRules, standingRules, expected) => {
    expect(importedResidency({ functions, residency: rules(backupRules) }, { functions, residency: rules(standingRules) })).toEqual(expected);
  });

  it('looks only at the orgs the backup names', () => {
    const after = { functions: new Map([...functions, ['other', new Map([['x', { org: 'other', fn: 'x', regions: new Set(['nyc']), tier: 'standard' as const, enabled: true }]])]]), residency: rules({ other: ['fra'] }) };
    expect(importedResidency({ functions, residency: new Map() }, after)).toEqual({ notImported: [], stranded: [], partlyOutside: [] });
  });

  it('names the functions the standing rule leaves partly outside it (served from the allowed regions only), beside those it strands', () => {
    const mixed = new Map([['acme', new Map([fn('web', ['fra', 'nyc']), fn('api', ['nyc']), fn('inside', ['fra'])])]]);
    expect(importedResidency({ functions: mixed, residency: rules({ acme: ['fra'] }) }, { functions: mixed, residency: rules({ acme: ['fra'] }) })).toEqual({
      notImported: [],
      stranded: [{ org: 'acme', allowed: ['fra'], functions: [{ fn: 'api', regions: ['nyc'] }] }],
      partlyOutside: [{ org: 'acme', allowed: ['fra'], functions: [{ fn: 'web', regions: ['fra', 'nyc'], outside: ['nyc'] }] }],
    });
    // No rule holding: nothing is outside it.
    expect(importedResidency({ functions: mixed, residency: new Map() }, { functions: mixed, residency: new Map() })).toEqual({ notImported: [], stranded: [], partlyOutside: [] });
  });
});

describe('ResidencyUnsettled', () => {
  it('is the catalogue\'s residency_conflict too (409, exit 2): nothing was written', () => {
    const described = describeError(new ResidencyUnsettled('acme', 'api', 5));
    expect(described).toMatchObject({ code: 'residency_conflict', status: 409, exitCode: 2 });
    expect(described.message).toBe("acme/api: org acme's data residency changed during each of 5 attempts to deploy it; nothing written. Try again");
  });
});
