import { describe, expect, it } from 'vitest';
import type { FunctionRef } from '../../src/core/types.js';
import { createHostMemo } from '../../src/routing/host-memo.js';
import { resolveHost } from '../../src/routing/hostname.js';

const ZONE = 'telnyxcompute.com';
const NONE: ReadonlyMap<string, FunctionRef> = new Map();

describe('createHostMemo', () => {
  it.each([
    'echo-demo.telnyxcompute.com',
    'MY-Function-ABC123.TelnyxCompute.COM:8443',
    'echo-demo.telnyxcompute.com.',
    'api.example.com',
    'shop.example.net',
    '',
    '127.0.0.1',
    '[::1]:8443',
    'echo-demo.example.com',
    'a.b-c.telnyxcompute.com',
    'echo_demo.telnyxcompute.com',
    'echo-demo.telnyxcompute.com:99999',
  ])('resolves %j as resolveHost does, the first time and the second', (host) => {
    const operator = new Map([['api.example.com', { fn: 'api', org: 'ops' }]]);
    const registry = new Map([['shop.example.net', { fn: 'shop', org: 'acme' }]]);
    const memo = createHostMemo(ZONE, operator);
    const direct = resolveHost(host, ZONE, { get: (h) => operator.get(h) ?? registry.get(h) });
    expect(memo.resolve(host, registry)).toEqual(direct);
    expect(memo.resolve(host, registry)).toEqual(direct);
  });

  it('answers a host it resolved before with the same object, and keeps no failure', () => {
    const memo = createHostMemo(ZONE, NONE);
    const first = memo.resolve('echo-demo.telnyxcompute.com', NONE);
    expect(memo.resolve('echo-demo.telnyxcompute.com', NONE)).toBe(first);
    expect(memo.size).toBe(1);
    for (let i = 0; i < 20; i++) expect(memo.resolve(`scanner-${i}.example.org`, NONE).ok).toBe(false);
    expect(memo.size).toBe(1);
  });

  it('forgets what it knew when the registry’s custom domains change, both ways', () => {
    const memo = createHostMemo(ZONE, NONE);
    const withShop = new Map([['shop.example.net', { fn: 'shop', org: 'acme' }]]);
    expect(memo.resolve('shop.example.net', withShop)).toMatchObject({ ok: true, fn: 'shop', org: 'acme', customDomain: true });
    // Removed from the directory: the remembered mapping must not outlive it.
    expect(memo.resolve('shop.example.net', new Map())).toMatchObject({ ok: false, code: 'host_outside_zone' });
    // A zone name that becomes a custom domain now resolves to the domain's function.
    const zoneHost = 'echo-demo.telnyxcompute.com';
    expect(memo.resolve(zoneHost, NONE)).toMatchObject({ fn: 'echo', org: 'demo', customDomain: false });
    const remapped = new Map([[zoneHost, { fn: 'other', org: 'acme' }]]);
    expect(memo.resolve(zoneHost, remapped)).toMatchObject({ fn: 'other', org: 'acme', customDomain: true });
  });

  it('lets the operator’s domains win over the registry’s', () => {
    const memo = createHostMemo(ZONE, new Map([['api.example.com', { fn: 'api', org: 'ops' }]]));
    expect(memo.resolve('api.example.com', new Map([['api.example.com', { fn: 'x', org: 'y' }]]))).toMatchObject({ fn: 'api', org: 'ops' });
  });

  it('stays within its bound under endless distinct names, and still resolves each correctly', () => {
    const memo = createHostMemo(ZONE, NONE, 3);
    for (let i = 0; i < 50; i++) {
      expect(memo.resolve(`fn${i}-org${i}.telnyxcompute.com`, NONE)).toMatchObject({ ok: true, fn: `fn${i}`, org: `org${i}` });
      expect(memo.size).toBeLessThanOrEqual(3);
    }
    expect(memo.size).toBeGreaterThan(0);
  });
});
