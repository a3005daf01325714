/**
 * A CA that refuses orders for a rate limit (HTTP 429 with Retry-After, RFC 8555 §6.6), as Let's
 * Encrypt does past 300 new orders in 3 hours. pebble has no rate limits, so the CA here is a
 * stub on a loopback port that answers the ACME requests up to the order: directory, nonce,
 * account, and a refused new order.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AcmeIssuer, RateLimitedError } from '../../src/acme/acme-issuer.js';
import { MemoryCertificateVault } from '../../src/registry/memory-certificate-vault.js';

const RETRY_AFTER_S = 3_600;

describe('AcmeIssuer against a CA that rate-limits orders', () => {
  let ca: Server;
  let base = '';
  const orders: number[] = [];

  beforeAll(async () => {
    ca = createServer((req, res) => {
      req.resume();
      const nonce = { 'replay-nonce': `n${Math.random().toString(36).slice(2)}` };
      const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': status >= 400 ? 'application/problem+json' : 'application/json', ...nonce, ...headers });
        res.end(JSON.stringify(body));
      };
      if (req.url === '/directory') json(200, { newNonce: `${base}/nonce`, newAccount: `${base}/account`, newOrder: `${base}/order` });
      else if (req.url === '/nonce') res.writeHead(204, nonce).end();
      else if (req.url === '/account') json(201, { status: 'valid' }, { location: `${base}/account/1` });
      else if (req.url === '/order') {
        orders.push(Date.now());
        json(429, { type: 'urn:ietf:params:acme:error:rateLimited', detail: 'too many new orders (300) from this account in the last 3h0m0s' }, { 'retry-after': String(RETRY_AFTER_S) });
      } else res.writeHead(404).end();
    });
    ca.listen(0, '127.0.0.1');
    await once(ca, 'listening');
    base = `http://127.0.0.1:${(ca.address() as AddressInfo).port}`;
  });

  afterAll(() => {
    ca?.close();
  });

  it('comes back at once with the CA\'s retry time, rather than sleeping on it inside the order\'s lease (and ordering on after it)', async () => {
    const issuer = new AcmeIssuer({ directoryUrl: `${base}/directory`, vault: new MemoryCertificateVault() });
    const before = Date.now();
    // Left to acme-client, the order waited Retry-After (an hour here) five times over, in the
    // background once the manager had given it up at nine tenths of its lease.
    const outcome = await Promise.race([
      issuer.issue('shop.example.net').then(
        () => 'issued',
        (err: unknown) => err,
      ),
      new Promise((resolve) => setTimeout(() => resolve('still waiting after 5 s'), 5_000).unref()),
    ]);
    expect(outcome).not.toBe('still waiting after 5 s');
    expect(outcome).toBeInstanceOf(RateLimitedError);
    const refused = outcome as RateLimitedError;
    expect(refused.message).toMatch(/too many new orders/);
    expect(refused.retryAt).toBeGreaterThanOrEqual(before + RETRY_AFTER_S * 1_000);
    expect(refused.retryAt).toBeLessThanOrEqual(Date.now() + RETRY_AFTER_S * 1_000);
    expect(orders).toHaveLength(1);
  });
});
