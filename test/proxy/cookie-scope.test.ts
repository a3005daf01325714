import { describe, expect, it } from 'vitest';
import { confineCookies } from '../../src/proxy/cookie-scope.js';

const HOST = 'api-acme.telnyxcompute.com';
const confined = (...values: string[]) => {
  const fields = values.flatMap((value) => ['set-cookie', value]);
  confineCookies(fields, HOST);
  return fields.filter((_, i) => i % 2 === 1);
};

describe('confineCookies', () => {
  it('takes off a Domain naming the zone or a parent of it, whatever its case, dot or spacing', () => {
    expect(confined('sid=x; Domain=telnyxcompute.com; Path=/; Secure')).toEqual(['sid=x; Path=/; Secure']);
    expect(confined('sid=x;domain=.TelnyxCompute.com')).toEqual(['sid=x']);
    expect(confined('sid=x; Path=/;  DOMAIN = com ; HttpOnly')).toEqual(['sid=x; Path=/; HttpOnly']);
    // With the trailing dot the router's own names may carry (`fn-org.zone.` is served as `fn-org.zone`).
    expect(confined('sid=x; Domain=telnyxcompute.com.', 'b=2; Domain=.TELNYXCOMPUTE.COM.', 'c=3; Domain=com.')).toEqual(['sid=x', 'b=2', 'c=3']);
  });

  it('keeps a Domain naming the host itself, cookies without one, and one naming no suffix of the host (the browser refuses it)', () => {
    expect(confined('sid=x; Domain=api-acme.telnyxcompute.com', 'a=1; Path=/', 'b=2; Domain=other.example')).toEqual([
      'sid=x; Domain=api-acme.telnyxcompute.com',
      'a=1; Path=/',
      'b=2; Domain=other.example',
    ]);
  });

  it('leaves every other field alone, and a value that only mentions domain= outside an attribute', () => {
    const fields = ['content-type', 'text/plain; domain=telnyxcompute.com', 'set-cookie', 'next=/login?domain=telnyxcompute.com; Path=/'];
    confineCookies(fields, HOST);
    expect(fields).toEqual(['content-type', 'text/plain; domain=telnyxcompute.com', 'set-cookie', 'next=/login?domain=telnyxcompute.com; Path=/']);
  });
});
