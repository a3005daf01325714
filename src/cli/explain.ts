/**
 * `edge-router explain`: answers "why did this request go there?" for one client address or a
 * whole log of them, with the same decider the router uses. Output is JSON: one object for a
 * single address, one line per address (in input order) for several.
 */
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';
import { resolveSharedSettings } from '../config/shared-settings.js';
import { EdgeError, UsageError } from '../core/errors.js';
import { DEFAULT_TIER_TIMEOUT_MS, type RegistrySnapshot } from '../core/types.js';
import { describeDecision } from '../routing/describe-decision.js';
import { createRouteDecider } from '../routing/route-decider.js';
import { staticSnapshot } from '../registry/static-snapshot.js';
import { buildSnapshot } from '../registry/build-snapshot.js';
import { openRedisRegistry, redisKeyPrefix, redisTarget } from './open-registry.js';
import { asRegistryUnreachable } from './registry-unreachable.js';
import { describeUnreadableKey, unreadableKeys } from './unreadable-keys.js';
import type { RegistryState, UnreadablePart } from '../registry/health-registry.js';
import { boolFlag, listFlag, sourceOf, stringFlag, type ParsedFlags } from './flags.js';
import { writeLine, type CliIo } from './io.js';
import { openLocator } from '../geoip/open-locator.js';
import { packageRoot } from './package-root.js';
import { sharedInputs } from './shared-inputs.js';
import { routingSettings } from './routing-flags.js';
import { parseChoice } from './parse-values.js';

/** The parts a decision reads (the generation decides nothing). */
const ROUTING_PARTS: readonly UnreadablePart[] = ['functions', 'residency', 'domains', 'overrides'];

export async function runExplain(flags: ParsedFlags, io: CliIo): Promise<number> {
  const host = stringFlag(flags, 'host');
  if (host === undefined) throw new UsageError('explain needs --host <host>');
  const ips = listFlag(flags, 'ip');
  const ipsSource = stringFlag(flags, 'ips');
  if (ipsSource !== undefined && ipsSource !== '-') throw new UsageError('--ips takes "-" (read addresses from stdin)');
  if (ips.length === 0 && ipsSource === undefined) throw new UsageError('explain needs --ip <ip> or --ips -');

  const settings = await resolveSharedSettings(sharedInputs(flags), packageRoot());
  // "With a registry", however it is reached: --redis-sentinels alone reads the live registry too,
  // and answering its unknown functions as deployed everywhere contradicted the router's 404.
  const unknownFunctions = parseChoice(
    stringFlag(flags, 'unknown-functions') ?? (redisTarget(flags) === null ? 'forward' : 'reject'),
    sourceOf(flags, 'unknown-functions'),
    ['reject', 'forward'] as const,
  );
  const batch = ips.length > 1 || ipsSource !== undefined;
  const compact = boolFlag(flags, 'json') || batch;
  const print = (body: unknown): void => writeLine(io.stdout, JSON.stringify(body, null, compact ? undefined : 2));
  // With a registry, the decision uses the live state, read once (as a router's snapshot would hold it).
  const registry = await openRedisRegistry(flags, settings.regions.regions);
  let state: RegistryState | undefined;
  try {
    state = await registry?.readState();
  } catch (err) {
    // A read that failed, however (Redis refused it for the moment or for good, or the connection
    // dropped), is answered as an unreadable key is: explain's own JSON error, one shape for
    // whatever parses its output.
    const failed = asRegistryUnreachable(err);
    if (!(failed instanceof EdgeError) || (failed.code !== 'registry_unreachable' && failed.code !== 'registry_refused')) throw err;
    print({ error: { code: failed.code, message: failed.message } });
    return 2;
  } finally {
    await registry?.close();
  }
  // A part it could not read reads as empty: reasoned on, rules read as none would send an org
  // where no router does (a router keeps what it last read; one started since serves nothing).
  // Said instead, as the same answer for every address, once.
  const unreadable = state === undefined ? [] : unreadableKeys(state, redisKeyPrefix(flags), ROUTING_PARTS);
  if (unreadable.length > 0) {
    const message = `${unreadable.map(describeUnreadableKey).join('; ')}: not explained (a router routes by what it last read of ${unreadable.length === 1 ? 'it' : 'them'}, which this read cannot know)`;
    print({ error: { code: 'registry_unreachable', message } });
    return 2;
  }
  const snapshot: RegistrySnapshot =
    state === undefined ? staticSnapshot(settings.regions.regions) : buildSnapshot(settings.regions.regions, state, { contactAt: Date.now(), heartbeatTtlMs: 3_000 }, 1);
  const locator = await openLocator(settings.geoip, { watch: false, source: settings.geoipSource });
  try {
    const decider = createRouteDecider({
      regions: settings.regions.regions,
      zone: settings.zone,
      locator,
      countryRegions: settings.regions.countryRegions,
      defaultRegion: settings.regions.defaultRegion,
      customDomains: settings.regions.customDomains,
      unknownFunctions,
      ...routingSettings(flags),
      // The router's default limits: explain says what a router with default settings would do.
      tierTimeoutMs: DEFAULT_TIER_TIMEOUT_MS,
    });
    // A rejected host is the same answer for every address: say it once and stop.
    const resolved = decider.resolveHost(host, snapshot);
    if (!resolved.ok) {
      print({ error: { code: resolved.code, message: resolved.message } });
      return 2;
    }
    let failures = 0;
    const emit = (ip: string): void => {
      const result = describeDecision(decider, snapshot, host, ip, Date.now());
      if (!result.ok) failures++;
      print(result.body);
    };
    ips.forEach(emit);
    if (ipsSource === '-') {
      // A signal ends the read (the first Ctrl-C was swallowed: only a second one ended it, as a
      // forced exit); what was explained so far stands.
      const lines = createInterface({ input: io.stdin, crlfDelay: Infinity, ...(io.signal === undefined ? {} : { signal: io.signal }) });
      try {
        for await (const line of lines) {
          if (io.signal?.aborted) break; // lines readline read ahead are not explained
          const ip = line.trim();
          if (ip === '') continue;
          emit(ip);
          // A reader that stopped reading (`| less`): wait for it, rather than read the whole log
          // into stdout's buffer.
          if (io.stdout.writableNeedDrain) await waitForDrain(io.stdout, io.signal);
        }
      } catch (err) {
        if (!io.signal?.aborted) throw err;
      }
      if (io.signal?.aborted) return 130;
    }
    // One address: its failure is the command's. A batch: per-line errors, the batch itself succeeded.
    return !batch && failures > 0 ? 2 : 0;
  } finally {
    locator.close?.();
  }
}

/** Resolves when `stream` has drained, or when `signal` aborts. */
function waitForDrain(stream: Writable, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    stream.once('drain', done);
    stream.once('close', done);
    signal?.addEventListener('abort', done, { once: true });
  });
}
