import { describe, expect, it } from 'vitest';
import { busiestFunctions } from '../../src/registry/region-view.js';
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
