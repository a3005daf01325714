/**
 * A CA that refuses orders for a rate limit (HTTP 429 with Retry-After, RFC 8555 §6.6), as Let's
 * Encrypt does past 300 new orders in 3 hours. pebble has no rate limits, so the CA here is a
 * stub on a loopback port that answers the ACME requests up to the order: directory, nonce,
 * account, and a refused new order. Then two routers' certificate managers on one vault (in memory,
 * and in a real redis-server): one refusal pauses both.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AcmeIssuer, RateLimitedError } from '../../src/acme/acme-issuer.js';
import { CertificateManager, type CertificateEvent } from '../../src/acme/certificate-manager.js';
import { FIRST_RETRY_MS } from '../../src/acme/issuance-plan.js';
import type { CertificateVault } from '../../src/core/certificate-vault.js';
import { MemoryCertificateVault } from '../../src/registry/memory-certificate-vault.js';
import { RedisCertificateVault } from '../../src/registry/redis-certificate-vault.js';
import { TestRedisServer } from '../support/redis-server.js';
import { REDIS_MISSING } from '../support/system-program.js';

const RETRY_AFTER_S = 3_600;

/** Vaults for routers that share one store, and how to close it. */
interface SharedVaults {
  readonly vaults: () => CertificateVault;
  readonly close: () => Promise<void>;
}

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
    const issuer = await AcmeIssuer.open({ directoryUrl: `${base}/directory`, vault: new MemoryCertificateVault() });
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

  describe.each([
    ['in memory', async (): Promise<SharedVaults> => ({ vaults: () => new MemoryCertificateVault(), close: async () => undefined }), false],
    [
      'in a real redis-server',
      async (): Promise<SharedVaults> => {
        const server = await TestRedisServer.start();
        const connections: Redis[] = [];
        const vaults = (): CertificateVault => {
          const cmd = new Redis(server.url);
          connections.push(cmd);
          return new RedisCertificateVault(cmd, 'edge:');
        };
        const close = async (): Promise<void> => {
          connections.forEach((c) => c.disconnect());
          await server.stop();
        };
        return { vaults, close };
      },
      REDIS_MISSING,
    ],
  ] as const)('two routers sharing one vault %s', (_label, openVaults, missing) => {
    it.skipIf(missing)('send the CA one refused order between them, and both order nothing until the pause ends', async () => {
      const { vaults, close } = await openVaults();
      try {
        orders.length = 0;
        // The memory vault is one process's: both routers get the same object there, a vault each in Redis.
        const shared = vaults();
        const routers = await Promise.all(['router-1', 'router-2'].map(async (holder) => {
          const vault = shared instanceof MemoryCertificateVault ? shared : vaults();
          const events: CertificateEvent[] = [];
          const manager = new CertificateManager({
            vault,
            issuer: await AcmeIssuer.open({ directoryUrl: `${base}/directory`, vault }),
            holder,
            wantedNames: () => ['a.example', 'b.example', 'c.example'],
            onCertificates: () => undefined,
            onEvent: (e) => events.push(e),
          });
          return { manager, events };
        }));
        const before = Date.now();
        await routers[0]!.manager.check();
        await routers[1]!.manager.check();
        await routers[0]!.manager.check();
        expect(orders).toHaveLength(1);

        const [refused] = routers[0]!.events;
        expect(refused).toMatchObject({ type: 'rate-limited', failure: { attempts: 0, reason: expect.stringMatching(/too many new orders/) }, pause: { refusals: 1 } });
        // The name waits for the CA's retry time; the fleet until then, 5 minutes at most at the first refusal.
        const failure = (refused as Extract<CertificateEvent, { type: 'rate-limited' }>).failure;
        expect(failure.retryAt).toBeGreaterThanOrEqual(before + RETRY_AFTER_S * 1_000);
        for (const { manager, events } of routers) {
          const paused = manager.status().ordersPaused;
          expect(paused).toMatchObject({ name: failure.name, refusals: 1 });
          expect(Date.parse(paused!.until)).toBeGreaterThan(Date.now() + FIRST_RETRY_MS - 60_000);
          expect(Date.parse(paused!.until)).toBeLessThanOrEqual(Date.now() + FIRST_RETRY_MS);
          expect(manager.status().failures).toEqual([expect.objectContaining({ name: failure.name, attempts: 0 })]);
          expect(events.filter((e) => e.type === 'failed')).toEqual([]);
        }
        await Promise.all(routers.map((r) => r.manager.stop()));
      } finally {
        await close();
      }
    });
  });
});
