/**
 * The schema of regions.json. Types are inferred from it, so the file format and the code
 * cannot drift. Unknown fields are errors (a typo must not silently fall back to a default).
 */
import { z } from 'zod';
import { MAX_REGION_COUNT } from '../core/types.js';
import { userInfoSpan } from '../core/redact-url.js';

const REGION_ID = /^[a-z][a-z0-9-]{1,15}$/;

const coordinate = (limit: number) =>
  z
    .number({ error: `expected a number in [-${limit}, ${limit}]` })
    .min(-limit, { error: `expected a number in [-${limit}, ${limit}]` })
    .max(limit, { error: `expected a number in [-${limit}, ${limit}]` });

const COUNT_EXPECTED = `expected a whole number from 1 to ${MAX_REGION_COUNT}`;
const count = z
  .number({ error: COUNT_EXPECTED })
  .int({ error: COUNT_EXPECTED })
  .min(1, { error: COUNT_EXPECTED })
  .max(MAX_REGION_COUNT, { error: COUNT_EXPECTED });

const regionId = z.string({ error: 'expected a region id' }).regex(REGION_ID, {
  error: 'expected a region id: a lower-case letter, then 1-15 of [a-z0-9-]',
});

/**
 * What is wrong with an orchestrator URL, if anything. The router keeps one connection pool per
 * orchestrator origin and appends the request's own path, so a path, query or fragment has no
 * place to go; credentials would be sent to every request's region and shown in messages.
 */
function orchestratorUrlProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'expected an http(s) origin such as http://10.0.0.5:7001';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'expected an http(s) origin such as http://10.0.0.5:7001';
  if (url.username !== '' || url.password !== '') return 'expected an http(s) origin without credentials';
  // Trailing slashes are harmless: the loader drops them.
  if (!/^\/*$/.test(url.pathname)) return 'expected an http(s) origin without a path';
  // A bare "?" or "#" leaves search and hash empty, but the probe URL is built from the text: the
  // probe of http://h:7001/? went to /?/healthz, which is / with a query.
  if (url.search !== '' || url.hash !== '' || /[?#]/.test(text)) return 'expected an http(s) origin without a query or fragment';
  if (url.port === '0') return 'expected an http(s) origin with a port from 1 to 65535';
  return undefined;
}

/**
 * A refused orchestrator URL as a message may show it: without its user info or its query and
 * fragment (a token may be the whole user info, `https://tok_live_…@host`, or any query
 * parameter, `?token=…`, which redactUrl's password rules do not mask), saying what is left out.
 * One that parses is shown as scheme, host and path; one that does not (a typo in its port), as
 * typed but for those parts.
 */
function shownOrchestratorUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    const info = userInfoSpan(text);
    const withoutUser = info === undefined ? text : text.slice(0, info.start) + text.slice(info.at + 1);
    const query = withoutUser.search(/[?#]/);
    const shown = query === -1 ? withoutUser : withoutUser.slice(0, query);
    return withLeftOut(shown, info !== undefined, query !== -1);
  }
  if (url.username === '' && url.password === '' && url.search === '' && url.hash === '') return JSON.stringify(text);
  return withLeftOut(`${url.protocol}//${url.host}${url.pathname}`, url.username !== '' || url.password !== '', url.search !== '' || url.hash !== '');
}

function withLeftOut(shown: string, credentials: boolean, query: boolean): string {
  const left = [credentials ? 'credentials' : '', query ? 'query or fragment' : ''].filter(Boolean);
  return left.length === 0 ? JSON.stringify(shown) : `${JSON.stringify(shown)} (its ${left.join(' and ')} not shown)`;
}

const orchestratorUrl = z.string({ error: 'expected an http(s) origin such as http://10.0.0.5:7001' }).superRefine((text, ctx) => {
  const problem = orchestratorUrlProblem(text);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `${problem}, got ${shownOrchestratorUrl(text)}` });
});

const functionRef = z.strictObject({
  // The registry's own bounds (domainSchema): a longer name loaded here routed to a function no registry can hold.
  fn: z.string({ error: 'expected a function name' }).regex(/^[a-z0-9]+(-[a-z0-9]+)*$/, { error: 'expected a function name of [a-z0-9-]' }).max(62, { error: 'expected a function name of at most 62 characters' }),
  org: z.string({ error: 'expected an org id' }).regex(/^[a-z0-9]+$/, { error: 'expected an org id of [a-z0-9]' }).max(63, { error: 'expected an org id of at most 63 characters' }),
});

export const regionSchema = z
  .strictObject({
    id: regionId,
    name: z.string({ error: 'expected a display name' }).min(1, { error: 'expected a non-empty display name' }),
    lat: coordinate(90),
    lon: coordinate(180),
    orchestrators: z.array(orchestratorUrl, { error: 'expected a list of orchestrator URLs' }).min(1, {
      error: 'expected at least one orchestrator URL',
    }),
    capacity: z.strictObject({ soft: count, hard: count }, { error: 'expected { soft, hard } concurrency limits' }),
    weight: z
      .number({ error: 'expected a number in [0, 100]' })
      .min(0, { error: 'expected a number in [0, 100]' })
      .max(100, { error: 'expected a number in [0, 100]' })
      .default(1),
  })
  .refine((r) => r.capacity.soft <= r.capacity.hard, {
    error: 'expected capacity.soft ≤ capacity.hard',
    path: ['capacity', 'soft'],
  });

export const regionsFileSchema = z.strictObject({
  $schema: z.string().optional(),
  zone: z.string({ error: 'expected a DNS zone such as telnyxcompute.com' }).optional(),
  geoip: z.string({ error: 'expected a path to a .mmdb file, or "none"' }).min(1, { error: 'expected a path to a .mmdb file, or "none"' }).optional(),
  trustedProxies: z.array(z.string(), { error: 'expected a list of CIDRs' }).optional(),
  defaultRegion: regionId,
  countryRegions: z
    .record(z.string(), regionId, {
      error: 'expected a map of country code → region id',
    })
    .default({}),
  customDomains: z.record(z.string(), functionRef, { error: 'expected a map of host → { fn, org }' }).default({}),
  regions: z.array(regionSchema, { error: 'expected a list of regions' }).min(1, { error: 'expected at least one region' }),
});

export type RegionsFile = z.infer<typeof regionsFileSchema>;
