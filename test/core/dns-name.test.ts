import { describe, expect, it } from 'vitest';
import { isDnsName, underZone } from '../../src/core/dns-name.js';

describe('isDnsName', () => {
  it.each(['example.com', 'a.b.example.co', 'shop.example.xn--p1ai', 'xn--80ak6aa92e.com', `${'a'.repeat(63)}.com`, '1a.example.io'])('takes %s', (name) => {
    expect(isDnsName(name)).toBe(true);
  });

  it.each([
    ['localhost', 'one label'],
    ['Example.com', 'upper case'],
    ['example.com.', 'trailing dot'],
    ['example.c0m', 'a digit in the top-level label'],
    ['example.xn--p1ai-', 'punycode ending in a hyphen'],
    ['-a.example.com', 'a label starting with a hyphen'],
    [`${'a'.repeat(64)}.com`, 'a label over 63'],
    [`${'a.'.repeat(126)}com`, 'over 253 characters'],
    ['a..example.com', 'an empty label'],
    ['ex_ample.com', 'an underscore'],
    ['example.com:443', 'a port'],
  ])('refuses %s (%s)', (name) => {
    expect(isDnsName(name)).toBe(false);
  });
});

describe('underZone', () => {
  it('is true for the zone and any name under it, false elsewhere', () => {
    expect(underZone('echo-demo.telnyxcompute.com', 'telnyxcompute.com')).toBe(true);
    expect(underZone('a.b.telnyxcompute.com', 'telnyxcompute.com')).toBe(true);
    expect(underZone('telnyxcompute.com', 'telnyxcompute.com')).toBe(true);
    expect(underZone('shop.example.com', 'telnyxcompute.com')).toBe(false);
    // A suffix that is not a whole label is not under the zone.
    expect(underZone('eviltelnyxcompute.com', 'telnyxcompute.com')).toBe(false);
    expect(underZone('com', 'telnyxcompute.com')).toBe(false);
  });
});
