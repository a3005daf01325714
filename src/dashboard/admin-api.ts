/**
 * The admin API (Hono) on the admin listener: region state, events, the function directory, org
 * residency, route explanations, operator actions and a live stream for the dashboard. Every read needs the
 * admin token unless public reads are configured; every write always does. Bodies are validated
 * (zod) and bad ones are answered 400 with the field errors. Nothing here is reachable from the
 * public listeners: this app is only mounted on the admin server.
 */
import { randomUUID } from 'node:crypto';
import { domainEvent, domainRemovedEvent, undeployedEvent } from '../registry/operator-events.js';
import { isIP } from 'node:net';
import { Hono, type Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { describeError, statusOf, type ErrorCode } from '../core/errors.js';
import { dnsNameFrom, isDnsName, longestFunctionName, MAX_LABEL_LENGTH } from '../core/dns-name.js';
import { DEFAULT_LISTING_LIMIT, MAX_LISTING_LIMIT, type CertificateStatus, type ListingPage } from '../core/certificate-vault.js';
import { bodyLimit } from 'hono/body-limit';
import { streamSSE } from 'hono/streaming';
import { Registry } from 'prom-client';
import { z } from 'zod';
import type { RegionStats } from '../observability/metrics.js';
import { peerLimitKey } from '../core/ip.js';
import type { RegionConfig, RegionHealth, RegistrySnapshot } from '../core/types.js';
import type { HealthEvent, HealthRegistry, UnreadablePart } from '../registry/health-registry.js';
import { domainSchema, MAX_PATCH_FIELD_LENGTH, residencySchema } from '../registry/records.js';
import { deployFunction, residencyRule, setOrgResidency, setRegionDrained, setRegionWeight } from '../registry/operator-actions.js';
import { describeAllowed, ResidencyConflict, ResidencyUnsettled } from '../registry/residency-placement.js';
import { boundedFunctionLists, describeRegion, STATUS_FUNCTION_LIMIT } from '../registry/region-view.js';
import type { WatcherStatus } from '../registry/registry-watcher.js';
import type { WholeRouter } from '../cluster/whole-router.js';
import { describeDecision } from '../routing/describe-decision.js';
import type { RouteDecider } from '../routing/route-decider.js';
import type { AdminTokens, TokenGrant } from './admin-auth.js';
import { DASHBOARD_CONTENT_SECURITY_POLICY, dashboardHtml } from './page.js';
import { latestValue } from './latest-value.js';
import { clipped, MAX_LOGGED_PATH } from '../observability/access-log.js';

export interface AdminApiOptions {
  /** The admin token (and, after a replacement, the one it replaced, for its overlap). */
  readonly tokens: AdminTokens;
  /** GET endpoints without a token (e.g. a private network's Prometheus). Writes always need it. */
  readonly publicReads: boolean;
  /** Host names public reads are answered for, besides IP addresses and localhost (lower case). */
  readonly allowedHosts?: readonly string[];
  readonly regions: readonly RegionConfig[];
  readonly snapshot: () => RegistrySnapshot;
  readonly watcherStatus: () => WatcherStatus;
  readonly registry: HealthRegistry;
  readonly decider: RouteDecider;
  /** Metrics, per-region numbers and the settling of writes for the whole router (every worker). */
  readonly router: WholeRouter;
  readonly ready: () => boolean;
  /** How often the stream checks for a new snapshot (default 250 ms). */
  readonly streamTickMs?: number;
  /** Live streams open at once (default 32); more are answered 429. */
  readonly maxStreams?: number;
  /** Live streams one client address may hold at once (default 4); more are answered 429. */
  readonly maxStreamsPerClient?: number;
  /** How long one stream message may wait for its reader before the stream is dropped (default 10 s). */
  readonly streamWriteTimeoutMs?: number;
  /** Certificates issued for custom domains (with --acme-directory); absent: ACME is off. */
  readonly certificates?: (page: ListingPage) => CertificateStatus;
  /** A write went through (for the log): what was done, and the request it came with. */
  readonly onAction?: (action: string, fields: Record<string, unknown>) => void;
  /** A handler failed (for the log: the client gets only the catalogue's message, and the same request id). */
  readonly onError?: (err: unknown, request: AdminRequestFacts) => void;
  /** A request was refused for its token (for the log, which should rate-limit it): someone is trying. */
  readonly onUnauthorized?: (request: AdminRequestFacts & { readonly reason: 'missing' | 'invalid' | 'unconfigured' }) => void;
}

/** What the log says of an admin request: never its headers or body. */
export interface AdminRequestFacts {
  readonly requestId: string;
  readonly method: string;
  readonly path: string;
  readonly client: string | null;
}

/**
 * One id per admin request, made when first asked for: the id in an error's body is the one in the
 * log line, so an operator can find what went wrong (it was made afresh for each answer and logged
 * nowhere).
 */
const requestIds = new WeakMap<Request, string>();
/** Requests that came with the admin token (a public read did not), and which token let them in. */
const withToken = new WeakMap<Request, TokenGrant>();
function requestIdOf(c: Context): string {
  let id = requestIds.get(c.req.raw);
  if (id === undefined) {
    id = randomUUID();
    requestIds.set(c.req.raw, id);
  }
  return id;
}

function factsOf(c: Context): AdminRequestFacts {
  const incoming = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming;
  return { requestId: requestIdOf(c), method: c.req.method, path: loggedPath(c), client: incoming?.socket?.remoteAddress ?? null };
}

/**
 * The path as the client sent it (still percent-encoded), cut as the access log cuts one. Hono's
 * `c.req.path` is decoded: 5,400 `%01` in a request without a token made a 32 KB log line (each
 * byte written `\u0001`), past what one write keeps whole in a pipe shared by workers.
 */
function loggedPath(c: Context): string {
  let raw: string;
  try {
    raw = new URL(c.req.url).pathname;
  } catch {
    raw = c.req.path;
  }
  return raw.length > MAX_LOGGED_PATH ? clipped(raw, MAX_LOGGED_PATH) : raw;
}

/** null: back to the regions file's weight (the override is dropped). */
const weightBody = z.strictObject({ weight: z.number({ error: "expected a number from 0 to 100, or null for the regions file's weight" }).min(0).max(100).nullable() });
const functionBody = z.strictObject({
  regions: z.array(z.string()).min(1).nullable().default(null),
  tier: z.enum(['standard', 'extended']).default('standard'),
  enabled: z.boolean().default(true),
  hedge: z.boolean().default(false),
});
/** An org's residency rule: the regions it may be served from, as the registry stores it (records.ts). */
const residencyBody = z.strictObject({ regions: residencySchema });
const NAME = /^[a-z0-9]+(-[a-z0-9]+)*$/;
const ORG = /^[a-z0-9]{1,63}$/;

/**
 * What is wrong with a function's path, by field (none: it is fine). A name routing can never read
 * from a host is refused: `<fn>-<org>` over 63 characters was stored and answered 200, and every
 * request for it then failed as label_too_long.
 */
function functionPathErrors(org: string, fn: string): Record<string, string> {
  const fields: Record<string, string> = {};
  if (!ORG.test(org)) fields.org = 'expected 1 to 63 lower-case letters and digits';
  if (!NAME.test(fn) || fn.length > 62) fields.fn = 'expected lower-case letters and digits, with single hyphens between them, at most 62';
  else if (fields.org === undefined && fn.length > longestFunctionName(org)) {
    fields.fn = `expected at most ${longestFunctionName(org)} characters with org ${org}: the host label <fn>-<org> is at most ${MAX_LABEL_LENGTH}`;
  }
  return fields;
}

/** The largest request body the admin API reads (its bodies are small JSON objects). */
const MAX_BODY_BYTES = 64 * 1024;

const NO_STATS: RegionStats = { requestsTotal: 0, errorsTotal: 0, failoversTotal: 0, ejectionsTotal: 0, requestsPerSecond: 0, routerActive: 0, routerQueued: 0 };

/**
 * A page of the certificate listing: `after` is the previous page's `next` (a name, at most 253
 * characters); `limit` plain decimal digits (no sign, exponent, hex or spaces), 1 to the maximum.
 */
const CERTIFICATE_PAGE = z.object({
  after: z.string().min(1).max(253).optional(),
  limit: z
    .string()
    .regex(/^[1-9]\d{0,4}$/, `expected a whole number from 1 to ${MAX_LISTING_LIMIT}`)
    .transform(Number)
    .pipe(z.number().max(MAX_LISTING_LIMIT, `expected a whole number from 1 to ${MAX_LISTING_LIMIT}`))
    .optional(),
});
const NO_CERTIFICATES: CertificateStatus = { certificates: [], failures: [], ordersPaused: null, total: { domains: 0, certificates: 0, failures: 0 }, next: null };

/** An admin API error: the status is the catalogue's (core/errors.ts). */
function fail(c: Context, code: ErrorCode, message: string, extra: Record<string, unknown> = {}) {
  return c.json({ error: { code, message, requestId: requestIdOf(c), ...extra } }, statusOf(code) as ContentfulStatusCode);
}

function fieldErrors(error: z.ZodError): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const issue of error.issues) fields[issue.path.join('.') || '(body)'] = issue.message;
  return fields;
}

async function readJson(c: Context): Promise<unknown> {
  try {
    return await c.req.json();
  } catch {
    return Symbol.for('invalid-json');
  }
}

export function createAdminApi(options: AdminApiOptions): Hono {
  const app = new Hono();
  const regionIds = new Set(options.regions.map((r) => r.id));
  const tick = options.streamTickMs ?? 250;
  const allowedHosts = new Set(options.allowedHosts ?? []);
  const publicHost = (hostname: string) => hostIsLocalOrAddress(hostname) || allowedHosts.has(hostname.toLowerCase().replace(/\.$/, ''));

  // Every answer is what its Content-Type says: a browser must never sniff JSON into HTML.
  app.use('*', async (c, next) => {
    await next();
    c.header('x-content-type-options', 'nosniff');
  });
  app.get('/healthz', (c) => c.text('ok\n'));
  // Ready while it routes; the detail says when it routes on remembered state, so an operator
  // looking at one router sees why (the load balancer only reads the status).
  app.get('/readyz', (c) => {
    if (!options.ready()) return c.text('not ready\n', 503);
    const status = options.watcherStatus();
    // Every function it does not know yet would be answered 503: traffic belongs to routers that know them.
    if (status.lastFullSyncAt === null) return c.text(`not ready: the function directory has not been read yet${unreadBecause(status.unreadableParts)}\n`, 503);
    const now = Date.now();
    if (status.dataLostAt !== null && status.heldCopyAt !== null) {
      return c.text(
        `ready (degraded): the registry lost its data ${Math.round((now - status.dataLostAt) / 1000)} s ago; routing on the cluster primary's copy of the functions and settings, held for ${Math.round((now - status.heldCopyAt) / 1000)} s and not written back\n`,
      );
    }
    if (status.dataLostAt !== null) {
      return c.text(`ready (degraded): the registry lost its data ${Math.round((now - status.dataLostAt) / 1000)} s ago; routing on the last-known functions and settings while they are written back\n`);
    }
    if (status.stale) return c.text(`ready (degraded): the registry has been unreachable for ${Math.round(status.staleForMs / 1000)} s; routing on the last snapshot\n`);
    if (status.unreadableParts.length > 0) return c.text(`ready (degraded): ${keptUnreadable(status.unreadableParts)}\n`);
    return c.text('ready\n');
  });
  app.get('/', async (c) => {
    c.header('content-security-policy', `${DASHBOARD_CONTENT_SECURITY_POLICY}; frame-ancestors 'none'`);
    c.header('x-content-type-options', 'nosniff');
    c.header('referrer-policy', 'no-referrer');
    c.header('cache-control', 'no-store');
    return c.html(await dashboardHtml());
  });

  // Authentication for everything else: reads may be public, writes never are. A public read is
  // answered only to a Host that is an address or localhost: a web page the operator's browser
  // opened could otherwise point its own DNS name at this address (DNS rebinding) and read the
  // API as the browser's origin. A request with the token is not at risk (pages cannot add it).
  app.use('*', async (c, next) => {
    const authorization = c.req.header('authorization');
    const { verdict, grant } = options.tokens.check(authorization);
    if (verdict === 'ok') {
      withToken.set(c.req.raw, grant!);
      return next();
    }
    // A wrong token is refused even where reads are public: passing it as "no token" would show a
    // dashboard opened with a typo (or a token rotated away) as live and never ask for a new one.
    // Only a Bearer one: another scheme's credentials (a proxy's Basic auth passed on) are no token.
    const wrongToken = verdict === 'invalid' && /^bearer\b/i.test(authorization ?? '');
    const read = c.req.method === 'GET' || c.req.method === 'HEAD';
    if (!wrongToken && read && options.publicReads && publicHost(new URL(c.req.url).hostname)) return next();
    const message =
      verdict === 'unconfigured'
        ? 'the admin API is disabled: no admin token is configured (EDGE_ADMIN_TOKEN)'
        : verdict === 'missing'
          ? 'an admin token is required: Authorization: Bearer <token>'
          : 'the admin token is not valid';
    options.onUnauthorized?.({ ...factsOf(c), reason: verdict });
    // RFC 6750 §3: a 401 names the scheme it wants.
    c.header('www-authenticate', verdict === 'invalid' ? 'Bearer error="invalid_token"' : 'Bearer');
    return fail(c, 'unauthorized', message);
  });
  // Every body here is a few hundred bytes; without a limit one request could make the router
  // buffer (and parse) gigabytes. A Content-Length over it is refused before the body is read.
  app.use('*', bodyLimit({ maxSize: MAX_BODY_BYTES, onError: (c) => fail(c, 'payload_too_large', `the body is over ${MAX_BODY_BYTES / 1024} KiB`) }));

  // A write answers only once every worker routes by it: a drain that one worker has not seen
  // yet would be a drain that sometimes is not one.
  app.use('*', async (c, next) => {
    await next();
    if (c.req.method === 'GET' || c.req.method === 'HEAD' || c.res.status >= 300) return;
    // The write is committed either way; the header says whether every worker routes by it yet.
    const everywhere = await options.router.settle().catch(() => false);
    c.res.headers.set('x-edge-applied', everywhere ? 'everywhere' : 'pending');
  });

  const regionsView = async () => {
    const allStats = await options.router.regionStats();
    const snapshot = options.snapshot();
    const now = Date.now();
    const status = options.watcherStatus();
    return {
      generatedAt: now,
      registry: {
        kind: options.registry.kind,
        stale: status.stale,
        staleForMs: status.staleForMs,
        contactAt: status.contactAt,
        lastFullSyncAt: status.lastFullSyncAt,
        dataLostForMs: status.dataLostAt === null ? null : now - status.dataLostAt,
      },
      regions: options.regions.map((r) => {
        const h = snapshot.regions.get(r.id)!;
        const view = describeRegion(r, h, now);
        const stats = allStats.get(r.id) ?? NO_STATS;
        // What routing spills on: the region's report lags and misses requests stuck at this router.
        return { ...view, ...stats, inFlight: Math.max(view.inFlight, stats.routerActive + stats.routerQueued) };
      }),
    };
  };

  app.get('/api/status', (c) => {
    const regions = [...options.snapshot().regions].map(([id, health]) => [id, healthJson(health)] as const);
    return c.json({ registry: { kind: options.registry.kind, ...options.watcherStatus() }, functionListLimit: STATUS_FUNCTION_LIMIT, regions: Object.fromEntries(regions) });
  });
  app.get('/api/regions', async (c) => c.json(await regionsView()));
  app.get('/api/certificates', (c) => {
    const query = CERTIFICATE_PAGE.safeParse({ after: c.req.query('after'), limit: c.req.query('limit') });
    if (!query.success) return fail(c, 'invalid_query', `expected ?limit=<1 to ${MAX_LISTING_LIMIT}>&after=<the previous page's next>`, { fields: fieldErrors(query.error) });
    const page = { limit: query.data.limit ?? DEFAULT_LISTING_LIMIT, ...(query.data.after === undefined ? {} : { after: query.data.after }) };
    return c.json({ acme: options.certificates !== undefined, ...(options.certificates?.(page) ?? NO_CERTIFICATES) });
  });

  app.get('/api/events', async (c) => {
    const limit = Math.min(1_000, Math.max(1, Number(c.req.query('limit') ?? 50) || 50));
    return c.json({ events: await options.registry.readEvents(limit) });
  });

  app.get('/api/functions/:org/:fn', (c) => {
    const { org, fn } = c.req.param();
    const record = options.snapshot().functions.get(org)?.get(fn);
    if (record === undefined) return fail(c, 'function_not_found', `no function ${fn} in org ${org}`);
    return c.json({ org, fn, regions: record.regions === null ? null : [...record.regions].sort(), tier: record.tier, enabled: record.enabled, hedge: record.hedge === true });
  });

  app.get('/api/route', (c) => {
    const host = c.req.query('host');
    const ip = c.req.query('ip');
    if (host === undefined || ip === undefined) return fail(c, 'invalid_query', 'expected ?host=<host>&ip=<address>', { fields: { ...(host ? {} : { host: 'required' }), ...(ip ? {} : { ip: 'required' }) } });
    const described = describeDecision(options.decider, options.snapshot(), host, ip, Date.now());
    return c.json(described.body, described.ok ? 200 : 400);
  });

  // The event a committed write leaves in the registry's log. The write stands either way, so its
  // answer is the write's: an event that cannot be added is logged (under the request's id). It was
  // the answer: a deploy that was made answered 503 with no admin_action line, and a DELETE retried
  // after it answered 404.
  const eventFailed = (c: Context) => (err: unknown) => options.onError?.(err, factsOf(c));
  const noteEvent = (c: Context, event: HealthEvent) => options.registry.appendEvent(event).then(() => undefined, eventFailed(c));

  const regionParam = (c: Context): string | undefined => {
    const id = c.req.param('id');
    return id !== undefined && regionIds.has(id) ? id : undefined;
  };

  for (const action of ['drain', 'undrain'] as const) {
    app.post(`/api/regions/:id/${action}`, async (c) => {
      const region = regionParam(c);
      if (region === undefined) return fail(c, 'region_not_found', `no region ${c.req.param('id')}`);
      const drained = action === 'drain';
      await setRegionDrained(options.registry, region, drained, 'admin API', eventFailed(c));
      options.onAction?.(action, { region, ...factsOf(c) });
      return c.json({ region, drained });
    });
  }

  app.put('/api/regions/:id/weight', async (c) => {
    const region = regionParam(c);
    if (region === undefined) return fail(c, 'region_not_found', `no region ${c.req.param('id')}`);
    const parsed = weightBody.safeParse(await readJson(c));
    if (!parsed.success) return fail(c, 'invalid_body', 'expected { "weight": number from 0 to 100, or null for the regions file\'s weight }', { fields: fieldErrors(parsed.error) });
    await setRegionWeight(options.registry, region, parsed.data.weight, 'admin API', eventFailed(c));
    options.onAction?.('weight', { region, weight: parsed.data.weight, ...factsOf(c) });
    return c.json({ region, weight: parsed.data.weight });
  });

  app.put('/api/functions/:org/:fn', async (c) => {
    const { org, fn } = c.req.param();
    const pathErrors = functionPathErrors(org, fn);
    if (Object.keys(pathErrors).length > 0) return fail(c, 'invalid_path', 'expected /api/functions/<org>/<fn> naming a function routing can reach', { fields: pathErrors });
    const parsed = functionBody.safeParse(await readJson(c));
    if (!parsed.success) return fail(c, 'invalid_body', 'expected { regions: [..] | null, tier: "standard" | "extended", enabled: boolean, hedge: boolean }', { fields: fieldErrors(parsed.error) });
    const unknown = parsed.data.regions?.find((r) => !regionIds.has(r));
    if (unknown !== undefined) return fail(c, 'invalid_body', `unknown region ${unknown}`, { fields: { regions: `unknown region ${unknown}` } });
    const record = { org, fn, regions: parsed.data.regions === null ? null : new Set(parsed.data.regions), tier: parsed.data.tier, enabled: parsed.data.enabled, ...(parsed.data.hedge ? { hedge: true } : {}) };
    try {
      await deployFunction(options.registry, record, 'admin API', eventFailed(c));
    } catch (err) {
      // The org's rule changed under every attempt (operator-actions.ts DEPLOY_ATTEMPTS): nothing
      // written, a conflict to try again, not a fault to log.
      if (err instanceof ResidencyUnsettled) return fail(c, 'residency_conflict', err.message);
      // Regions outside the org's residency: refused as the CLI refuses them, nothing written.
      if (!(err instanceof ResidencyConflict)) throw err;
      return fail(c, 'residency_conflict', err.message, {
        fields: { regions: `outside org ${org}'s data residency: ${err.outside.length === 0 ? 'every region' : err.outside.join(', ')} (allowed: ${describeAllowed(err.allowed)})` },
        outsideResidency: err.outside,
        allowedRegions: err.allowed,
      });
    }
    options.onAction?.('deploy', { org, fn, ...parsed.data, ...factsOf(c) });
    return c.json({ org, fn, ...parsed.data });
  });

  app.delete('/api/functions/:org/:fn', async (c) => {
    const { org, fn } = c.req.param();
    if (!(await options.registry.deleteFunction(org, fn))) return fail(c, 'function_not_found', `no function ${fn} in org ${org}`);
    await noteEvent(c, undeployedEvent(org, fn, 'admin API', Date.now()));
    options.onAction?.('undeploy', { org, fn, ...factsOf(c) });
    return c.json({ org, fn, deleted: true });
  });

  // The rule this router routes by (its snapshot, as GET /api/functions reads); null: none, every region.
  app.get('/api/residency/:org', (c) => {
    const org = c.req.param('org');
    const allowed = options.snapshot().residency.get(org);
    return c.json({ org, regions: allowed === undefined ? null : [...allowed].sort() });
  });

  // Never refused for the functions it strands or leaves partly outside it, as `registry residency
  // set` is not (residency is a legal constraint and applies at once): they are named in the answer
  // for the operator to redeploy. A deploy racing it is either refused or named here
  // (operator-actions.ts). Logged as an event, as the CLI's is; the rule stands if that fails.
  app.put('/api/residency/:org', async (c) => {
    const org = c.req.param('org');
    // An org id as routing reads it from a host name: a rule stored under "Acme" is never looked up.
    if (!ORG.test(org)) return fail(c, 'invalid_path', 'expected /api/residency/<org> naming an org routing can reach', { fields: { org: 'expected 1 to 63 lower-case letters and digits' } });
    const parsed = residencyBody.safeParse(await readJson(c));
    if (!parsed.success) return fail(c, 'invalid_body', 'expected { "regions": ["<region id>", ...] } (1 to 64 regions)', { fields: fieldErrors(parsed.error) });
    const unknown = parsed.data.regions.find((r) => !regionIds.has(r));
    if (unknown !== undefined) return fail(c, 'invalid_body', `unknown region ${unknown}`, { fields: { regions: `unknown region ${unknown}` } });
    const regions = residencyRule(parsed.data.regions);
    const { stranded, partlyOutside, unchecked } = await setOrgResidency(options.registry, org, regions, 'admin API', eventFailed(c));
    // The rule stands either way: a failed read of the functions is the log's, and the answer says it.
    if (stranded === null) options.onError?.(unchecked, factsOf(c));
    options.onAction?.('residency', { org, regions, ...factsOf(c) });
    return c.json({
      org,
      regions,
      stranded,
      partlyOutside,
      ...(stranded === null ? { warning: `the rule is set, but the org's functions could not be read to check for any it strands or leaves partly outside: ${describeError(unchecked).message}` } : {}),
    });
  });

  // Any org text, as `registry residency clear` takes: a rule stored under a name the check above
  // refuses can still be removed. Clearing no rule is no error (every region was allowed already).
  // Only as long as a stored name can be (a backup's field bound): a longer one, decoded, went
  // whole into the log line and the event every dashboard shows.
  app.delete('/api/residency/:org', async (c) => {
    const org = c.req.param('org');
    if (org.length > MAX_PATCH_FIELD_LENGTH) {
      return fail(c, 'invalid_path', `expected /api/residency/<org>: no rule is stored under an org of more than ${MAX_PATCH_FIELD_LENGTH} characters`, { fields: { org: `expected at most ${MAX_PATCH_FIELD_LENGTH} characters` } });
    }
    await setOrgResidency(options.registry, org, null, 'admin API', eventFailed(c));
    options.onAction?.('residency_cleared', { org, ...factsOf(c) });
    return c.json({ org, regions: null });
  });

  app.put('/api/domains/:host', async (c) => {
    const host = dnsNameFrom(c.req.param('host')!);
    if (!isDnsName(host)) return fail(c, 'invalid_path', 'expected a DNS name', { fields: { host: 'expected a DNS name such as shop.example.com (an IDN as punycode), without port' } });
    const parsed = domainSchema.safeParse(await readJson(c));
    if (!parsed.success) return fail(c, 'invalid_body', 'expected { "org": "...", "fn": "..." }', { fields: fieldErrors(parsed.error) });
    await options.registry.putDomain(host, parsed.data);
    await noteEvent(c, domainEvent(host, parsed.data, 'admin API', Date.now()));
    options.onAction?.('domain', { host, ...parsed.data, ...factsOf(c) });
    return c.json({ host, ...parsed.data });
  });

  app.delete('/api/domains/:host', async (c) => {
    const host = dnsNameFrom(c.req.param('host')!);
    if (!(await options.registry.deleteDomain(host))) return fail(c, 'domain_not_found', `${host} is not mapped`);
    await noteEvent(c, domainRemovedEvent(host, 'admin API', Date.now()));
    options.onAction?.('domain_removed', { host, ...factsOf(c) });
    return c.json({ host, deleted: true });
  });

  // Every stream reads the same two things, computed (and written as JSON) once for all of them,
  // however many are open: the regions view once per tick (it asks every worker), the event log at
  // most once a second. The event log is a registry round trip, up to the 2 s command timeout when
  // Redis hangs: streams send the last one read and never wait for it, or region changes, which
  // come from this router's own snapshot, would wait behind a registry that is not answering.
  const sharedRegionsJson = sharedFor(tick, async () => JSON.stringify(await regionsView()));
  // A read that fails is sent as such, in /api/events' words: kept as the last value, the events
  // read before it went on being shown as the log's, with nothing saying it could not be read.
  const latestEventsJson = latestValue(1_000, () =>
    options.registry.readEvents(50).then(
      (events) => JSON.stringify({ events }),
      (err: unknown) => {
        const { code, message } = describeError(err);
        return JSON.stringify({ error: { code, message } });
      },
    ),
  );
  const maxStreams = options.maxStreams ?? 32;
  const maxPerClient = options.maxStreamsPerClient ?? 4;
  // Streams without the token (public reads) never take the last half of the places: anyone who
  // can reach the port could otherwise hold them all and lock the operator's dashboard out.
  const maxTokenless = Math.floor(maxStreams / 2);
  const writeTimeoutMs = options.streamWriteTimeoutMs ?? 10_000;
  let openStreams = 0;
  let openTokenless = 0;
  const perClient = new Map<string, number>();

  app.get('/api/stream', (c) => {
    // Hono answers HEAD by running this handler and dropping the body: a stream would go on
    // writing to nobody, holding its place until the write timeout. The head is all HEAD wants.
    if (c.req.method === 'HEAD') return c.body(null, 200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    // Keyed as the public listeners key clients: one IPv6 client picks any address of its /64.
    const client = peerLimitKey(factsOf(c).client ?? '(unknown)');
    const grant = withToken.get(c.req.raw);
    const tokenless = grant === undefined;
    if (openStreams >= maxStreams) return fail(c, 'too_many_requests', `${maxStreams} live streams are open already; close a dashboard and retry`);
    // The other half is kept for the token: said so, or a reader without it looks for 32 open dashboards.
    if (tokenless && openTokenless >= maxTokenless) {
      return fail(c, 'too_many_requests', `${maxTokenless} live streams without the admin token are open already (the other ${maxStreams - maxTokenless} are kept for readers with it); close one, or give the token`);
    }
    const ofClient = perClient.get(client) ?? 0;
    if (ofClient >= maxPerClient) return fail(c, 'too_many_requests', `this client has ${maxPerClient} live streams open already; close one and retry`);
    openStreams++;
    if (tokenless) openTokenless++;
    perClient.set(client, ofClient + 1);
    const release = () => {
      openStreams--;
      if (tokenless) openTokenless--;
      const left = (perClient.get(client) ?? 1) - 1;
      if (left <= 0) perClient.delete(client);
      else perClient.set(client, left);
    };
    return streamSSE(c, async (stream) => {
      let closed = false;
      stream.onAbort(() => {
        closed = true;
      });
      let lastVersion = -1;
      let lastSentAt = -Infinity;
      let lastEvents: string | undefined;
      // A reader that stops reading (a stalled or hostile client) leaves a write waiting for ever,
      // holding one of the few stream places and a message in memory: past the deadline, drop it.
      // Aborting ends this loop; closing the socket (the node adapter's `env`) frees what it holds.
      const send = async (message: { event: string; data: string }) => {
        if (closed) return;
        let timer: NodeJS.Timeout | undefined;
        const stalled = new Promise<true>((resolve) => (timer = setTimeout(resolve, writeTimeoutMs, true)));
        const dropped = await Promise.race([stream.writeSSE(message).then(() => false), stalled]);
        clearTimeout(timer);
        if (!dropped) return;
        closed = true;
        stream.abort();
        (c.env as { outgoing?: { destroy(): void } } | undefined)?.outgoing?.destroy();
      };
      try {
        while (!closed) {
          // A stream must not outlive its token: once a replaced token's overlap ends, so does the
          // stream it opened (the dashboard reconnects, is refused, and asks for the new token).
          if (grant !== undefined && !options.tokens.stillValid(grant)) break;
          // Monotonic: ages on the wall clock froze the stream's data for as long as a step back.
          const now = performance.now();
          const version = options.snapshot().version;
          // On every snapshot change, and at least once a second (ages and rates move on their own).
          if (version !== lastVersion || now - lastSentAt >= 1_000) {
            lastVersion = version;
            lastSentAt = now;
            await send({ event: 'regions', data: await sharedRegionsJson() });
          }
          const events = latestEventsJson();
          if (events !== undefined && events !== lastEvents) {
            lastEvents = events;
            await send({ event: 'events', data: events });
          }
          if (!closed) await stream.sleep(tick);
        }
      } catch (err) {
        // A failed read (a worker that did not answer, say) ends this stream, which the dashboard
        // reopens: logged like any handler's failure, not printed raw by hono's streamSSE.
        options.onError?.(err, factsOf(c));
      } finally {
        release();
      }
    });
  });

  app.get('/metrics', async (c) => c.text(await options.router.metrics(), 200, { 'content-type': Registry.PROMETHEUS_CONTENT_TYPE }));

  app.notFound((c) => fail(c, 'not_found', 'no such admin endpoint'));
  // Anything a handler throws becomes the catalogue's answer: a registry that is down is a 503
  // with its message, a bug a 500 that says nothing more (the log has the rest).
  app.onError((err, c) => {
    const described = describeError(err);
    options.onError?.(err, factsOf(c));
    return fail(c, described.code, described.message);
  });
  return app;
}

/**
 * `compute`, shared by every caller within `maxAgeMs` of the last call that ran it: callers in the
 * same window get the same (possibly still pending) promise.
 */
function sharedFor<T>(maxAgeMs: number, compute: () => Promise<T>): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | undefined;
  return () => {
    const now = performance.now();
    if (last === undefined || now - last.at >= maxAgeMs) last = { at: now, value: compute() };
    return last.value;
  };
}

/** A host name an attacker's DNS name cannot be: an IP literal (IPv6 in brackets, as URLs write it) or localhost. */
export function hostIsLocalOrAddress(hostname: string): boolean {
  const name = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  const lower = name.toLowerCase();
  return isIP(name) !== 0 || lower === 'localhost' || lower.endsWith('.localhost');
}

/**
 * A region's health as JSON, its function lists bounded (region-view.ts): the busiest names, how
 * many there are and whether some were left out, so the answer's size holds whatever regions report.
 */
function healthJson(health: RegionHealth) {
  return { ...health, ...boundedFunctionLists(health) };
}

/** Where an operator sees the parts named (GET /api/status). */
const UNREADABLE_WHERE = '(registry.unreadableParts in /api/status)';

/** "residency", "residency and overrides", "functions, residency and overrides". */
function listed(parts: readonly string[]): string {
  return parts.length < 2 ? parts.join('') : `${parts.slice(0, -1).join(', ')} and ${parts.at(-1)!}`;
}

/**
 * Why a router has not read its directory yet: Redis has not answered, or it has but a key of it
 * does not read (the watcher holds the directory back: registry-watcher.ts holdBack). Told apart,
 * or the operator goes after the network when a key set by hand is in the way.
 */
function unreadBecause(parts: readonly UnreadablePart[]): string {
  if (parts.length === 0) return ' (no answer from the registry since start)';
  const one = parts.length === 1;
  return `: the registry answers, but its ${listed(parts)} key${one ? '' : 's'} cannot be read ${UNREADABLE_WHERE}; every function answers 503 registry_unreachable until ${one ? 'it reads' : 'they read'}`;
}

/** A router that routes on, though some keys do not read: which, and what it does meanwhile (registry-watcher.ts). */
function keptUnreadable(parts: readonly UnreadablePart[]): string {
  const held = parts.filter((part) => part !== 'generation');
  const meanwhile: string[] = [];
  if (held.length > 0) meanwhile.push(`routing on what was last read of ${held.length === 1 ? 'it' : 'them'}`);
  if (parts.includes('generation')) meanwhile.push('a registry that loses its data is not noticed (nor written back) until it reads');
  return `the registry's ${listed(parts)} key${parts.length === 1 ? '' : 's'} cannot be read ${UNREADABLE_WHERE}; ${meanwhile.join('; ')}`;
}
