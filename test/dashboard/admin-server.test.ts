/**
 * The admin API over real sockets (the node adapter edge-router.ts serves it with): what only a
 * TCP connection shows, such as a client that stops reading its live stream.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { connect, type Socket } from 'node:net';
import type { Server } from 'node:http';
import { createAdaptorServer } from '@hono/node-server';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { createAdminApi, type AdminApiOptions } from '../../src/dashboard/admin-api.js';
import { AdminTokens } from '../../src/dashboard/admin-auth.js';
import { MemoryRegistry } from '../../src/registry/memory-registry.js';
import { staticSnapshot } from '../../src/registry/static-snapshot.js';
import { createRouteDecider } from '../../src/routing/route-decider.js';
import { REGIONS } from '../support/regions.js';

const TOKEN = 'admin-server-test-token-0123456789';

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** The admin API on 127.0.0.1:0; every snapshot read is a new version, so the stream writes every tick. */
async function serve(overrides: Partial<AdminApiOptions> = {}): Promise<{ port: number; server: Server }> {
  // Long region names make each `regions` message about 1 MB, so a reader that stops fills the socket buffers in a moment.
  const regions = REGIONS.map((r) => ({ ...r, name: `${r.name} ${'x'.repeat(200_000)}` }));
  const base = staticSnapshot(regions);
  let version = 0;
  const app = createAdminApi({
    tokens: new AdminTokens(TOKEN),
    publicReads: false,
    regions,
    snapshot: () => ({ ...base, version: ++version }),
    watcherStatus: () => ({ stale: false, staleForMs: 0, contactAt: Date.now(), version, lastFullSyncAt: Date.now(), generation: null, dataLostAt: null, heldCopyAt: null, unreadableParts: [] }),
    registry: new MemoryRegistry(),
    decider: createRouteDecider({
      regions,
      zone: 'telnyxcompute.com',
      locator: { locate: (ip) => ({ ip, country: null, city: null, lat: null, lon: null, source: 'no-database' }) },
      countryRegions: new Map(),
      defaultRegion: 'nyc',
      customDomains: new Map(),
      unknownFunctions: 'forward',
    }),
    router: { metrics: async () => '', regionStats: async () => new Map(), settle: async () => true },
    ready: () => true,
    streamTickMs: 20,
    ...overrides,
  });
  const server = createAdaptorServer({ fetch: app.fetch }) as Server;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanup.push(() => {
    server.closeAllConnections();
    server.close();
  });
  return { port: (server.address() as AddressInfo).port, server };
}

/** Opens the live stream on a raw connection and never reads from it. */
async function openStreamAndStopReading(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  cleanup.push(() => socket.destroy());
  await once(socket, 'connect');
  socket.pause();
  socket.write(`GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`);
  return socket;
}

async function streamStatus(port: number): Promise<number> {
  const res = await request(`http://127.0.0.1:${port}/api/stream`, { headers: { authorization: `Bearer ${TOKEN}` }, headersTimeout: 5_000 });
  // Only the status matters: close the stream at once (undici reports that as an abort, which we expect).
  res.body.on('error', () => undefined).destroy();
  return res.statusCode;
}

/** Sends `head` on a raw connection and resolves with the first bytes of the answer, or 'no answer' after `timeoutMs`. */
async function firstAnswer(port: number, head: string, timeoutMs: number): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  cleanup.push(() => socket.destroy());
  await once(socket, 'connect');
  socket.write(head);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('no answer'), timeoutMs);
    socket.once('data', (chunk: Buffer) => {
      clearTimeout(timer);
      resolve(chunk.toString('latin1'));
    });
  });
}

describe('admin API over a real socket', () => {
  it('refuses an oversized write body with 413, without reading it all first', async () => {
    const { port } = await serve();
    // A megabyte of JSON, chunked (no length up front): read up to the limit, then refused.
    const json = `{"regions":[${'"nyc",'.repeat(174_762)}"nyc"]}`;
    const chunked = await firstAnswer(
      port,
      `PUT /api/functions/acme/checkout HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${json.length.toString(16)}\r\n${json}\r\n0\r\n\r\n`,
      3_000,
    );
    expect(chunked).toMatch(/^HTTP\/1\.1 413 /);
    expect(chunked).toContain('"code":"payload_too_large"');
    // A gigabyte announced in Content-Length is refused before any of it is sent.
    const announced = await firstAnswer(
      port,
      `PUT /api/regions/atl/weight HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n{"weight":`,
      3_000,
    );
    expect(announced).toMatch(/^HTTP\/1\.1 413 /);
    // Without the token it is still a 401, whatever the size.
    expect(await firstAnswer(port, `PUT /api/regions/atl/weight HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: 1073741824\r\n\r\n`, 3_000)).toMatch(/^HTTP\/1\.1 401 /);
    // An ordinary body is still read.
    const weight = await request(`http://127.0.0.1:${port}/api/regions/atl/weight`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{"weight":3}' });
    expect(weight.statusCode).toBe(200);
    await weight.body.dump();
  });

  it('caps the live streams one client address holds, so one client cannot take every place', async () => {
    const { port } = await serve({ maxStreams: 8, maxStreamsPerClient: 2 });
    const held: Socket[] = [];
    for (let i = 0; i < 2; i++) held.push(await openStreamAndStopReading(port));
    await expect.poll(() => streamStatus(port), { timeout: 5_000, interval: 50 }).toBe(429);
    // Another address (127.0.0.2 is loopback too on Linux) still gets in.
    const other = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' });
    cleanup.push(() => other.destroy());
    await once(other, 'connect');
    other.write(`GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`);
    const [head] = (await once(other, 'data')) as [Buffer];
    expect(head.toString('latin1')).toMatch(/^HTTP\/1\.1 200 /);
    other.destroy();
    // A client that leaves gives its places back.
    for (const socket of held) socket.destroy();
    await expect.poll(() => streamStatus(port), { timeout: 5_000, interval: 50 }).toBe(200);
  }, 30_000);

  it('drops a live-stream client that stops reading, so it cannot hold a stream place for ever', async () => {
    const { port, server } = await serve({ maxStreams: 1, streamWriteTimeoutMs: 300 });
    await openStreamAndStopReading(port);
    // It holds the one place while the buffers between us take its messages...
    await expect.poll(() => streamStatus(port), { timeout: 5_000, interval: 50 }).toBe(429);
    // ...and gives it back once a write has waited longer than the deadline.
    await expect.poll(() => streamStatus(port), { timeout: 10_000, interval: 100 }).toBe(200);
    // The stalled connection itself is closed, not left holding its buffered messages.
    await expect.poll(() => new Promise<number>((resolve) => server.getConnections((_err, n) => resolve(n))), { timeout: 5_000, interval: 100 }).toBe(0);
  }, 30_000);
});
