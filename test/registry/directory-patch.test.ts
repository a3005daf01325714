import { describe, expect, it } from 'vitest';
import { REVISION_PATTERN, applyPatch, chainVerdict, nextRevision, type Directory } from '../../src/registry/directory-patch.js';
import type { FunctionRecord } from '../../src/core/types.js';

const record = (org: string, fn: string): FunctionRecord => ({ org, fn, regions: null, tier: 'standard', enabled: true });

describe('directory revisions', () => {
  it('counts each write on from the one before, with the writer\'s nonce, in the form messages are trusted in', () => {
    expect(nextRevision(null, 'abc')).toBe('1.abc');
    expect(nextRevision('41.xyz', 'abc')).toBe('42.abc');
    expect(nextRevision('garbage', 'abc')).toBe('1.abc');
    expect(REVISION_PATTERN.test(nextRevision('41.xyz', 'a-b_c'))).toBe(true);
    expect(REVISION_PATTERN.test('1')).toBe(false);
    expect(REVISION_PATTERN.test('1.a b')).toBe(false);
  });

  it('applies a message that follows what is held, skips one a read included, and calls anything else a gap', () => {
    expect(chainVerdict(null, null, '1.a')).toBe('apply');
    expect(chainVerdict('4.a', '4.a', '5.b')).toBe('apply');
    expect(chainVerdict('5.b', '4.a', '5.b')).toBe('included');
    expect(chainVerdict('7.c', '4.a', '5.b')).toBe('included');
    expect(chainVerdict('4.a', '5.b', '6.c')).toBe('gap'); // 5.b never seen
    expect(chainVerdict('4.a', '4.a', '4.b')).toBe('gap'); // not one on from its prev: no writer's message
    expect(chainVerdict('4.a', '4.a', '9.b')).toBe('gap');
    expect(chainVerdict(null, null, '2.b')).toBe('gap');
    expect(chainVerdict(null, '4.a', '5.b')).toBe('gap'); // nothing held to follow
    // Counted again from none (a Redis restarted empty, or from an older snapshot): taken for included;
    // the next read, whose revision differs from the one held, mends it (registry-watcher.ts).
    expect(chainVerdict('4.a', null, '1.z')).toBe('included');
  });
});

describe('applyPatch', () => {
  const directory: Directory = {
    functions: new Map([['acme', new Map([['a', record('acme', 'a')]])], ['other', new Map([['x', record('other', 'x')]])]]),
    residency: new Map([['acme', new Set(['fra'])]]),
    domains: new Map([['shop.example.com', { fn: 'a', org: 'acme' }]]),
  };

  it('writes and deletes one entry in new maps, leaving the maps it was given and the other parts as they were', () => {
    const added = applyPatch(directory, { part: 'functions', org: 'acme', fn: 'b', record: record('acme', 'b') });
    expect([...added.functions.get('acme')!.keys()]).toEqual(['a', 'b']);
    expect([...directory.functions.get('acme')!.keys()]).toEqual(['a']);
    expect(added.functions.get('other')).toBe(directory.functions.get('other'));
    expect(added.residency).toBe(directory.residency);
    expect(added.domains).toBe(directory.domains);

    const emptied = applyPatch(directory, { part: 'functions', org: 'acme', fn: 'a', record: null });
    expect(emptied.functions.has('acme')).toBe(false); // no empty organisation left behind
    expect(applyPatch(directory, { part: 'functions', org: 'nobody', fn: 'z', record: null }).functions.has('nobody')).toBe(false);

    expect(applyPatch(directory, { part: 'residency', org: 'acme', regions: null }).residency.has('acme')).toBe(false);
    expect(applyPatch(directory, { part: 'residency', org: 'new', regions: new Set(['atl']) }).residency.get('new')).toEqual(new Set(['atl']));
    expect(applyPatch(directory, { part: 'domains', host: 'shop.example.com', ref: null }).domains.size).toBe(0);
    expect(directory.domains.size).toBe(1);
  });
});
