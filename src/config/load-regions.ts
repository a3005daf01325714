/**
 * Loads regions.json: parse, validate against the schema, check cross-references, freeze.
 * Every failure is a ConfigError that reads `<file>: <json path>: <what was expected>`.
 */
import type { z } from 'zod';
import { ConfigError } from '../core/errors.js';
import { NotARegularFile, readRegularText } from '../core/regular-file.js';
import { countryCodeProblem } from '../core/country-codes.js';
import { isDnsName } from '../core/dns-name.js';
import { parseJsonFile, protoKeyValue } from '../core/json-text.js';
import type { FunctionRef, RegionConfig, RegionId } from '../core/types.js';
import { regionsFileSchema } from './regions-schema.js';

export interface RegionsConfig {
  readonly file: string;
  readonly regions: readonly RegionConfig[];
  readonly defaultRegion: RegionId;
  readonly countryRegions: ReadonlyMap<string, RegionId>;
  readonly customDomains: ReadonlyMap<string, FunctionRef>;
  /** Settings the file may carry; flags and env override them. */
  readonly zone: string | undefined;
  readonly geoip: string | undefined;
  readonly trustedProxies: readonly string[] | undefined;
  /**
   * The text this was read from (loadRegionsFile; absent when parsed from JSON already): what a
   * cluster's workers are given, so that they run the file the primary checked, not one replaced
   * since.
   */
  readonly text?: string;
}

/** Far beyond any real regions file (a few KiB): a larger one is not a regions file. */
export const MAX_REGIONS_FILE_BYTES = 16 * 1024 * 1024;

/**
 * `readFrom`: where the file's text is read, when not from `file` itself (a copy taken at the
 * router's start: every worker of one router reads the same, whatever happens to `file` later).
 * The file is still named by `file`, and paths in it are relative to its directory.
 */
export async function loadRegionsFile(file: string, readFrom = file): Promise<RegionsConfig> {
  let text: string;
  try {
    // A FIFO would hang the start, and /dev/zero or a multi-GiB file take memory until a string
    // limit failed without saying what was expected: only a regular file of sensible size is read.
    text = await readRegularText(readFrom, MAX_REGIONS_FILE_BYTES);
  } catch (err) {
    if (err instanceof NotARegularFile) throw new ConfigError(`${file}: expected a regions file (JSON), found ${err.found}`);
    const code = (err as NodeJS.ErrnoException).code;
    // A cluster worker reads the primary's copy: when that is what is missing, say so, not that the original is.
    if (readFrom !== file && code === 'ENOENT') throw new ConfigError(`${file}: the copy this router's workers read (${readFrom}) is gone: removed by a temp-file cleaner?`);
    throw new ConfigError(`${file}: ${code === 'ENOENT' ? 'file not found' : `cannot read the file (${code ?? String(err)})`}`);
  }
  return Object.freeze({ ...parseRegionsConfig(file, parseJsonFile(file, text)), text });
}

export function parseRegionsConfig(file: string, json: unknown): RegionsConfig {
  const parsed = regionsFileSchema.safeParse(json);
  if (!parsed.success) throw new ConfigError(firstProblems(file, formatIssues(file, parsed.error.issues)));
  const data = parsed.data;

  const problems: string[] = [];
  const ids = new Set<string>();
  data.regions.forEach((r, i) => {
    if (ids.has(r.id)) problems.push(`${file}: regions[${i}].id: duplicate region id "${r.id}"`);
    ids.add(r.id);
    // An orchestrator listed twice in a region is a copy-paste slip: the region's slots count
    // pool connections × entries, but undici's BalancedPool keeps one pool per origin, so twice as
    // many requests were sent as there are connections, the surplus waiting inside undici rather
    // than in the region's bounded queue. Compared by origin, as undici does.
    const origins = new Map<string, number>();
    r.orchestrators.forEach((url, j) => {
      const origin = new URL(url).origin;
      const first = origins.get(origin);
      if (first === undefined) origins.set(origin, j);
      else problems.push(`${file}: regions[${i}].orchestrators[${j}]: expected an orchestrator not listed before, got ${origin} again (orchestrators[${first}])`);
    });
  });
  // zod's records skip a "__proto__" key (JSON.parse makes it an own one), so it was neither
  // checked nor kept: an invalid file passed as valid. Read from the file's own keys.
  if (protoKeyValue(json, 'countryRegions') !== undefined) problems.push(`${file}: countryRegions.__proto__: ${countryCodeProblem('__proto__')!}`);
  if (protoKeyValue(json, 'customDomains') !== undefined) problems.push(`${file}: customDomains["__proto__"]: expected a lower-case DNS name without port or trailing dot`);
  if (!ids.has(data.defaultRegion)) {
    problems.push(`${file}: defaultRegion: expected one of the region ids (${[...ids].join(', ')}), got "${data.defaultRegion}"`);
  }
  for (const [country, region] of Object.entries(data.countryRegions)) {
    const codeProblem = countryCodeProblem(country);
    if (codeProblem !== undefined) {
      problems.push(`${file}: countryRegions.${country}: ${codeProblem}`);
      continue;
    }
    if (!ids.has(region)) problems.push(`${file}: countryRegions.${country}: expected one of the region ids, got "${region}"`);
  }
  // The last label may be a punycode TLD (xn--p1ai is .рф): IDNs travel as ASCII, hyphens and digits included.
  for (const host of Object.keys(data.customDomains)) {
    if (!isDnsName(host)) {
      problems.push(`${file}: customDomains["${host}"]: expected a lower-case DNS name without port or trailing dot`);
    }
  }
  if (problems.length > 0) throw new ConfigError(firstProblems(file, problems));

  const regions: RegionConfig[] = data.regions.map((r) =>
    Object.freeze({
      id: r.id,
      name: r.name,
      lat: r.lat,
      lon: r.lon,
      // The origin the schema checked, not the text: " http://…", "HTTP://…" or "…/%2e%2e/" pass
      // new URL() but reached the probes and pools as written.
      orchestrators: Object.freeze(r.orchestrators.map((u) => new URL(u).origin)),
      capacity: Object.freeze({ ...r.capacity }),
      weight: r.weight,
    }),
  );
  return Object.freeze({
    file,
    regions: Object.freeze(regions),
    defaultRegion: data.defaultRegion,
    countryRegions: new Map(Object.entries(data.countryRegions)),
    customDomains: new Map(Object.entries(data.customDomains).map(([h, ref]) => [h, Object.freeze({ ...ref })])),
    zone: data.zone,
    geoip: data.geoip,
    trustedProxies: data.trustedProxies,
  });
}

/** Enough of the problems to start fixing: a generated file may have thousands, one per line. */
const SHOWN_PROBLEMS = 10;

function firstProblems(file: string, problems: readonly string[]): string {
  const more = problems.length - SHOWN_PROBLEMS;
  return [...problems.slice(0, SHOWN_PROBLEMS), ...(more > 0 ? [`${file}: … and ${more} more problems`] : [])].join('\n');
}

function formatIssues(file: string, issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => {
    const where = formatPath(issue.path);
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') message = `unknown field(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    return `${file}: ${where === '' ? '(top level)' : where}: ${message}`;
  });
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'string' && /^[A-Za-z_$][\w$]*$/.test(key)) out += out === '' ? key : `.${key}`;
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out;
}
