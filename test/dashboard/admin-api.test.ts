import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createAdminApi, type AdminRequestFacts } from '../../src/dashboard/admin-api.js';
import { AdminTokens } from '../../src/dashboard/admin-auth.js';
import { MemoryRegistry } from '../../src/registry/memory-registry.js';
import { RegistryWatcher, type WatcherStatus } from '../../src/registry/registry-watcher.js';
import { RouterMetrics } from '../../src/observability/metrics.js';
import { EdgeError } from '../../src/core/errors.js';
import type { CertificateStatus, ListingPage } from '../../src/core/certificate-vault.js';
import { singleProcessRouter, type WholeRouter } from '../../src/cluster/whole-router.js';
import { createRouteDecider } from '../../src/routing/route-decider.js';
import { resolveHost } from '../../src/routing/hostname.js';
import { REGIONS } from '../support/regions.js';
import { STATUS_FUNCTION_LIMIT } from '../../src/registry/region-view.js';
import { MAX_PATCH_FIELD_LENGTH } from '../../src/registry/records.js';
import { DEPLOY_ATTEMPTS } from '../../src/registry/operator-actions.js';
import { timeUnstalled } from '../support/time-unstalled.js';
import { until } from '../support/until.js';
import { heartbeat } from '../registry/registry-contract.js';

const TOKEN = 'a-very-secret-admin-token';
const auth = { authorization: `Bearer ${TOKEN}` };

describe('admin API', () => {
  let registry: MemoryRegistry;
  let watcher: RegistryWatcher;
  let app: ReturnType<typeof createAdminApi>;
  const actions: string[] = [];
  const actionFields: Array<Record<string, unknown>> = [];
  const errorsLogged: AdminRequestFacts[] = [];
  const refusals: Array<AdminRequestFacts & { reason: string }> = [];

  const make = (options: { token?: string | null; tokens?: AdminTokens; publicReads?: boolean; allowedHosts?: string[]; maxStreams?: number; router?: (local: WholeRouter) => WholeRouter; status?: Partial<WatcherStatus>; certificates?: (page: ListingPage) => CertificateStatus } = {}) => {
    const metrics = new RouterMetrics({
      regions: REGIONS,
      snapshot: () => watcher.snapshot,
      registryStatus: () => watcher.status(),
      geo: () => ({ lookups: 10, cacheHits: 7 }),
      retryBudgetExhausted: () => 2,
      openConnections: () => 3,
      openTunnels: () => ({ http1: 0, http2: 0 }),
      refusedConnections: () => ({ perAddress: 0, rate: 0, resetFlood: 0, frameFlood: 0, penalty: 0, sendStalled: 0, atCapacity: 0, heavyNearCapacity: 0, idleReclaimed: 0 }),
      outstanding: (region) => (region === 'fra' ? { active: 4, queued: 1 } : { active: 0, queued: 0 }),
    });
    metrics.observe(
      { requestId: 'r', traceId: null, method: 'GET', host: 'h', path: '/', protocol: 'HTTP/1.1', fn: 'echo', org: 'demo', clientIp: '1.2.3.4', country: null, reason: 'failover:fra-down', routeMs: 0.01 },
      { region: 'nyc', tried: ['fra', 'nyc'], status: 200, error: null, bytesIn: 0, bytesOut: 10, upstreamMs: 5, totalMs: 6 },
    );
    return createAdminApi({
      tokens: options.tokens ?? new AdminTokens(options.token === undefined ? TOKEN : options.token),
      publicReads: options.publicReads ?? false,
      regions: REGIONS,
      snapshot: () => watcher.snapshot,
      watcherStatus: () => ({ ...watcher.status(), ...options.status }),
      registry,
      decider: createRouteDecider({
        regions: REGIONS,
        zone: 'telnyxcompute.com',
        locator: { locate: (ip) => ({ ip, country: 'GB', city: 'London', lat: 51.5, lon: -0.12, source: 'geoip' }) },
        countryRegions: new Map(),
        defaultRegion: 'nyc',
        customDomains: new Map(),
        unknownFunctions: 'forward',
      }),
      router: (options.router ?? ((local) => local))(singleProcessRouter({ metrics, watcher })),
      ready: () => true,
      streamTickMs: 20,
      ...(options.maxStreams === undefined ? {} : { maxStreams: options.maxStreams }),
      ...(options.allowedHosts === undefined ? {} : { allowedHosts: options.allowedHosts }),
      ...(options.certificates === undefined ? {} : { certificates: options.certificates }),
      onAction: (a, fields) => {
        actions.push(a);
        actionFields.push(fields);
      },
      onError: (_err, request) => errorsLogged.push(request),
      onUnauthorized: (request) => refusals.push(request),
    });
  };

  beforeEach(async () => {
    actions.length = 0;
    actionFields.length = 0;
    errorsLogged.length = 0;
    refusals.length = 0;
    registry = new MemoryRegistry();
    for (const r of REGIONS) await registry.writeHeartbeat(heartbeat(r.id), 60_000);
    watcher = new RegistryWatcher({ registry, regions: REGIONS, heartbeatTtlMs: 60_000, pollMs: 20 });
    await watcher.start();
    app = make();
  });
  afterEach(async () => {
    await watcher.stop();
  });

  it.each([
    ['GET', '/api/regions'],
    ['GET', '/api/events'],
    ['GET', '/api/certificates'],
    ['GET', '/metrics'],
    ['POST', '/api/regions/atl/drain'],
    ['PUT', '/api/regions/atl/weight'],
    ['DELETE', '/api/domains/x.example.com'],
    ['GET', '/api/residency/acme'],
    ['PUT', '/api/residency/acme'],
    ['DELETE', '/api/residency/acme'],
  ])('%s %s without a token → 401 JSON', async (method, path) => {
    const res = await app.request(path, { method });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: { code: 'unauthorized', message: expect.stringContaining('token'), requestId: expect.any(String) } });
  });

  it('names the Bearer scheme on every 401 (RFC 6750 §3)', async () => {
    expect((await app.request('/api/regions')).headers.get('www-authenticate')).toBe('Bearer');
    expect((await app.request('/api/regions/atl/drain', { method: 'POST', headers: { authorization: 'Bearer wrong-token-wrong-token' } })).headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
  });

  it('refuses a wrong token, and everything when none is configured', async () => {
    const refused = await app.request('/api/regions', { headers: { authorization: 'Bearer wrong-token-wrong-token' } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('x-content-type-options')).toBe('nosniff');
    const disabled = make({ token: null });
    const res = await disabled.request('/api/regions', { headers: auth });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain('no admin token is configured');
  });

  it('tells the log what it refused, what failed (under the request id the client got) and every write', async () => {
    // Seen in review: the id in an error body was made afresh and logged nowhere, refused tokens
    // left no trace, and function and domain writes reached only the registry's event list.
    await app.request('/api/regions', { headers: { authorization: 'Bearer wrong-token-wrong-token' } });
    expect(refusals).toEqual([{ requestId: expect.any(String), method: 'GET', path: '/api/regions', client: null, reason: 'invalid' }]);
    // The path as sent, and cut: decoded, 5,400 `%01` made a 32 KB line (each byte written \u0001).
    await app.request(`/${'%01'.repeat(5_400)}`);
    const logged = refusals.at(-1)!.path;
    expect(logged.startsWith('/%01%01')).toBe(true);
    expect(logged.length).toBeLessThanOrEqual(1_024);
    expect(JSON.stringify(logged).length).toBeLessThan(1_100);
    registry.readEvents = () => Promise.reject(new EdgeError('registry_unreachable', 'cannot reach the registry: connection refused'));
    const down = await app.request('/api/events', { headers: auth });
    const { error } = (await down.json()) as { error: { requestId: string } };
    expect(errorsLogged).toEqual([{ requestId: error.requestId, method: 'GET', path: '/api/events', client: null }]);
    const put = await app.request('/api/functions/acme/api', { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ regions: null, tier: 'standard', enabled: true, hedge: false }) });
    expect(put.status).toBe(200);
    await app.request('/api/domains/api.example.com', { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ org: 'acme', fn: 'api' }) });
    await app.request('/api/domains/api.example.com', { method: 'DELETE', headers: auth });
    await app.request('/api/functions/acme/api', { method: 'DELETE', headers: auth });
    expect(actions).toEqual(['deploy', 'domain', 'domain_removed', 'undeploy']);
    expect(actionFields[0]).toMatchObject({ org: 'acme', fn: 'api', tier: 'standard', method: 'PUT', path: '/api/functions/acme/api', requestId: expect.any(String) });
    expect(JSON.stringify(actionFields)).not.toContain(TOKEN);
  });

  it('serves health, readiness and the dashboard page without a token', async () => {
    expect((await app.request('/healthz')).status).toBe(200);
    expect((await app.request('/readyz')).status).toBe(200);
    const page = await app.request('/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(await page.text()).toContain('<svg');
  });

  it('answers a handler failure from the error catalogue, and never shows a fault\'s details', async () => {
    registry.readEvents = () => Promise.reject(new EdgeError('registry_unreachable', 'cannot reach the registry: connection refused'));
    const down = await app.request('/api/events', { headers: auth });
    expect(down.status).toBe(503);
    expect(((await down.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'registry_unreachable', message: 'cannot reach the registry: connection refused' });
    registry.readEvents = () => Promise.reject(new TypeError('cannot read properties of undefined (reading "10.0.0.7")'));
    const bug = await app.request('/api/events', { headers: auth });
    expect(bug.status).toBe(500);
    const text = await bug.text();
    expect(JSON.parse(text)).toMatchObject({ error: { code: 'internal_error', message: 'internal error' } });
    expect(text).not.toContain('10.0.0.7');
  });

  it('stays ready while it routes on remembered state, and says why in the readiness detail', async () => {
    const lost = make({ status: { dataLostAt: Date.now() - 12_000 } });
    const res = await lost.request('/readyz');
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ready (degraded): the registry lost its data 12 s ago; routing on the last-known functions and settings while they are written back\n');
    const body = (await (await lost.request('/api/regions', { headers: auth })).json()) as { registry: { dataLostForMs: number } };
    expect(body.registry.dataLostForMs).toBeGreaterThanOrEqual(12_000);
    // A worker seeded from the cluster primary's copy routes on it but does not write it back: it says so.
    const held = make({ status: { dataLostAt: Date.now() - 12_000, heldCopyAt: Date.now() - 95_000 } });
    expect(await (await held.request('/readyz')).text()).toBe(
      "ready (degraded): the registry lost its data 12 s ago; routing on the cluster primary's copy of the functions and settings, held for 95 s and not written back\n",
    );
    const stale = make({ status: { stale: true, staleForMs: 4_000 } });
    expect(await (await stale.request('/readyz')).text()).toBe('ready (degraded): the registry has been unreachable for 4 s; routing on the last snapshot\n');
    expect(await (await app.request('/readyz')).text()).toBe('ready\n');
  });

  it('names the registry keys it cannot read in the readiness detail: not ready when held back at start, degraded after', async () => {
    // Held back at start (registry-watcher.ts holdBack): Redis answers, a key of it does not read.
    const heldBack = make({ status: { lastFullSyncAt: null, unreadableParts: ['residency', 'overrides'] } });
    const res = await heldBack.request('/readyz');
    expect(res.status).toBe(503);
    // Before: "no answer from the registry since start", which sent the operator after the network.
    expect(await res.text()).toBe(
      "not ready: the function directory has not been read yet: the registry answers, but its residency and overrides keys cannot be read (registry.unreadableParts in /api/status); every function answers 503 registry_unreachable until they read\n",
    );
    const unread = make({ status: { lastFullSyncAt: null } });
    expect(await (await unread.request('/readyz')).text()).toBe('not ready: the function directory has not been read yet (no answer from the registry since start)\n');
    const kept = make({ status: { unreadableParts: ['residency'] } });
    const degraded = await kept.request('/readyz');
    expect(degraded.status).toBe(200);
    expect(await degraded.text()).toBe('ready (degraded): the registry\'s residency key cannot be read (registry.unreadableParts in /api/status); routing on what was last read of it\n');
    const generation = make({ status: { unreadableParts: ['generation'] } });
    expect(await (await generation.request('/readyz')).text()).toBe(
      "ready (degraded): the registry's generation key cannot be read (registry.unreadableParts in /api/status); a registry that loses its data is not noticed (nor written back) until it reads\n",
    );
  });

  it('allows reads but not writes without a token when public reads are configured', async () => {
    const open = make({ publicReads: true });
    expect((await open.request('/api/regions')).status).toBe(200);
    // HEAD reads as GET does (a monitor checking the endpoint answers): it was refused 401.
    const head = await open.request('/api/regions', { method: 'HEAD' });
    expect({ status: head.status, body: await head.text() }).toEqual({ status: 200, body: '' });
    expect((await open.request('/api/regions/atl/drain', { method: 'POST' })).status).toBe(401);
  });

  it('refuses a wrong token even where reads are public: the page asks for a new one rather than looking live', async () => {
    const open = make({ publicReads: true });
    const wrong = { authorization: 'Bearer not-the-token' };
    for (const path of ['/api/regions', '/api/stream']) {
      const answer = await open.request(path, { headers: wrong });
      expect(answer.status, path).toBe(401);
      expect(answer.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    }
    expect(refusals.map((r) => [r.path, r.reason])).toEqual([['/api/regions', 'invalid'], ['/api/stream', 'invalid']]);
    // Another scheme's credentials (a proxy's Basic auth passed on) are no token: the public read stands.
    expect((await open.request('/api/regions', { headers: { authorization: 'Basic dXNlcjpwYXNz' } })).status).toBe(200);
  });

  it('answers public reads only to an address or localhost as Host: a DNS name could be rebound to this address by any web page', async () => {
    const open = make({ publicReads: true });
    for (const host of ['127.0.0.1:9090', '10.1.2.3', '[::1]:9090', 'localhost:9090', 'dash.localhost']) {
      expect((await open.request(`http://${host}/api/regions`)).status, host).toBe(200);
    }
    const rebound = await open.request('http://attacker.example:9090/api/regions');
    expect(rebound.status).toBe(401);
    expect((await open.request('http://attacker.example:9090/api/regions', { headers: auth })).status).toBe(200); // the token still works
    expect((await open.request('http://attacker.example:9090/')).status).toBe(200); // the page itself holds nothing
    // A name the operator allows (a Prometheus target, say), in any case or with the root dot.
    const named = make({ publicReads: true, allowedHosts: ['edge-admin.internal'] });
    for (const host of ['edge-admin.internal:9090', 'EDGE-ADMIN.internal', 'edge-admin.internal.']) {
      expect((await named.request(`http://${host}/metrics`)).status, host).toBe(200);
    }
    expect((await named.request('http://attacker.example/metrics')).status).toBe(401);
  });

  it('caps the live streams open at once, and frees a place when one closes', async () => {
    const capped = make({ maxStreams: 2 });
    const first = await capped.request('/api/stream', { headers: auth });
    const second = await capped.request('/api/stream', { headers: auth });
    const third = await capped.request('/api/stream', { headers: auth });
    expect([first.status, second.status, third.status]).toEqual([200, 200, 429]);
    expect(((await third.json()) as { error: { code: string } }).error.code).toBe('too_many_requests');
    await first.body!.cancel();
    await until('the closed stream gives its place back', async () => {
      const next = await capped.request('/api/stream', { headers: auth });
      if (next.status !== 200) return false;
      await next.body!.cancel();
      return true;
    });
    await second.body!.cancel();
  });

  it('answers HEAD of the live stream with its head alone, holding no place', async () => {
    // Hono runs a GET handler for HEAD and drops the body: the stream went on writing to nobody,
    // and each HEAD held a place until the write timeout.
    const capped = make({ maxStreams: 2 });
    for (let i = 0; i < 4; i++) {
      const head = await capped.request('/api/stream', { method: 'HEAD', headers: auth });
      expect([head.status, head.headers.get('content-type')]).toEqual([200, 'text/event-stream']);
    }
    const first = await capped.request('/api/stream', { headers: auth });
    const second = await capped.request('/api/stream', { headers: auth });
    expect([first.status, second.status]).toEqual([200, 200]);
    await first.body!.cancel();
    await second.body!.cancel();
  });

  it('keeps places for the token: streams without it (public reads) cannot lock the dashboard out', async () => {
    // Seen in review: with --admin-public-reads, anyone who reached the port held every stream place
    // without a token, and the operator's dashboard got 429 until they left.
    const open = make({ publicReads: true, maxStreams: 4 });
    const anonymous = [];
    for (let i = 0; i < 4; i++) anonymous.push(await open.request('http://127.0.0.1:9090/api/stream'));
    expect(anonymous.map((r) => r.status)).toEqual([200, 200, 429, 429]);
    expect(((await anonymous[2]!.json()) as { error: { message: string } }).error.message).toBe(
      '2 live streams without the admin token are open already (the other 2 are kept for readers with it); close one, or give the token',
    );
    const operator = await open.request('http://127.0.0.1:9090/api/stream', { headers: auth });
    expect(operator.status).toBe(200);
    for (const res of [...anonymous, operator]) if (!res.bodyUsed) await res.body?.cancel();
  });

  it('ends a live stream opened with a replaced token once that token stops being valid; a stream with the new token goes on', async () => {
    // A stream must not outlive its token: the dashboard reconnects, is refused, and asks for the new one.
    const next = 'the-next-admin-token-0123';
    const clock = { now: Date.now() };
    const tokens = new AdminTokens(TOKEN, () => clock.now);
    const rotating = make({ tokens });
    const opened = await rotating.request('/api/stream', { headers: auth });
    expect(opened.status).toBe(200);
    tokens.replace(next, 60_000);
    const duringOverlap = await rotating.request('/api/stream', { headers: auth });
    const withNew = await rotating.request('/api/stream', { headers: { authorization: `Bearer ${next}` } });
    expect([duringOverlap.status, withNew.status]).toEqual([200, 200]);
    const reader = withNew.body!.getReader();
    expect((await reader.read()).done).toBe(false);
    clock.now += 60_000;
    // Both old-token streams end (text() resolves only at the end of the body).
    expect(await opened.text()).toContain('event: regions');
    expect(await duringOverlap.text()).toContain('event: regions');
    // The new token's stream still carries messages (the regions view at least once a second).
    const more = await reader.read();
    expect(more.done).toBe(false);
    await reader.cancel();
  });

  it('logs a stream that fails like any other handler failure, not as a raw stack on stderr', async () => {
    const printed = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const failing = make({ router: (local) => ({ ...local, regionStats: () => Promise.reject(new Error('router.regionStats: no answer within 2000 ms')) }) });
      const res = await failing.request('/api/stream', { headers: auth });
      expect(res.status).toBe(200);
      await res.text(); // the stream ends
      expect(errorsLogged).toEqual([{ requestId: expect.any(String), method: 'GET', path: '/api/stream', client: null }]);
      expect(printed).not.toHaveBeenCalled();
    } finally {
      printed.mockRestore();
    }
  });

  it('lists regions with live state and router counters', async () => {
    const res = await app.request('/api/regions', { headers: auth });
    const body = (await res.json()) as { registry: { kind: string }; regions: Array<Record<string, unknown>> };
    expect(body.registry.kind).toBe('memory');
    expect(body.regions.map((r) => r.id)).toEqual(['atl', 'nyc', 'lax', 'fra', 'syd']);
    expect(body.regions.find((r) => r.id === 'nyc')).toMatchObject({ name: 'New York', status: 'up', inFlight: 3, warmContainers: 7, requestsTotal: 1, drained: false, weight: 1 });
    expect(body.regions.find((r) => r.id === 'fra')).toMatchObject({ failoversTotal: 1, routerActive: 4, routerQueued: 1 });
    // fra reports nothing in flight, but this router holds 5 requests there: the larger count shows.
    expect(body.regions.find((r) => r.id === 'fra')!.inFlight).toBe(5);
  });

  it("writes each region's warm functions and per-function loads in /api/status, not as the {} a Set or Map becomes", async () => {
    await registry.writeHeartbeat(
      heartbeat('fra', {
        warmFunctions: ['demo/zeta', 'acme/api', 'demo/echo'],
        functions: [
          { fn: 'demo/zeta', idle: 0, busy: 2, coldStartMs: null },
          { fn: 'acme/api', idle: 3, busy: 1, coldStartMs: 250 },
        ],
      }),
      60_000,
    );
    await until('the watcher has the new heartbeat', () => watcher.snapshot.regions.get('fra')!.warmFunctions.size === 3);
    const body = (await (await app.request('/api/status', { headers: auth })).json()) as { regions: Record<string, { warmFunctions: unknown; functionLoads: unknown }> };
    expect(body.regions.fra!.warmFunctions).toEqual(['acme/api', 'demo/echo', 'demo/zeta']);
    expect(body.regions.fra!.functionLoads).toEqual({ 'acme/api': { idle: 3, busy: 1, coldStartMs: 250 }, 'demo/zeta': { idle: 0, busy: 2, coldStartMs: null } });
    expect(Object.keys(body.regions.fra!.functionLoads as object)).toEqual(['acme/api', 'demo/zeta']);
    // A region reporting no loads still has the fields, empty.
    expect(body.regions.nyc).toMatchObject({ warmFunctions: ['demo/echo'], functionLoads: {}, status: 'up', inFlight: 3 });
  });

  it("caps each region's function lists in /api/status, keeping the busiest and saying how many there are", async () => {
    // Seen in review: the whole warm list went out, up to 512 KiB of names per region per call.
    const warm = Array.from({ length: 5_000 }, (_, i) => `org${i % 50}/fn-${String(i).padStart(5, '0')}`);
    const functions = Array.from({ length: 500 }, (_, i) => ({ fn: warm[i * 3]!, idle: i % 7, busy: i === 42 ? 1_000 : 0, coldStartMs: null }));
    await registry.writeHeartbeat(heartbeat('fra', { warmFunctions: warm, functions, functionsTotal: 800 }), 60_000);
    await until('the watcher has the new heartbeat', () => watcher.snapshot.regions.get('fra')!.warmFunctions.size === warm.length);
    const res = await app.request('/api/status', { headers: auth });
    const text = await res.text();
    const body = JSON.parse(text) as {
      functionListLimit: number;
      regions: Record<string, { warmFunctions: string[]; warmFunctionsTotal: number; functionLoads: Record<string, unknown>; functionLoadsTotal: number; truncated: boolean }>;
    };
    expect(body.functionListLimit).toBe(STATUS_FUNCTION_LIMIT);
    const fra = body.regions.fra!;
    expect(fra.warmFunctions).toHaveLength(STATUS_FUNCTION_LIMIT);
    expect(Object.keys(fra.functionLoads)).toHaveLength(STATUS_FUNCTION_LIMIT);
    expect({ warm: fra.warmFunctionsTotal, loads: fra.functionLoadsTotal, truncated: fra.truncated }).toEqual({ warm: 5_000, loads: 500, truncated: true });
    // The busiest function is in both lists; each list is in name order.
    expect(fra.warmFunctions).toContain(warm[126]);
    expect(fra.functionLoads[warm[126]!]).toEqual({ idle: 0, busy: 1_000, coldStartMs: null });
    expect(fra.warmFunctions).toEqual([...fra.warmFunctions].sort());
    expect(Object.keys(fra.functionLoads)).toEqual(Object.keys(fra.functionLoads).sort());
    // Warm functions with containers counted come first: every one listed has some.
    const containers = new Map(functions.map((f) => [f.fn, f.idle + f.busy]));
    expect(fra.warmFunctions.filter((fn) => (containers.get(fn) ?? 0) === 0)).toEqual([]);
    // Bounded whatever the region reports: 100 names of at most 128 characters per list and region.
    expect(text.length).toBeLessThan(5 * 2 * STATUS_FUNCTION_LIMIT * 200);
    expect(body.regions.nyc).toMatchObject({ warmFunctions: ['demo/echo'], warmFunctionsTotal: 1, functionLoads: {}, functionLoadsTotal: 0, truncated: false });
  });

  it('answers a write only once the whole router has applied it; reads and refused writes do not wait', async () => {
    let release: () => void = () => undefined;
    const applied = new Promise<void>((resolve) => (release = resolve));
    const settles: string[] = [];
    const held = make({
      router: (local) => ({
        ...local,
        settle: async () => {
          settles.push('asked');
          await applied;
          return false;
        },
      }),
    });
    let answered = false;
    const drain = Promise.resolve(held.request('/api/regions/fra/drain', { method: 'POST', headers: auth })).then((res) => ((answered = true), res));
    await expect.poll(() => settles).toEqual(['asked']);
    expect(answered).toBe(false);
    release();
    const answer = await drain;
    expect(answer.status).toBe(200);
    // This stand-in settles with false (a worker did not confirm): the write stands, and says so.
    expect(answer.headers.get('x-edge-applied')).toBe('pending');
    expect((await app.request('/api/regions/fra/undrain', { method: 'POST', headers: auth })).headers.get('x-edge-applied')).toBe('everywhere');
    expect((await held.request('/api/regions', { headers: auth })).status).toBe(200);
    expect((await held.request('/api/regions/nowhere/drain', { method: 'POST', headers: auth })).status).toBe(404);
    expect(settles).toEqual(['asked']);
  });

  it('drains and undrains a region through the registry, with an event', async () => {
    const res = await app.request('/api/regions/fra/drain', { method: 'POST', headers: auth });
    expect(await res.json()).toEqual({ region: 'fra', drained: true });
    expect((await registry.readOverrides()).get('fra')).toEqual({ drained: true, weight: null });
    expect((await registry.readEvents(1))[0]).toMatchObject({ region: 'fra', kind: 'drained' });
    await app.request('/api/regions/fra/undrain', { method: 'POST', headers: auth });
    expect((await registry.readOverrides()).get('fra')?.drained).toBe(false);
    expect(actions).toEqual(['drain', 'undrain']);
    expect((await app.request('/api/regions/mars/drain', { method: 'POST', headers: auth })).status).toBe(404);
  });

  it.each([
    [{ weight: 3 }, 200],
    // Back to the regions file's weight: before, no request could drop an override once set.
    [{ weight: null }, 200],
    [{ weight: 101 }, 400],
    [{ weight: '3' }, 400],
    [{ weight: 3, extra: true }, 400],
    ['not json', 400],
  ])('PUT weight %j → %i', async (body, status) => {
    const res = await app.request('/api/regions/atl/weight', {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    expect(res.status).toBe(status);
    if (status === 400) expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_body');
  });

  it('manages functions and domains, validating bodies with field errors', async () => {
    const put = await app.request('/api/functions/acme/checkout', { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ regions: ['fra', 'nyc'], tier: 'extended' }) });
    expect(put.status).toBe(200);
    const expected = { org: 'acme', fn: 'checkout', regions: ['fra', 'nyc'], tier: 'extended', enabled: true, hedge: false };
    // The API reads the watcher's snapshot, which follows the registry write.
    await until('the function is in the directory', async () => JSON.stringify(await (await app.request('/api/functions/acme/checkout', { headers: auth })).json()) === JSON.stringify(expected));
    const hedged = await app.request('/api/functions/acme/search', { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ hedge: true }) });
    expect(hedged.status).toBe(200);
    await until('the hedged function is in the directory', async () => ((await (await app.request('/api/functions/acme/search', { headers: auth })).json()) as { hedge?: boolean }).hedge === true);
    const bad = await app.request('/api/functions/acme/checkout', { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ regions: ['mars'], tier: 'forever' }) });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { fields: Record<string, string> } }).error.fields).toHaveProperty('tier');
    expect((await app.request('/api/functions/acme/checkout', { method: 'DELETE', headers: auth })).status).toBe(200);
    expect((await app.request('/api/functions/acme/checkout', { method: 'DELETE', headers: auth })).status).toBe(404);

    expect((await app.request('/api/domains/Shop.Example.com', { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ org: 'acme', fn: 'shop' }) })).status).toBe(200);
    expect((await registry.readState()).domains.get('shop.example.com')).toEqual({ org: 'acme', fn: 'shop' });
    expect((await app.request('/api/domains/shop.example.com', { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ org: 'ACME', fn: '<x>' }) })).status).toBe(400);
    expect((await app.request('/api/domains/shop.example.com', { method: 'DELETE', headers: auth })).status).toBe(200);
    // The same names regions.json takes: a punycode top-level domain (.рф) too, nothing that is not a DNS name.
    expect((await app.request('/api/domains/shop.example.xn--p1ai', { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ org: 'acme', fn: 'shop' }) })).status).toBe(200);
    expect((await app.request('/api/domains/shop.example.c0m', { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ org: 'acme', fn: 'shop' }) })).status).toBe(400);
  });

  it('answers a write that was made as made, and logs it, when its event cannot be added', async () => {
    // Seen in review: the write stood but was answered 503 with no admin_action line, and the
    // DELETE an operator then retried answered 404.
    registry.appendEvent = () => Promise.reject(new EdgeError('registry_unreachable', 'cannot reach the registry: command timed out'));
    const json = { ...auth, 'content-type': 'application/json' };
    expect((await app.request('/api/functions/acme/api', { method: 'PUT', headers: json, body: JSON.stringify({}) })).status).toBe(200);
    expect((await app.request('/api/domains/api.example.com', { method: 'PUT', headers: json, body: JSON.stringify({ org: 'acme', fn: 'api' }) })).status).toBe(200);
    expect((await app.request('/api/regions/fra/drain', { method: 'POST', headers: auth })).status).toBe(200);
    expect((await app.request('/api/regions/fra/weight', { method: 'PUT', headers: json, body: JSON.stringify({ weight: 7 }) })).status).toBe(200);
    expect((await app.request('/api/domains/api.example.com', { method: 'DELETE', headers: auth })).status).toBe(200);
    expect((await app.request('/api/functions/acme/api', { method: 'DELETE', headers: auth })).status).toBe(200);
    expect(actions).toEqual(['deploy', 'domain', 'drain', 'weight', 'domain_removed', 'undeploy']);
    expect(errorsLogged.map((e) => `${e.method} ${e.path}`)).toEqual([
      'PUT /api/functions/acme/api',
      'PUT /api/domains/api.example.com',
      'POST /api/regions/fra/drain',
      'PUT /api/regions/fra/weight',
      'DELETE /api/domains/api.example.com',
      'DELETE /api/functions/acme/api',
    ]);
    expect((await registry.readOverrides()).get('fra')).toEqual({ drained: true, weight: 7 });
  });

  it('refuses a function routing could never reach, naming the field, and writes nothing', async () => {
    // Seen in review: fn and org each within their limit but `<fn>-<org>` over 63 characters was
    // stored and answered 200; every request for it then failed as label_too_long.
    const put = (org: string, fn: string) => app.request(`/api/functions/${org}/${fn}`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({}) });
    const org = 'o'.repeat(30);
    const tooLong = await put(org, 'f'.repeat(40));
    expect(tooLong.status).toBe(400);
    const { error } = (await tooLong.json()) as { error: { code: string; fields: Record<string, string> } };
    expect(error.code).toBe('invalid_path');
    expect(error.fields).toEqual({ fn: expect.stringContaining('at most 32 characters') });
    expect(resolveHost(`${'f'.repeat(40)}-${org}.telnyxcompute.com`, 'telnyxcompute.com')).toMatchObject({ ok: false, code: 'label_too_long' });
    expect(((await (await put('ACME', 'shop')).json()) as { error: { fields: Record<string, string> } }).error.fields).toEqual({ org: expect.stringContaining('lower-case') });
    expect(((await (await put('acme', 'my.shop')).json()) as { error: { fields: Record<string, string> } }).error.fields).toEqual({ fn: expect.stringContaining('hyphens') });
    expect((await registry.readState()).functions.size).toBe(0);
    expect(actions).toEqual([]);
    // The longest label routing reads is still taken.
    expect((await put('abcd', 'f'.repeat(58))).status).toBe(200);
    expect(resolveHost(`${'f'.repeat(58)}-abcd.telnyxcompute.com`, 'telnyxcompute.com')).toMatchObject({ ok: true, fn: 'f'.repeat(58), org: 'abcd' });
  });

  it('refuses a deploy into regions outside the org\'s residency with 409, naming the field, those regions and the allowed ones, and writes nothing', async () => {
    // Seen in review: both were stored (200); routing never sent a request to nyc, and the
    // second deployment answered no_healthy_region to every request.
    await registry.setResidency('euco', ['fra', 'lax']);
    const put = (body: unknown) => app.request('/api/functions/euco/api', { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    for (const [regions, outside] of [
      [['fra', 'nyc'], ['nyc']],
      [['nyc', 'atl'], ['nyc', 'atl']],
    ] as const) {
      const refused = await put({ regions });
      expect(refused.status, regions.join()).toBe(409);
      const { error } = (await refused.json()) as { error: Record<string, unknown> };
      expect(error, regions.join()).toEqual({
        code: 'residency_conflict',
        message: expect.stringContaining(`euco/api: ${outside.join(', ')} ${outside.length === 1 ? 'is' : 'are'} outside org euco's data residency (allowed: fra, lax)`),
        fields: { regions: `outside org euco's data residency: ${outside.join(', ')} (allowed: fra, lax)` },
        outsideResidency: outside,
        allowedRegions: ['fra', 'lax'],
        requestId: expect.any(String),
      });
    }
    expect((await registry.readState()).functions.size).toBe(0);
    expect(await registry.readEvents(10)).toEqual([]);
    expect(actions).toEqual([]);
    // Within the residency, or everywhere (routing then serves it from the allowed regions), it is taken.
    expect((await put({ regions: ['lax'] })).status).toBe(200);
    expect((await put({ regions: null })).status).toBe(200);
    expect(actions).toEqual(['deploy', 'deploy']);
    expect((await registry.readEvents(10)).map((e) => e.cause)).toEqual(['euco/api in every region (standard; admin API)', 'euco/api in lax (standard; admin API)']);
  });

  it('refuses with 409 any deploy into an org whose rule allows no region (one the registry could not read), everywhere too, saying so', async () => {
    // What an unreadable rule decodes to (RecordDecoder), and what an import of its export ([]) writes.
    await registry.setResidency('lockco', []);
    const put = (body: unknown) => app.request('/api/functions/lockco/api', { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const named = await put({ regions: ['fra'] });
    expect(named.status).toBe(409);
    expect(((await named.json()) as { error: Record<string, unknown> }).error).toMatchObject({
      fields: { regions: "outside org lockco's data residency: fra (allowed: no region (its rule could not be read: set it again))" },
      allowedRegions: [],
    });
    // Everywhere was taken (200): served from the allowed regions, which were none, it answered no_healthy_region to every request.
    const everywhere = await put({ regions: null });
    expect(everywhere.status).toBe(409);
    expect(((await everywhere.json()) as { error: Record<string, unknown> }).error).toMatchObject({
      code: 'residency_conflict',
      message: "lockco/api: org lockco's data residency allows no region (its rule could not be read: set it again); routing would never send a request anywhere. Set the residency first",
      fields: { regions: "outside org lockco's data residency: every region (allowed: no region (its rule could not be read: set it again))" },
    });
    expect((await registry.readState()).functions.size).toBe(0);
  });

  it('answers 409 residency_conflict, writing nothing and logging no fault, a deploy whose org\'s residency changes under every attempt', async () => {
    // Another router changing the rule between each check and write (every rule allows lax).
    let sets = 0;
    const write = registry.putFunctionUnderResidency.bind(registry);
    registry.putFunctionUnderResidency = async (record, stamp) => {
      await registry.setResidency('busyco', ['lax', sets++ % 2 === 0 ? 'fra' : 'nyc']);
      return write(record, stamp);
    };
    const refused = await app.request('/api/functions/busyco/api', { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ regions: ['lax'] }) });
    expect(refused.status).toBe(409);
    expect(((await refused.json()) as { error: Record<string, unknown> }).error).toEqual({
      code: 'residency_conflict',
      message: `busyco/api: org busyco's data residency changed during each of ${DEPLOY_ATTEMPTS} attempts to deploy it; nothing written. Try again`,
      requestId: expect.any(String),
    });
    expect((await registry.readState()).functions.size).toBe(0);
    expect(actions).toEqual([]);
    expect(errorsLogged).toEqual([]);
  });

  it('sets, reads and clears an org\'s residency; a rule that strands functions is not refused (it applies at once) but names them', async () => {
    const fnRecord = (fn: string, regions: string[]) => ({ org: 'strandco', fn, regions: new Set(regions), tier: 'standard' as const, enabled: true });
    await registry.putFunction(fnRecord('checkout', ['lax', 'syd']));
    await registry.putFunction(fnRecord('search', ['nyc']));
    await registry.putFunction(fnRecord('both', ['fra', 'nyc']));
    const json = { ...auth, 'content-type': 'application/json' };
    const read = async () => (await app.request('/api/residency/strandco', { headers: auth })).json();
    expect(await read()).toEqual({ org: 'strandco', regions: null });

    const set = await app.request('/api/residency/strandco', { method: 'PUT', headers: json, body: JSON.stringify({ regions: ['fra'] }) });
    expect(set.status).toBe(200);
    // Answered once every worker routes by it, as every admin write is.
    expect(set.headers.get('x-edge-applied')).toBe('everywhere');
    expect(await set.json()).toEqual({
      org: 'strandco',
      regions: ['fra'],
      stranded: [
        { fn: 'checkout', regions: ['lax', 'syd'] },
        { fn: 'search', regions: ['nyc'] },
      ],
      // Served from fra only (routing skips nyc): a deploy would refuse it, the rule is not refused.
      partlyOutside: [{ fn: 'both', regions: ['fra', 'nyc'], outside: ['nyc'] }],
    });
    expect((await registry.readResidency('strandco')).allowed).toEqual(new Set(['fra']));
    // The rule this router routes by, read without waiting: the write was answered once it was applied.
    expect(await read()).toEqual({ org: 'strandco', regions: ['fra'] });
    // A deploy checks against it.
    expect((await app.request('/api/functions/strandco/api', { method: 'PUT', headers: json, body: JSON.stringify({ regions: ['nyc'] }) })).status).toBe(409);

    // Regions sorted and said once; a rule that strands nothing names no function stranded.
    const widened = await app.request('/api/residency/strandco', { method: 'PUT', headers: json, body: JSON.stringify({ regions: ['nyc', 'lax', 'fra', 'nyc'] }) });
    expect(await widened.json()).toEqual({ org: 'strandco', regions: ['fra', 'lax', 'nyc'], stranded: [], partlyOutside: [{ fn: 'checkout', regions: ['lax', 'syd'], outside: ['syd'] }] });
    expect((await registry.readResidency('strandco')).allowed).toEqual(new Set(['fra', 'lax', 'nyc']));

    const cleared = await app.request('/api/residency/strandco', { method: 'DELETE', headers: auth });
    expect(cleared.status).toBe(200);
    expect(cleared.headers.get('x-edge-applied')).toBe('everywhere');
    expect(await cleared.json()).toEqual({ org: 'strandco', regions: null });
    expect((await registry.readResidency('strandco')).allowed).toBeNull();
    expect(await read()).toEqual({ org: 'strandco', regions: null });
    // Clearing an org with no rule is no error: every region was allowed already.
    expect((await app.request('/api/residency/strandco', { method: 'DELETE', headers: auth })).status).toBe(200);
    expect(actions).toEqual(['residency', 'residency', 'residency_cleared', 'residency_cleared']);
    expect(actionFields[0]).toMatchObject({ org: 'strandco', regions: ['fra'], method: 'PUT', path: '/api/residency/strandco', requestId: expect.any(String) });
    // Each change is in the registry's event log, as the dashboard and GET /api/events show it.
    const { events } = (await (await app.request('/api/events?limit=4', { headers: auth })).json()) as { events: Array<{ region: string | null; kind: string; cause: string }> };
    expect(events.map(({ region, kind, cause }) => ({ region, kind, cause }))).toEqual([
      { region: null, kind: 'residency_cleared', cause: 'org strandco may use every region (admin API)' },
      { region: null, kind: 'residency_cleared', cause: 'org strandco may use every region (admin API)' },
      { region: null, kind: 'residency_set', cause: 'org strandco restricted to fra, lax, nyc (admin API)' },
      { region: null, kind: 'residency_set', cause: 'org strandco restricted to fra (admin API)' },
    ]);
    expect(errorsLogged).toEqual([]);
  });

  it('sets and clears a residency rule whose event cannot be logged: the rule stands, the answer is the write\'s, and the failure is logged', async () => {
    registry.appendEvent = () => Promise.reject(new EdgeError('registry_unreachable', 'cannot reach the registry: command timed out'));
    const set = await app.request('/api/residency/logco', { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ regions: ['fra'] }) });
    expect(set.status).toBe(200);
    expect(await set.json()).toEqual({ org: 'logco', regions: ['fra'], stranded: [], partlyOutside: [] });
    expect((await app.request('/api/residency/logco', { method: 'DELETE', headers: auth })).status).toBe(200);
    expect((await registry.readResidency('logco')).allowed).toBeNull();
    expect(errorsLogged.map((e) => `${e.method} ${e.path}`)).toEqual(['PUT /api/residency/logco', 'DELETE /api/residency/logco']);
    expect(actions).toEqual(['residency', 'residency_cleared']);
  });

  it.each<[string, string, unknown, string, string]>([
    ['no regions', 'acme', {}, 'invalid_body', 'regions'],
    ['an empty list (clear the rule with DELETE)', 'acme', { regions: [] }, 'invalid_body', 'regions'],
    ['a list that is not one', 'acme', { regions: 'fra' }, 'invalid_body', 'regions'],
    ['an unknown region', 'acme', { regions: ['fra', 'mars'] }, 'invalid_body', 'regions'],
    ['a region id in capitals', 'acme', { regions: ['FRA'] }, 'invalid_body', 'regions.0'],
    ['a field it does not take', 'acme', { regions: ['fra'], functions: [] }, 'invalid_body', '(body)'],
    ['JSON that does not parse', 'acme', '{"regions": [', 'invalid_body', '(body)'],
    ['an org routing can never read from a host', 'Acme', { regions: ['fra'] }, 'invalid_path', 'org'],
  ])('refuses a residency rule with %s: 400 naming the field, nothing written', async (_case, org, body, code, field) => {
    const res = await app.request(`/api/residency/${org}`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
    expect(res.status).toBe(400);
    expect(res.headers.get('x-edge-applied')).toBeNull();
    const { error } = (await res.json()) as { error: { code: string; fields: Record<string, string> } };
    expect(error.code).toBe(code);
    expect(Object.keys(error.fields)).toEqual([field]);
    expect((await registry.readState()).residency.size).toBe(0);
    expect(actions).toEqual([]);
  });

  it('clears a rule under any org text a rule can be stored under, and refuses a longer one before it reaches the log or the event log', async () => {
    // A backup carries a rule under a name `PUT` refuses: it can still be removed.
    await registry.setResidency('Legacy Co', ['fra']);
    expect((await app.request('/api/residency/Legacy%20Co', { method: 'DELETE', headers: auth })).status).toBe(200);
    expect((await registry.readResidency('Legacy Co')).allowed).toBeNull();
    const longest = 'a'.repeat(MAX_PATCH_FIELD_LENGTH);
    expect((await app.request(`/api/residency/${longest}`, { method: 'DELETE', headers: auth })).status).toBe(200);
    // 5,000 %01, decoded, made a 30 KB admin_action line and event.
    const res = await app.request(`/api/residency/${'%01'.repeat(5_000)}`, { method: 'DELETE', headers: auth });
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as { error: { code: string; fields: Record<string, string> } };
    expect(error).toMatchObject({ code: 'invalid_path', fields: { org: `expected at most ${MAX_PATCH_FIELD_LENGTH} characters` } });
    expect(actions).toEqual(['residency_cleared', 'residency_cleared']);
    const { events } = (await (await app.request('/api/events?limit=10', { headers: auth })).json()) as { events: Array<{ cause: string }> };
    expect(events.map((e) => e.cause.length <= MAX_PATCH_FIELD_LENGTH + 40)).toEqual([true, true]);
  });

  it('sets a residency rule whose functions cannot be read afterwards, says so, and logs why', async () => {
    registry.readState = () => Promise.reject(new EdgeError('registry_unreachable', 'cannot reach the registry: command timed out'));
    const res = await app.request('/api/residency/acme', { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ regions: ['fra'] }) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      org: 'acme',
      regions: ['fra'],
      stranded: null,
      partlyOutside: null,
      warning: "the rule is set, but the org's functions could not be read to check for any it strands or leaves partly outside: cannot reach the registry: command timed out",
    });
    expect((await registry.readResidency('acme')).allowed).toEqual(new Set(['fra']));
    expect(errorsLogged.map((e) => `${e.method} ${e.path}`)).toEqual(['PUT /api/residency/acme']);
    expect(actions).toEqual(['residency']);
  });

  it('takes a custom domain as routing looks it up: a trailing dot dropped, a non-ASCII letter never folded into ASCII', async () => {
    const put = (host: string) => app.request(`/api/domains/${host}`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ org: 'acme', fn: 'shop' }) });
    // A Host's trailing dot is dropped by routing and by `registry domain add`: the API refused it, and a removal answered 404 for a mapped name.
    expect((await put('Shop.Example.com.')).status).toBe(200);
    expect([...(await registry.readState()).domains.keys()]).toEqual(['shop.example.com']);
    expect((await app.request('/api/domains/shop.example.com.', { method: 'DELETE', headers: auth })).status).toBe(200);
    // KELVIN SIGN (U+212A) lower-cases to an ASCII "k": the name stored was one nobody typed.
    const kelvin = await put('%E2%84%AAshop.example.com');
    expect(kelvin.status).toBe(400);
    expect(((await kelvin.json()) as { error: { fields: Record<string, string> } }).error.fields).toHaveProperty('host');
    const port = await put('shop.example.com:8443');
    expect(((await port.json()) as { error: { fields: Record<string, string> } }).error.fields).toHaveProperty('host');
    expect((await registry.readState()).domains.size).toBe(0);
    expect(actions).toEqual(['domain', 'domain_removed']);
  });

  it('says ACME is off when no certificates are managed', async () => {
    expect(await (await app.request('/api/certificates', { headers: auth })).json()).toEqual({
      acme: false,
      certificates: [],
      failures: [],
      ordersPaused: null,
      total: { domains: 0, certificates: 0, failures: 0 },
      next: null,
    });
  });

  it('asks for the page the query names: 1,000 domains from the first by default', async () => {
    const PAUSED = { name: 'a.example', reason: 'too many new orders', since: '2030-01-01T00:00:00.000Z', until: '2030-01-01T00:05:00.000Z', refusals: 1 };
    const asked: ListingPage[] = [];
    const withAcme = make({ certificates: (page) => (asked.push(page), { certificates: [], failures: [], ordersPaused: PAUSED, total: { domains: 3, certificates: 3, failures: 0 }, next: 'b.example' }) });
    const first = await withAcme.request('/api/certificates', { headers: auth });
    // A CA's rate limit pausing every router's orders shows beside the page.
    expect(await first.json()).toMatchObject({ acme: true, ordersPaused: PAUSED, total: { domains: 3 }, next: 'b.example' });
    await withAcme.request('/api/certificates?limit=2&after=b.example', { headers: auth });
    expect(asked).toEqual([{ limit: 1_000 }, { limit: 2, after: 'b.example' }]);
  });

  it('refuses a certificate page it cannot give, naming the field', async () => {
    for (const query of ['limit=0', 'limit=10001', 'limit=2.5', 'limit=many', 'limit=', 'limit=0x10', 'limit=1e3', 'limit=%205', 'limit=+7', `after=${'a'.repeat(254)}`, 'after=']) {
      const res = await app.request(`/api/certificates?${query}`, { headers: auth });
      expect(res.status, query).toBe(400);
      const body = (await res.json()) as { error: { code: string; fields: Record<string, string> } };
      expect(body.error.code).toBe('invalid_query');
      expect(Object.keys(body.error.fields), query).toEqual([query.split('=')[0]]);
    }
  });

  it('explains a route like the CLI does', async () => {
    const res = await app.request('/api/route?host=echo-demo.telnyxcompute.com&ip=198.51.100.1', { headers: auth });
    expect(await res.json()).toMatchObject({ fn: 'echo', org: 'demo', region: 'fra', reason: 'nearest' });
    expect((await app.request('/api/route?host=x', { headers: auth })).status).toBe(400);
  });

  it('exposes Prometheus metrics with the edge_router_ prefix', async () => {
    const text = await (await app.request('/metrics', { headers: auth })).text();
    for (const line of [
      /^edge_router_requests_total\{region="nyc",status_class="2xx",route="failover"\} 1$/m,
      /^edge_router_failovers_total\{region="fra"\} 1$/m,
      /^edge_router_retries_total 1$/m,
      /^edge_router_retry_budget_exhausted_total 2$/m,
      /^edge_router_log_lines_dropped_total 0$/m,
      /^edge_router_geoip_lookups_total 10$/m,
      /^edge_router_geoip_cache_hits_total 7$/m,
      /^edge_router_open_connections 3$/m,
      /^edge_router_registry_stale 0$/m,
      /^edge_router_region_up\{region="atl"\} 1$/m,
      /^edge_router_request_duration_seconds_bucket\{le="0.01"\} 1$/m,
      /^process_cpu_seconds_total /m, // Node's default metrics keep their standard names
      /^nodejs_eventloop_lag_seconds /m,
    ]) {
      expect(text).toMatch(line);
    }
  });

  it('streams region state and events, and pushes a change within a second', async () => {
    const res = await app.request('/api/stream', { headers: auth });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    const readUntil = async (pattern: RegExp, timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(text)) {
        if (Date.now() > deadline) throw new Error(`stream did not show ${pattern} in time: ${text.slice(-500)}`);
        const { value, done } = await reader.read();
        if (done) throw new Error('stream ended');
        text += decoder.decode(value);
      }
    };
    await readUntil(/event: regions\ndata: \{"generatedAt"/, 2_000);
    // Timed apart from the test process's own waits for a core (support/time-unstalled.ts); what
    // was read before a change is dropped, so only a push after it counts.
    const pushedMs = await timeUnstalled(
      async () => {
        text = '';
        await registry.setOverrides('syd', { drained: true, weight: null });
        await readUntil(/"id":"syd"(?:(?!"id":).)*"drained":true/, 5_000);
      },
      async () => {
        text = '';
        await registry.setOverrides('syd', { drained: false, weight: null });
        await readUntil(/"id":"syd"(?:(?!"id":).)*"drained":false/, 5_000);
      },
    );
    expect(pushedMs).toBeLessThan(1_000);
    await registry.appendEvent({ at: 1, region: 'syd', kind: 'drained', cause: 'test' });
    await readUntil(/event: events\ndata: \{"events":\[\{"at":1/, 2_000);
    await reader.cancel();
  });

  it('says on the stream when the event log cannot be read, rather than leaving the last events read as the log', async () => {
    const readEvents = vi.spyOn(registry, 'readEvents').mockRejectedValue(new EdgeError('registry_unreachable', 'the registry is unreachable: connection closed'));
    const res = await app.request('/api/stream', { headers: auth });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    try {
      const deadline = Date.now() + 3_000;
      // An earlier read's events may come first (the stream sends the last value read): wait for the failed one.
      while (!text.includes('"error":') && Date.now() < deadline) {
        const chunk = await reader.read();
        if (chunk.done) break;
        text += decoder.decode(chunk.value);
      }
      expect(text).toMatch(/event: events\ndata: \{"error":\{"code":"registry_unreachable","message":"the registry is unreachable: connection closed"\}\}\n/);
    } finally {
      await reader.cancel();
      readEvents.mockRestore();
    }
  });

  it('keeps pushing region changes while the event log does not answer (a hung Redis)', async () => {
    // The event log is a registry round trip; region changes come from this router's own
    // snapshot. A read that does not come back must not hold them: the stream waited for it.
    let answerEvents: (events: []) => void = () => undefined;
    const readEvents = vi.spyOn(registry, 'readEvents').mockImplementation(() => new Promise((resolve) => (answerEvents = resolve)));
    const res = await app.request('/api/stream', { headers: auth });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    const readUntil = async (pattern: RegExp, timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(text)) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`stream did not show ${pattern} in time: ${text.slice(-300)}`);
        const chunk = await Promise.race([reader.read(), new Promise<'late'>((resolve) => setTimeout(resolve, left, 'late'))]);
        if (chunk === 'late') continue;
        if (chunk.done) throw new Error('stream ended');
        text += decoder.decode(chunk.value);
      }
    };
    try {
      await readUntil(/event: regions\ndata: \{"generatedAt"/, 2_000);
      await until('the stream asked for the event log', () => readEvents.mock.calls.length > 0, 2_000);
      await registry.setOverrides('syd', { drained: true, weight: null });
      await readUntil(/"id":"syd"(?:(?!"id":).)*"drained":true/, 2_000);
      // Asked once at a time: a read still pending is not joined by more of them every second.
      expect(readEvents).toHaveBeenCalledTimes(1);
      answerEvents([]);
      await readUntil(/event: events\ndata: \{"events":\[\]\}/, 2_000);
    } finally {
      await reader.cancel();
      readEvents.mockRestore();
    }
  });
});
