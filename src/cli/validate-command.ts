/**
 * `edge-router validate [router flags]`: checks what `edge-router router` would start with, without
 * starting it — like `nginx -t` or `caddy validate`. The flags and environment are the router's,
 * so the same command line can be tried first. Checks, in order: flags and the regions file, the
 * GeoIP database, the certificates (readable, key matching, not expired, which names, expiring
 * within 14 days), and with --redis the registry (reachable, schema version, records it would
 * reject). Exit 0 with one `ok` line per check; exit 2 with one line per problem. A setting given
 * that would do nothing is a `warning` line on stderr, and does not change the exit status.
 */
import { resolveSharedSettings } from '../config/shared-settings.js';
import { loadGeoDatabase } from '../geoip/load-database.js';
import { namedBySource } from '../geoip/open-locator.js';
import { loadCertificatePair, readCertificateDirectory, type CertificatePair } from '../ingress/certificates/certificate-pair.js';
import { hardenedContext } from '../ingress/certificates/certificate-store.js';
import type { ParsedFlags } from './flags.js';
import { writeLine, type CliIo } from './io.js';
import { isConfigurationError } from './configuration-error.js';
import { openRedisRegistry, redisKeyPrefix, redisTarget } from './open-registry.js';
import { asRegistryUnreachable } from './registry-unreachable.js';
import { describeUnreadableKey, unreadableKeys } from './unreadable-keys.js';
import type { RegistryState, UnreadablePart } from '../registry/health-registry.js';
import { packageRoot } from './package-root.js';
import { sharedInputs } from './shared-inputs.js';
import { resolveRouterFlags } from './router-command.js';

/** A certificate this close to expiry is reported (still ok: the router would start). */
const EXPIRY_WARNING_MS = 14 * 24 * 3_600_000;

export async function runValidate(flags: ParsedFlags, io: CliIo, now: Date = new Date()): Promise<number> {
  const problems: string[] = [];
  const ok: string[] = [];
  /** Runs one check; a known kind of error is a problem line, anything else is a bug and throws. */
  const check = async (what: () => Promise<void>) => {
    try {
      await what();
    } catch (thrown) {
      // A registry read Redis refused (LOADING, NOPERM …) is one more problem, as a registry it
      // cannot reach is: thrown as it was, it was the only line and the others were dropped.
      const err = asRegistryUnreachable(thrown);
      if (!isConfigurationError(err)) throw err;
      problems.push(err.message);
    }
  };

  let resolved: Awaited<ReturnType<typeof resolveRouterFlags>> | undefined;
  await check(async () => {
    resolved = await resolveRouterFlags(flags);
  });
  // A problem in the router's own flags (no certificate named, a bad port, a bad Redis URL) stops
  // its settings short, not the files: the regions file comes first, so when the settings failed
  // after it, it is read again here and the GeoIP database and the registry are still checked (one
  // run names every problem). When the regions file is what failed, it is not named twice.
  const shared = resolved?.config.shared ?? (await sharedSettingsOrNone(flags));
  const warnings = resolved?.ignoredSettings ?? [];
  if (shared === undefined) return report(io, problems, ok, warnings);
  ok.push(`regions: ${shared.regions.regions.length} regions from ${shared.regions.file} (default ${shared.regions.defaultRegion}, zone ${shared.zone})`);

  await check(async () => {
    if (shared.geoip === null) return void ok.push('geoip: none (every client is routed from the default region)');
    const db = await loadGeoDatabase(shared.geoip).catch((err: unknown) => {
      throw namedBySource(err, shared.geoipSource);
    });
    ok.push(`geoip: ${shared.geoip} (${db.databaseType}, ${db.buildEpoch === null ? 'no valid build date' : `built ${db.buildEpoch.toISOString().slice(0, 10)}`})`);
  });

  if (resolved !== undefined) {
    const describe = (pair: CertificatePair) => {
      // As the router loads it: a pair that parses and matches may still be refused by OpenSSL (a key too small for its security level).
      hardenedContext(pair);
      const left = pair.validTo.getTime() - now.getTime();
      const expiring = left < EXPIRY_WARNING_MS ? `; expires in ${Math.max(0, Math.floor(left / 86_400_000))} days` : '';
      ok.push(`certificate: ${pair.certFile} for ${pair.names.join(', ')}, valid until ${pair.validTo.toISOString().slice(0, 10)}${expiring}`);
    };
    const { tls } = resolved;
    if (tls.certFile !== undefined) await check(async () => describe(await loadCertificatePair(tls.certFile!, tls.keyFile!, now)));
    if (tls.dir !== undefined) {
      await check(async () => {
        // Every bad pair is named, not only the first: an operator fixes them in one pass.
        const { pairs, refused } = await readCertificateDirectory(tls.dir!, now);
        for (const { error } of refused) problems.push(error.message);
        if (pairs.length === 0 && refused.length === 0 && tls.certFile === undefined) problems.push(`${tls.dir}: no certificate pairs (<name>.crt + <name>.key) in the directory`);
        // Each pair on its own, as OpenSSL may refuse any of them.
        for (const pair of pairs) await check(async () => describe(pair));
      });
    }
    if (tls.certFile === undefined && tls.dir === undefined && tls.devCert) ok.push('certificate: development (self-signed, made at start; never for production)');
  }

  if (registryGiven(flags, resolved)) {
    await check(async () => {
      const rejected: Array<[string, string]> = [];
      const registry = await openRedisRegistry(flags, shared.regions.regions, { onRejected: (where, reason) => rejected.push([where, reason]) });
      let state: RegistryState | undefined;
      try {
        state = await registry!.readState();
      } finally {
        await registry!.close();
        // A key it cannot read is said below, for what it means; the registry words it for a router
        // that keeps what it last read, which a one-shot check does not.
        const unreadable = state === undefined ? [] : unreadableKeys(state, redisKeyPrefix(flags));
        const saidBelow = new Set(unreadable.map((u) => u.key));
        for (const [where, reason] of rejected) if (!saidBelow.has(where)) problems.push(`registry ${where}: ${reason}`);
        for (const u of unreadable) problems.push(`registry: ${describeUnreadableKey(u)}: ${UNREADABLE_MEANS[u.part]} (redis-cli TYPE ${u.key} shows what it holds)`);
      }
      ok.push(`registry: ${registry!.describe()}, ${state.functions.size} functions, ${state.domains.size} custom domains`);
    });
  }
  return report(io, problems, ok, warnings);
}

/** The shared settings (regions file, GeoIP path), or none when they fail: the router's settings named why. */
async function sharedSettingsOrNone(flags: ParsedFlags) {
  try {
    return await resolveSharedSettings(sharedInputs(flags), packageRoot());
  } catch {
    return undefined;
  }
}

/** What a registry key that cannot be read means for the routers, as validate says it (Health registry → Bad data). */
const UNREADABLE_MEANS: Readonly<Record<UnreadablePart, string>> = {
  residency: 'routers keep what they last read of it; one started now serves no function (registry_unreachable) until it is mended',
  functions: 'routers keep what they last read of it; one started now serves no function (registry_unreachable) until it is mended',
  domains: 'routers keep what they last read of it; one started now serves no function (registry_unreachable) until it is mended',
  overrides: "routers keep the drains and weights they last read; one started now takes none (not drained, the regions file's weights) until it is mended",
  generation: 'routers keep the generation they last read and judge no data lost until it is mended; one started now stamps none',
};

/** Whether a registry is given; a Redis URL the router's settings refused was named by them already. */
function registryGiven(flags: ParsedFlags, resolved: { config: { redis: unknown } } | undefined): boolean {
  if (resolved !== undefined) return resolved.config.redis !== null;
  try {
    return redisTarget(flags) !== null;
  } catch {
    return false;
  }
}

/**
 * One line per problem and exit 2, or one `ok` line per check and exit 0; either way a `warning`
 * line on stderr for each setting given that would do nothing (the router starts with it).
 */
function report(io: CliIo, problems: readonly string[], ok: readonly string[], warnings: readonly string[]): number {
  for (const problem of problems) writeLine(io.stderr, `edge-router validate: ${problem}`);
  for (const warning of warnings) writeLine(io.stderr, `edge-router validate: warning: ${warning}`);
  if (problems.length > 0) return 2;
  for (const line of ok) writeLine(io.stdout, `ok ${line}`);
  return 0;
}
