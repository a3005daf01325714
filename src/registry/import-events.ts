/**
 * The event log's entries for an import (pure): one per entry it changed, worded as the operator's
 * own change of that entry is (operator-events.ts), by the import. An entry it wrote as it stood
 * changed nothing and says nothing.
 *
 * Bounded: a backup may hold 20,000 functions, and the log keeps its newest 1,000 entries (the
 * dashboard shows 50), so one entry per change would push every region change and earlier operator
 * action out of it. Each part (functions, custom domains, residency rules, region overrides) adds
 * at most IMPORT_EVENTS_PER_PART entries: beyond, the first ones in name order, then one of the
 * same kind saying how many more (the backup file holds them all). An import adds at most 200.
 */
import { DEFAULT_OVERRIDES, functionKey, type HealthEvent, type RestoredChanges } from './health-registry.js';
import { deployedEvent, domainEvent, drainEvent, residencyEvent, weightEvent } from './operator-events.js';

/** Most entries one import adds to the event log for one part; the last of them may stand for the rest. */
export const IMPORT_EVENTS_PER_PART = 50;

/** The entries to append, oldest first: functions, custom domains, residency rules, then region overrides (the newest, shown first). */
export function importEvents(changes: RestoredChanges, by: string, at: number): HealthEvent[] {
  const byName = <T>(entries: Iterable<readonly [string, T]>) => [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const functions = byName(changes.functions.map((record) => [functionKey(record.org, record.fn), record] as const));
  const overrides: HealthEvent[] = [];
  for (const [region, { before, after }] of byName(changes.overrides)) {
    const was = before ?? DEFAULT_OVERRIDES;
    if (after.drained !== was.drained) overrides.push(drainEvent(region, after.drained, by, at));
    if (after.weight !== was.weight) overrides.push(weightEvent(region, after.weight, by, at));
  }
  return [
    ...bounded(functions.map(([, record]) => deployedEvent(record, by, at)), 'functions deployed', by, at),
    ...bounded(byName(changes.domains).map(([host, ref]) => domainEvent(host, ref, by, at)), 'custom domains mapped', by, at),
    ...bounded(byName(changes.residency).map(([org, regions]) => residencyEvent(org, regions, by, at)), 'residency rules set', by, at),
    ...bounded(overrides, 'region override changes', by, at),
  ];
}

/** A part's entries, at most IMPORT_EVENTS_PER_PART: beyond, the first ones and one for the rest. */
function bounded(events: readonly HealthEvent[], what: string, by: string, at: number): HealthEvent[] {
  if (events.length <= IMPORT_EVENTS_PER_PART) return [...events];
  const each = events.slice(0, IMPORT_EVENTS_PER_PART - 1);
  const rest = events.length - each.length;
  return [...each, { at, region: null, kind: events[each.length]!.kind, cause: `and ${rest} more ${what} (${by})` }];
}
