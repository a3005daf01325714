/**
 * The event log's entries for operator changes (pure): one wording per change, whoever makes it
 * (the CLI, the admin API, an import), so that the log reads alike however a function came to be
 * deployed or a rule set; `by` names who did (`CLI`, `admin API`, `CLI import`).
 */
import type { FunctionRecord, FunctionRef, RegionId } from '../core/types.js';
import type { HealthEvent } from './health-registry.js';
import { describeAllowed } from './residency-placement.js';

export function drainEvent(region: RegionId, drained: boolean, by: string, at: number): HealthEvent {
  return { at, region, kind: drained ? 'drained' : 'undrained', cause: `operator (${by})` };
}

/** A weight change; null is the regions file's weight (what a region has with no override). */
export function weightEvent(region: RegionId, weight: number | null, by: string, at: number): HealthEvent {
  return { at, region, kind: 'weight', cause: `operator (${by}) set ${weight === null ? "the regions file's weight" : `weight ${weight}`}` };
}

export function deployedEvent(record: FunctionRecord, by: string, at: number): HealthEvent {
  const where = record.regions === null ? 'every region' : [...record.regions].join(',');
  // Disabled (every request 403) and hedging are said: without them, disabling a function read in
  // the log as the same deploy it replaced.
  const how = `${record.tier}${record.enabled ? '' : ', disabled'}${record.hedge === true ? ', hedging on' : ''}`;
  return { at, region: null, kind: 'deployed', cause: `${record.org}/${record.fn} in ${where} (${how}; ${by})` };
}

export function undeployedEvent(org: string, fn: string, by: string, at: number): HealthEvent {
  return { at, region: null, kind: 'undeployed', cause: `${org}/${fn} (${by})` };
}

export function domainEvent(host: string, ref: FunctionRef, by: string, at: number): HealthEvent {
  return { at, region: null, kind: 'domain', cause: `${host} → ${ref.org}/${ref.fn} (${by})` };
}

export function domainRemovedEvent(host: string, by: string, at: number): HealthEvent {
  return { at, region: null, kind: 'domain', cause: `${host} removed (${by})` };
}

/**
 * A residency rule set (its regions, each once, sorted; none, as a backup carries a rule the
 * registry could not read, in describeAllowed's words), or cleared (null). Routers of the version
 * before these kinds leave it out of what they show (records.ts).
 */
export function residencyEvent(org: string, regions: Iterable<RegionId> | null, by: string, at: number): HealthEvent {
  if (regions === null) return { at, region: null, kind: 'residency_cleared', cause: `org ${org} may use every region (${by})` };
  return { at, region: null, kind: 'residency_set', cause: `org ${org} restricted to ${describeAllowed([...new Set(regions)].sort())} (${by})` };
}
