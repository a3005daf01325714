import { describe, expect, it } from 'vitest';
import { isDnsName } from '../../src/core/dns-name.js';

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
