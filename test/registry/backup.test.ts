import { describe, expect, it } from 'vitest';
import type { FunctionRecord, RegionId } from '../../src/core/types.js';
import type { DurableState } from '../../src/registry/health-registry.js';
import { parseBackup, toBackup } from '../../src/registry/backup.js';

const record = (org: string, fn: string, regions: string[] | null): FunctionRecord => ({ org, fn, regions: regions === null ? null : new Set(regions), tier: 'standard', enabled: true });

describe('registry backups', () => {
  it('take back what the registry keeps of regions this regions file lacks: a function deployed there, a rule naming one, a rule allowing none', () => {
    // What a router whose regions file has not caught up with `mars` reads and exports (RecordDecoder keeps these).
    const state: DurableState = {
      functions: new Map([['acme', new Map([['eu', record('acme', 'eu', ['fra', 'mars'])], ['moon', record('acme', 'moon', ['mars'])]])]]),
      residency: new Map<string, ReadonlySet<RegionId>>([
        ['acme', new Set(['fra', 'mars'])],
        ['lockedco', new Set()],
      ]),
      domains: new Map(),
      overrides: new Map(),
    };
    const text = JSON.stringify(toBackup(state, 'import:x', 0));
    // Refused, the router could not restore its own export.
    const parsed = parseBackup(text, 'backup.json', ['atl', 'fra', 'nyc']);
    expect(parsed.state).toEqual(state);
    expect(parsed.unknownRegions).toEqual(['mars']);
    expect(parseBackup(text, 'backup.json', ['atl', 'fra', 'mars']).unknownRegions).toEqual([]);
  });

  it("takes back a rule the registry keeps under a name that is no org id (stored before 'residency set' checked it)", () => {
    // RecordDecoder keeps every stored rule, so export writes this one; import refused the whole file
    // for it ("residency.Acme: Invalid key in record"), and a registry holding one had no usable backup.
    // Routing never looks it up; `residency clear --org Acme` still removes it after the restore.
    const state: DurableState = {
      functions: new Map([['acme', new Map([['api', record('acme', 'api', ['fra'])]])]]),
      residency: new Map<string, ReadonlySet<RegionId>>([
        ['Acme', new Set(['fra'])],
        ['acme', new Set(['fra'])],
      ]),
      domains: new Map(),
      overrides: new Map(),
    };
    const parsed = parseBackup(JSON.stringify(toBackup(state, null, 0)), 'backup.json', ['fra', 'nyc']);
    expect(parsed.state).toEqual(state);
  });

  it('still refuses a residency entry with no org name, naming the field', () => {
    const backup = { format: 'edge-router-registry-backup', version: 1, exportedAt: 'x', generation: null, functions: [], residency: { '': ['fra'] }, domains: {}, overrides: {} };
    expect(() => parseBackup(JSON.stringify(backup), 'backup.json', ['fra'])).toThrow(/^backup\.json: residency\./);
  });

  it('refuses an override of a region this regions file lacks, naming the file and the field', () => {
    const backup = { format: 'edge-router-registry-backup', version: 1, exportedAt: 'x', generation: null, functions: [], residency: {}, domains: {}, overrides: { mars: { drained: true, weight: null } } };
    expect(() => parseBackup(JSON.stringify(backup), 'backup.json', ['atl', 'fra'])).toThrow('backup.json: overrides.mars: unknown region "mars"; this regions file has atl, fra');
  });

  it('keys a domain as routing and `domain remove` do, and refuses one that is no DNS name or that names another key again', () => {
    const backupWith = (domains: Record<string, { fn: string; org: string }>) =>
      JSON.stringify({ format: 'edge-router-registry-backup', version: 1, exportedAt: 'x', generation: null, functions: [], residency: {}, domains, overrides: {} });
    const ref = { fn: 'shop', org: 'acme' };
    // Imported as written, `Shop.Example.com.` matched no request's host and no `domain remove` took it out again.
    expect([...parseBackup(backupWith({ 'Shop.Example.com.': ref }), 'backup.json', ['fra']).state.domains.keys()]).toEqual(['shop.example.com']);
    expect(() => parseBackup(backupWith({ 'a b': ref }), 'backup.json', ['fra'])).toThrow('backup.json: domains.a b: expected a DNS name, e.g. api.example.com');
    expect(() => parseBackup(backupWith({ 'shop.example.com': ref, 'SHOP.example.com': ref }), 'backup.json', ['fra'])).toThrow('backup.json: domains.SHOP.example.com: the same name as another key, shop.example.com');
  });

  it('takes back a rule the registry keeps under "__proto__" (zod\'s records skip that key) and refuses one anywhere else, naming the field', () => {
    // The registry's hashes have no prototype, so such a rule is kept and exported; the import
    // dropped it without a word.
    const state: DurableState = {
      functions: new Map(),
      residency: new Map<string, ReadonlySet<RegionId>>([['__proto__', new Set(['fra'])], ['acme', new Set(['nyc'])]]),
      domains: new Map(),
      overrides: new Map(),
    };
    const text = JSON.stringify(toBackup(state, null, 0));
    expect(text).toContain('"__proto__":["fra"]');
    expect(parseBackup(text, 'backup.json', ['fra', 'nyc']).state.residency).toEqual(state.residency);
    const backupWith = (part: string, value: string) =>
      `{"format":"edge-router-registry-backup","version":1,"exportedAt":"x","generation":null,"functions":[],"residency":{},"domains":{},"overrides":{},"${part}x":0}`.replace(`"${part}":{}`, `"${part}":{"__proto__":${value}}`).replace(`,"${part}x":0`, '');
    expect(() => parseBackup(backupWith('residency', '["fra", 7]'), 'backup.json', ['fra'])).toThrow(/^backup\.json: residency\.__proto__: /);
    expect(() => parseBackup(backupWith('overrides', '{"drained":true,"weight":null}'), 'backup.json', ['fra'])).toThrow('backup.json: overrides.__proto__: unknown region "__proto__"; this regions file has fra');
    expect(() => parseBackup(backupWith('domains', '{"fn":"shop","org":"acme"}'), 'backup.json', ['fra'])).toThrow('backup.json: domains.__proto__: expected a DNS name, e.g. api.example.com');
  });

  it('refuses a function listed twice, naming both entries: the last one silently won', () => {
    const entry = (regions: string[]) => ({ org: 'acme', fn: 'api', regions, tier: 'standard', enabled: true });
    const backup = { format: 'edge-router-registry-backup', version: 1, exportedAt: 'x', generation: null, functions: [entry(['fra']), entry(['nyc'])], residency: {}, domains: {}, overrides: {} };
    expect(() => parseBackup(JSON.stringify(backup), 'backup.json', ['fra', 'nyc'])).toThrow('backup.json: functions[1]: acme/api is listed twice (also functions[0])');
  });
});
