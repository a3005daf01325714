import { describe, expect, it } from 'vitest';
import { applyStrictTransport, routerAnswerHeaders, routerAnswerHeadersFor, strictTransportFor, strictTransportPolicies } from '../../src/proxy/strict-transport.js';

const ZONE = 'telnyxcompute.com';
const ROUTER = 'max-age=31536000';
const policies = strictTransportPolicies(ROUTER)!;

describe('strictTransportPolicies', () => {
  it('is null without a router policy, and gives the same two objects every time otherwise', () => {
    expect(strictTransportPolicies(null)).toBeNull();
    expect(policies.platform).toMatchObject({ value: ROUTER, functionDecides: false });
    expect(policies.customer).toMatchObject({ value: ROUTER, functionDecides: true });
  });
});

describe('strictTransportFor', () => {
  it("picks the platform's policy under the zone, the customer's elsewhere, and none without a router policy", () => {
    expect(strictTransportFor(policies, 'echo-demo.telnyxcompute.com', ZONE)).toBe(policies.platform);
    expect(strictTransportFor(policies, 'shop.telnyxcompute.com', ZONE)).toBe(policies.platform);
    expect(strictTransportFor(policies, 'shop.example.com', ZONE)).toBe(policies.customer);
    expect(strictTransportFor(null, 'echo-demo.telnyxcompute.com', ZONE)).toBeNull();
  });
});

describe('routerAnswerHeaders', () => {
  it("carries the router's policy on its own answers under the zone, none on a custom domain, and none without a policy", () => {
    expect(routerAnswerHeaders(policies.platform)).toEqual({ 'strict-transport-security': ROUTER });
    expect(routerAnswerHeaders(policies.customer)).toEqual({});
    expect(routerAnswerHeaders(null)).toEqual({});
  });

  it('hands out the same frozen objects every time: a request allocates nothing to pick one', () => {
    expect(routerAnswerHeaders(policies.platform)).toBe(routerAnswerHeaders(strictTransportFor(policies, 'echo-demo.telnyxcompute.com', ZONE)));
    expect(routerAnswerHeaders(policies.customer)).toBe(routerAnswerHeaders(strictTransportFor(policies, 'shop.example.com', ZONE)));
    expect(Object.isFrozen(routerAnswerHeaders(policies.platform))).toBe(true);
    expect(Object.isFrozen(routerAnswerHeaders(policies.customer))).toBe(true);
  });
});

describe('routerAnswerHeadersFor', () => {
  it("carries none on a name that resolved to a custom domain, the router's under the zone and on a host that named no function", () => {
    expect(routerAnswerHeadersFor(policies, 'shop.example.com', ZONE)).toEqual({});
    expect(routerAnswerHeadersFor(policies, 'echo-demo.telnyxcompute.com', ZONE)).toEqual({ 'strict-transport-security': ROUTER });
    expect(routerAnswerHeadersFor(policies, 'shop.telnyxcompute.com', ZONE)).toEqual({ 'strict-transport-security': ROUTER });
    expect(routerAnswerHeadersFor(policies, undefined, ZONE)).toEqual({ 'strict-transport-security': ROUTER });
    expect(routerAnswerHeadersFor(null, undefined, ZONE)).toEqual({});
    expect(routerAnswerHeadersFor(null, 'shop.example.com', ZONE)).toEqual({});
  });
});

describe('applyStrictTransport', () => {
  it("adds the router's after the function's fields when the function sends none", () => {
    for (const policy of [policies.platform, policies.customer]) {
      const out = ['content-type', 'text/plain'];
      applyStrictTransport(out, policy);
      expect(out).toEqual(['content-type', 'text/plain', 'strict-transport-security', ROUTER]);
    }
  });

  it("on the platform's names drops every field the function sent and sends the router's alone", () => {
    const out = ['strict-transport-security', 'max-age=0', 'content-type', 'text/plain', 'strict-transport-security', 'max-age=1; preload', 'x-a', '1'];
    applyStrictTransport(out, policies.platform);
    expect(out).toEqual(['content-type', 'text/plain', 'x-a', '1', 'strict-transport-security', ROUTER]);
  });

  it("on a custom domain leaves the function's as they are and adds none", () => {
    const out = ['content-type', 'text/plain', 'strict-transport-security', 'max-age=0'];
    applyStrictTransport(out, policies.customer);
    expect(out).toEqual(['content-type', 'text/plain', 'strict-transport-security', 'max-age=0']);
  });

  it('without a router policy changes nothing', () => {
    const out = ['strict-transport-security', 'max-age=0'];
    applyStrictTransport(out, null);
    expect(out).toEqual(['strict-transport-security', 'max-age=0']);
    const none: string[] = [];
    applyStrictTransport(none, null);
    expect(none).toEqual([]);
  });
});
