/**
 * `edge-router registry <action>`: the operator's hands on the shared registry — status, drain,
 * weights, the function directory, custom domains, residency, the event log, and backups
 * (export/import). Arguments are
 * checked completely before anything is written: a bad call exits 2 and changes nothing.
 */
import { dnsNameFrom, isDnsName, longestFunctionName, MAX_LABEL_LENGTH } from '../core/dns-name.js';
import { resolveSharedSettings } from '../config/shared-settings.js';
import { readFile } from 'node:fs/promises';
import { describeError, EdgeError, thrownText, UsageError } from '../core/errors.js';
import type { RegionConfig, RegionId, TimeoutTier } from '../core/types.js';
import { describeDurableState, parseBackup, toBackup } from '../registry/backup.js';
import { buildSnapshot } from '../registry/build-snapshot.js';
import { newGeneration } from '../registry/generation.js';
import { HEALTH_EVENT_KINDS, type HealthEvent, type HealthRegistry } from '../registry/health-registry.js';
import { domainSchema, functionSchema, residencySchema } from '../registry/records.js';
import { deployFunction, importBackup, residencyRule, setOrgResidency, setRegionDrained, setRegionWeight, type ImportOutcome } from '../registry/operator-actions.js';
import { describeAllowed, describePartlyOutside, describeStranded, NO_REGION_ALLOWED } from '../registry/residency-placement.js';
import { describeRegion } from '../registry/region-view.js';
import { domainEvent, domainRemovedEvent, undeployedEvent } from '../registry/operator-events.js';
import { asRegistryUnreachable } from './registry-unreachable.js';
import { boolFlag, sourceOf, stringFlag, type ParsedFlags } from './flags.js';
import { writeLine, type CliIo } from './io.js';
import { onNamedFile, replaceFile } from './named-file.js';
import { openRedisRegistry, redisKeyPrefix } from './open-registry.js';
import { describeUnreadableKey, holdingsOf, UNREADABLE_PARTS, unreadableKeys } from './unreadable-keys.js';
import { RegistryKeyTypeError } from '../registry/redis-registry.js';
import { packageRoot } from './package-root.js';
import { parseInteger } from './parse-values.js';
import { sharedInputs } from './shared-inputs.js';

const EMPTY_DURABLE = { functions: new Map(), residency: new Map(), domains: new Map(), overrides: new Map() };

type Action = (registry: HealthRegistry, regions: readonly RegionConfig[]) => Promise<number>;

/** `events`' kind column: as wide as the longest kind, so causes line up. */
const KIND_WIDTH = Math.max(...HEALTH_EVENT_KINDS.map((kind) => kind.length));

export async function runRegistry(flags: ParsedFlags, io: CliIo): Promise<number> {
  const inputs = sharedInputs(flags);
  const regionsFile = stringFlag(flags, 'regions-file');
  const settings = await resolveSharedSettings(
    { ...inputs, regions: regionsFile === undefined ? undefined : { value: regionsFile, source: sourceOf(flags, 'regions-file') } },
    packageRoot(),
  );
  const regions = settings.regions.regions;
  const action = planAction(flags, io, regions);
  // A whole key an action names itself, with why, is not said twice (and not as a router says it: "kept as last read").
  const namedByAction = NAMES_UNREADABLE_KEYS.has(flags.positionals[0] ?? '') ? new Set(UNREADABLE_PARTS.map((part) => `${redisKeyPrefix(flags)}${part}`)) : new Set<string>();
  const registry = await openRedisRegistry(flags, regions, {
    onRejected: (where, reason) => {
      if (!namedByAction.has(where)) writeLine(io.stderr, `registry: ignored bad entry ${where}: ${reason}`);
    },
  });
  if (registry === undefined) {
    throw new UsageError(
      'no registry given: pass --redis <url> or set REDIS_URL. (The memory registry lives inside a running router; use its admin API.)',
    );
  }
  try {
    return await action(registry, regions);
  } finally {
    await registry.close();
  }
}

/** The actions that name each registry key they could not read themselves (unreadableKeys). */
const NAMES_UNREADABLE_KEYS: ReadonlySet<string> = new Set(['status', 'export']);

/** How many words each action reads after its name (flags aside). */
const ACTION_WORDS: Readonly<Record<string, number>> = {
  status: 0,
  drain: 1,
  undrain: 1,
  weight: 2,
  deploy: 0,
  undeploy: 0,
  domain: 2,
  residency: 1,
  events: 0,
  export: 0,
  import: 1,
};

/** Validates everything first and returns the action to run, so a bad call writes nothing. */
function planAction(flags: ParsedFlags, io: CliIo, regions: readonly RegionConfig[]): Action {
  const [action, ...args] = flags.positionals;
  // A word past those an action reads is refused, not dropped: `drain atl nyc` would drain atl alone
  // and say nothing of nyc.
  const most = action === undefined ? undefined : ACTION_WORDS[action];
  if (most !== undefined && args.length > most) {
    throw new UsageError(`${action}: expected at most ${most} word${most === 1 ? '' : 's'} after it, got ${args.slice(most).map((a) => JSON.stringify(a)).join(' ')} too`);
  }
  const ids = new Set(regions.map((r) => r.id));
  const region = (value: string | undefined): RegionId => {
    if (value === undefined) throw new UsageError(`${action}: expected a region id (${[...ids].join(', ')})`);
    if (!ids.has(value)) throw new UsageError(`${action}: unknown region "${value}"; expected one of ${[...ids].join(', ')}`);
    return value;
  };
  const regionList = (): RegionId[] => {
    const raw = stringFlag(flags, 'regions');
    if (raw === undefined) throw new UsageError(`${action}: expected --regions a,b`);
    const list = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
    if (list.length === 0) throw new UsageError(`${action}: --regions is empty`);
    return list.map(region);
  };
  const required = (name: string): string => {
    const value = stringFlag(flags, name);
    if (value === undefined) throw new UsageError(`${action}: expected --${name}`);
    return value;
  };
  // Why a step after the change failed, in words: describeError names anything but the edge's own
  // errors "internal error", and a Redis reply (WRONGTYPE, READONLY, OOM) said nothing more.
  const reasonOf = (err: unknown): string => {
    const read = asRegistryUnreachable(err);
    return read instanceof EdgeError ? describeError(read).message : thrownText(read);
  };
  // A change stands once written: an event the log cannot take is said, and the command succeeds
  // (it exited 2 "failed" with the change made, and a retry then found nothing to undeploy).
  const eventFailed = (command: string, written = 'the change is written', entry = 'its entry') => (err: unknown) =>
    writeLine(io.stderr, `${command}: ${written}, but the registry's event log could not take ${entry}: ${reasonOf(err)}`);
  const noteEvent = async (registry: HealthRegistry, command: string, entry: HealthEvent) => {
    await registry.appendEvent(entry).catch(eventFailed(command));
  };

  switch (action) {
    case 'status':
      return async (registry) => {
        const state = await registry.readState();
        const now = Date.now();
        const snapshot = buildSnapshot(regions, state, { contactAt: now, heartbeatTtlMs: 3_000 }, 0);
        // Overrides it could not read are not "none": the drains and weights are shown unknown, not
        // as the defaults (every region undrained), and every unreadable key is named.
        const unreadable = unreadableKeys(state, redisKeyPrefix(flags));
        const overridesUnknown = state.unreadable.has('overrides');
        for (const u of unreadable) writeLine(io.stderr, `status: ${describeUnreadableKey(u)}${u.part === 'overrides' ? '; drained and weight are shown unknown' : ''}`);
        const rows = regions
          .map((r) => describeRegion(r, snapshot.regions.get(r.id)!, now))
          .map((row) => (overridesUnknown ? { ...row, drained: null, weight: null } : row));
        if (boolFlag(flags, 'json')) writeLine(io.stdout, JSON.stringify({ readAt: now, regions: rows, unreadable: Object.fromEntries(unreadable.map((u) => [u.part, u.why])) }));
        else {
          writeLine(io.stdout, 'region  status    heartbeat  load (in-flight/soft/hard)  warm  p50/p99 ms  service ms  drained  weight  ejected');
          for (const row of rows) {
            const age = row.heartbeatAgeMs === null ? 'never' : `${(row.heartbeatAgeMs / 1000).toFixed(1)}s ago`;
            writeLine(
              io.stdout,
              [
                row.id.padEnd(7),
                row.status.padEnd(9),
                age.padEnd(10),
                `${row.inFlight}/${row.capacity.soft}/${row.capacity.hard}`.padEnd(27),
                String(row.warmContainers).padEnd(5),
                (row.latencyMs.p50 === null ? '-' : `${row.latencyMs.p50}/${row.latencyMs.p99}`).padEnd(11),
                (row.serviceMs === null ? '-' : String(row.serviceMs)).padEnd(11),
                (row.drained === null ? '?' : row.drained ? 'yes' : 'no').padEnd(8),
                String(row.weight ?? '?').padEnd(7),
                row.ejectedUntil === null ? '-' : `until ${new Date(row.ejectedUntil).toISOString()}`,
              ].join(' '),
            );
          }
        }
        return 0;
      };
    case 'drain':
    case 'undrain': {
      const r = region(args[0]);
      const drained = action === 'drain';
      return async (registry) => {
        await setRegionDrained(registry, r, drained, 'CLI', eventFailed(action));
        writeLine(io.stdout, `${r}: ${drained ? 'drained' : 'undrained'}`);
        return 0;
      };
    }
    case 'weight': {
      const r = region(args[0]);
      const raw = args[1];
      // Plain decimals only: Number() reads "" and " " as 0 (a region's traffic gone on a slip of
      // the shell) and "0x20" as 32. `default` drops the override: without it, one weight set
      // kept the regions file's later weights for the region from ever applying.
      if (raw === undefined || (raw !== 'default' && (!/^\d+(\.\d+)?$/.test(raw) || Number(raw) > 100))) {
        throw new UsageError(`weight: expected a decimal number from 0 to 100 (such as 25 or 12.5), or default (the regions file's weight), got ${raw === undefined ? 'none' : JSON.stringify(raw)}`);
      }
      const weight = raw === 'default' ? null : Number(raw);
      return async (registry) => {
        await setRegionWeight(registry, r, weight, 'CLI', eventFailed('weight'));
        writeLine(io.stdout, `${r}: ${weight === null ? "the regions file's weight" : `weight ${weight}`}`);
        return 0;
      };
    }
    case 'deploy': {
      const tier = (stringFlag(flags, 'tier') ?? 'standard') as TimeoutTier;
      if (tier !== 'standard' && tier !== 'extended') throw new UsageError('deploy: --tier is standard or extended');
      const record = { org: required('org'), fn: required('fn'), regions: regionList(), tier, enabled: !boolFlag(flags, 'disabled'), ...(boolFlag(flags, 'hedge') ? { hedge: true } : {}) };
      const checked = functionSchema.safeParse(record);
      if (!checked.success) throw new UsageError(`deploy: ${checked.error.issues[0]!.path.join('.')}: ${checked.error.issues[0]!.message}`);
      // The function's host label <fn>-<org> (RFC 1035: 63 at most), as the admin API refuses it:
      // a longer one was stored and every request for it failed as label_too_long.
      if (record.fn.length > longestFunctionName(record.org)) throw new UsageError(`deploy: --fn: expected at most ${longestFunctionName(record.org)} characters with org ${record.org}: the host label <fn>-<org> is at most ${MAX_LABEL_LENGTH}`);
      return async (registry) => {
        // Refused (exit 2, nothing written) when a region is outside the org's residency: the
        // admin API's deploy and this one check alike (operator-actions.ts).
        await deployFunction(registry, { ...record, regions: new Set(record.regions) }, 'CLI', eventFailed('deploy'));
        writeLine(io.stdout, `deployed ${record.fn} (org ${record.org}) in ${record.regions.join(', ')}, ${tier} tier${record.enabled ? '' : ', disabled'}${record.hedge === true ? ', hedging on' : ''}`);
        return 0;
      };
    }
    case 'undeploy': {
      const org = required('org');
      const fn = required('fn');
      return async (registry) => {
        const existed = await registry.deleteFunction(org, fn);
        if (!existed) {
          writeLine(io.stderr, `undeploy: no function ${fn} in org ${org}`);
          return 2;
        }
        await noteEvent(registry, 'undeploy', undeployedEvent(org, fn, 'CLI', Date.now()));
        writeLine(io.stdout, `undeployed ${fn} (org ${org})`);
        return 0;
      };
    }
    case 'domain': {
      const [verb, rawHost] = args;
      const host = rawHost === undefined ? undefined : dnsNameFrom(rawHost);
      if (host === undefined || !isDnsName(host)) {
        throw new UsageError('domain: expected a DNS name, e.g. domain add api.example.com --org o --fn f');
      }
      if (verb === 'add') {
        const ref = { fn: required('fn'), org: required('org') };
        const checked = domainSchema.safeParse(ref);
        if (!checked.success) throw new UsageError(`domain add: ${checked.error.issues[0]!.path.join('.')}: ${checked.error.issues[0]!.message}`);
        return async (registry) => {
          await registry.putDomain(host, ref);
          await noteEvent(registry, 'domain add', domainEvent(host, ref, 'CLI', Date.now()));
          writeLine(io.stdout, `${host} → ${ref.fn} (org ${ref.org})`);
          return 0;
        };
      }
      if (verb === 'remove') {
        return async (registry) => {
          const existed = await registry.deleteDomain(host);
          if (existed) await noteEvent(registry, 'domain remove', domainRemovedEvent(host, 'CLI', Date.now()));
          writeLine(existed ? io.stdout : io.stderr, existed ? `${host} removed` : `domain remove: ${host} is not mapped`);
          return existed ? 0 : 2;
        };
      }
      throw new UsageError('domain: expected add or remove');
    }
    case 'residency': {
      const [verb] = args;
      const org = required('org');
      // The rule stands once written (it applies at once): an event the log cannot take is said, not a failed command.
      const residencyEventFailed = eventFailed('residency', 'the rule is written');
      if (verb === 'set') {
        // An org id as routing reads it from a host name (lower-cased) and as deploy and a backup
        // accept it. A rule stored under "Acme" was never looked up (requests name "acme"), so the
        // org's requests went to any region while this command said it was restricted. (clear
        // takes any text: a rule stored so before this check can still be removed.)
        if (!functionSchema.shape.org.safeParse(org).success) throw new UsageError(`residency: --org ${JSON.stringify(org)} is not an org id (lower-case letters and digits, 1 to 63)`);
        // As the registry keeps it (each region once, sorted), and within what every reader takes.
        const list = residencyRule(regionList());
        if (!residencySchema.safeParse(list).success) throw new UsageError(`residency: --regions names ${list.length} regions; a rule takes at most 64`);
        return async (registry) => {
          // Never refused for the functions it strands or leaves partly outside it (residency is a
          // legal constraint and applies at once): they are named, on stderr, for the operator to
          // redeploy, each as `import` names them.
          const { stranded, partlyOutside, unchecked } = await setOrgResidency(registry, org, list, 'CLI', residencyEventFailed);
          writeLine(io.stdout, `org ${org} restricted to ${list.join(', ')}`);
          if (stranded === null || partlyOutside === null) {
            writeLine(io.stderr, `residency: the rule is set, but the org's functions could not be read to check for any it strands or leaves partly outside: ${reasonOf(unchecked)}`);
            return 0;
          }
          const n = (count: number, one: string, many: string) => (count === 1 ? one : many);
          if (stranded.length > 0) {
            writeLine(io.stderr, `residency: ${stranded.length} ${n(stranded.length, 'function', 'functions')} of org ${org} ${n(stranded.length, 'is', 'are')} deployed in no region it now allows, and ${n(stranded.length, 'answers', 'answer')} no_healthy_region until redeployed within ${list.join(', ')}:`);
            for (const line of describeStranded(stranded)) writeLine(io.stderr, `  ${line}`);
          }
          if (partlyOutside.length > 0) {
            writeLine(io.stderr, `residency: ${partlyOutside.length} ${n(partlyOutside.length, 'function', 'functions')} of org ${org} ${n(partlyOutside.length, 'is', 'are')} deployed partly outside the rule (a deploy would refuse that), and ${n(partlyOutside.length, 'is', 'are')} served from the regions it allows only:`);
            for (const line of describePartlyOutside(partlyOutside)) writeLine(io.stderr, `  ${line}`);
          }
          return 0;
        };
      }
      if (verb === 'clear') {
        return async (registry) => {
          await setOrgResidency(registry, org, null, 'CLI', residencyEventFailed);
          writeLine(io.stdout, `org ${org} may use every region`);
          return 0;
        };
      }
      throw new UsageError('residency: expected set or clear');
    }
    case 'events': {
      // Digits only, as every other count: Number() read 0x10 as 16 and 1e2 as 100.
      const limit = parseInteger(stringFlag(flags, 'limit') ?? '50', 'events: --limit', 1, 1_000);
      return async (registry) => {
        const events = await registry.readEvents(limit);
        if (boolFlag(flags, 'json')) writeLine(io.stdout, JSON.stringify(events));
        else for (const e of events) writeLine(io.stdout, `${new Date(e.at).toISOString()}  ${(e.region ?? '-').padEnd(4)} ${e.kind.padEnd(KIND_WIDTH)} ${e.cause}`);
        return 0;
      };
    }
    case 'export': {
      const out = stringFlag(flags, 'out');
      return async (registry) => {
        const state = await registry.readState();
        // A part it could not read reads as empty: a backup of that would restore without it (for
        // the residency rules, every org free to every region). Refused, as an empty one is.
        const unreadable = unreadableKeys(state, redisKeyPrefix(flags));
        if (unreadable.length > 0) {
          for (const u of unreadable) writeLine(io.stderr, `export: ${describeUnreadableKey(u)}: a backup would hold none of ${u.holds}`);
          writeLine(io.stderr, 'export: nothing written; export again once the key reads (redis-cli TYPE <key> shows what it holds)');
          return 2;
        }
        // An empty registry that no router has stamped is most likely one that lost its data: a
        // backup of it would only overwrite a good one.
        if (state.generation === null && describeDurableState(state) === describeDurableState(EMPTY_DURABLE)) {
          writeLine(io.stderr, 'export: the registry is empty and has no generation (a Redis that lost its data?); nothing written');
          return 2;
        }
        const text = `${JSON.stringify(toBackup(state, state.generation, Date.now()), null, 2)}\n`;
        if (out === undefined) io.stdout.write(text);
        else {
          await onNamedFile(out, 'write', () => replaceFile(out, text, 0o600));
          writeLine(io.stderr, `exported ${describeDurableState(state)} to ${out}`);
        }
        return 0;
      };
    }
    case 'import': {
      const file = args[0];
      if (file === undefined) throw new UsageError('import: expected a backup file (from `edge-router registry export`)');
      // Not 'missing-only', a re-seed's, which writes nothing once an import or restore stamped the
      // registry: a second import of missing entries printed "imported" and wrote none.
      const mode = boolFlag(flags, 'overwrite') ? 'overwrite' : 'keep-existing';
      return async (registry) => {
        const text = await onNamedFile(file, 'read', () => readFile(file, 'utf8'));
        const { state, unknownRegions } = parseBackup(text, file, regions.map((r) => r.id));
        // A new generation: routers take the imported data as deliberate, not as a loss to undo.
        const generation = newGeneration('import');
        // Written as it is, not refused: a backup is a state the registry held, and a residency
        // rule set after a deployment legitimately strands it (setOrgResidency). Checked against
        // the rules that hold after it, the registry's where it kept its own, and named, as there.
        // Each entry it changes is logged as the CLI's own change of it is, by `CLI import` (at most
        // 50 a part: import-events.ts); a log that cannot take them is said, the import stands.
        const importEventFailed = eventFailed('import', 'the backup is written', 'its entries');
        let outcome: ImportOutcome;
        try {
          outcome = await importBackup(registry, state, generation, mode, 'CLI import', importEventFailed);
        } catch (err) {
          if (!(err instanceof RegistryKeyTypeError)) throw err;
          // Refused before anything was written (the script checks every key it writes first): one
          // line per key, in the order export names unreadable keys, so all are mended in one pass.
          const keys = [...err.keys].sort((a, b) => UNREADABLE_PARTS.indexOf(a.part) - UNREADABLE_PARTS.indexOf(b.part));
          for (const k of keys) {
            const what = k.part === 'generation' ? "the import's generation" : `the backup's ${holdingsOf(k.part).replace(/^the /, '')}`;
            writeLine(io.stderr, `import: the registry's ${k.part} key ${k.key} holds a ${k.holds}, not a ${k.expected}: ${what} cannot be written into it`);
          }
          writeLine(io.stderr, `import: nothing written; import again once the key${keys.length === 1 ? ' is' : 's are'} mended (redis-cli TYPE <key> shows what a key holds)`);
          return 2;
        }
        const { residency, unchecked } = outcome;
        // Nothing stamped where nothing changed: a new generation sends every router to read the whole directory again.
        if (outcome.generation === generation) writeLine(io.stdout, `imported ${describeDurableState(state)} (${mode === 'overwrite' ? 'replacing existing entries' : 'keeping existing entries'}); generation ${generation}`);
        // Without --overwrite an entry that stands is kept whatever its value: "already stands" would say the registry matches the backup.
        else if (mode === 'overwrite') writeLine(io.stdout, `imported nothing: every entry of the backup's ${describeDurableState(state)} already stands as it is; generation ${outcome.generation} stays`);
        else writeLine(io.stdout, `imported nothing: the registry already has an entry for each of the backup's ${describeDurableState(state)}, kept as it stands (--overwrite replaces them); generation ${outcome.generation} stays`);
        // Functions deployed there and rules naming them, kept as the registry keeps them (a region
        // being rolled out): routers whose regions file has them route there, this one does not.
        if (unknownRegions.length > 0) {
          writeLine(io.stderr, `import: the backup names ${unknownRegions.join(', ')}, which this regions file lacks: written as it is; this router routes by the regions it knows`);
        }
        if (residency === null) {
          writeLine(io.stderr, `import: the backup is written, but the registry could not be read to check its functions against the residency that now holds: ${reasonOf(unchecked)}`);
        } else {
          for (const line of residencyAfterImport(residency, mode)) writeLine(io.stderr, `import: ${line}`);
        }
        return 0;
      };
    }
    default:
      throw new UsageError(action === undefined ? 'expected an action' : `unknown action "${action}"`);
  }
}

/**
 * A line per backup rule that did not take, then per function the standing rules strand, then per
 * function they leave partly outside (importBackup's outcome). The last are not refused either (a
 * backup is a state the registry held), but named: `deploy` would refuse them, and the regions
 * outside the rule serve them nothing.
 */
function residencyAfterImport(residency: NonNullable<ImportOutcome['residency']>, mode: 'keep-existing' | 'overwrite'): string[] {
  const rule = (regions: readonly string[] | null) => (regions === null ? 'none (every region)' : describeAllowed(regions));
  // A rule allowing no region is one the registry could not read (RecordDecoder), not "only" an empty list.
  const mayUse = (allowed: readonly string[]) => (allowed.length === 0 ? `may use ${NO_REGION_ALLOWED}` : `may use only ${allowed.join(', ')}`);
  const lines = residency.notImported.map(({ org, standing, backup }) =>
    mode === 'overwrite'
      ? `org ${org}'s residency rule is ${rule(standing)}, not the backup's ${rule(backup)}: it changed during the import`
      : `org ${org} keeps its residency rule ${rule(standing)}, not the backup's ${rule(backup)}: an import without --overwrite keeps the registry's entries`,
  );
  for (const { org, allowed, functions } of residency.stranded) {
    for (const line of describeStranded(functions)) {
      lines.push(`org ${org} ${mayUse(allowed)}; its function ${line} will answer no_healthy_region until redeployed`);
    }
  }
  for (const { org, allowed, functions } of residency.partlyOutside) {
    for (const line of describePartlyOutside(functions)) lines.push(`org ${org} ${mayUse(allowed)}; its function ${line}`);
  }
  return lines;
}
