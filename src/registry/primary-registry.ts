/**
 * The memory registry of a multi-worker router, held once by the cluster primary and used by
 * every worker over its IPC channel: a drain, a deployed function or a probe result is then one
 * fact for the whole router, not one per worker. Workers hold a PrimaryRegistryClient (same
 * HealthRegistry contract as the others); the primary serves its MemoryRegistry to each worker
 * with `serveRegistry`, pushing every change so the workers' watchers rebuild their snapshots.
 */
import type { FunctionRecord, FunctionRef, RegionId } from '../core/types.js';
import type { MessageLink } from '../cluster/message-link.js';
import type { TicketKeyRing } from '../core/ticket-key-ring.js';
import {
  STORE_CALLS,
  type AllHeartbeats,
  type DurableState,
  type Ejection,
  type HealthEvent,
  type HealthRegistry,
  type Heartbeat,
  type RegionOverrides,
  type RegistryChange,
  type RegistryState,
  type RestoredChanges,
  type RestoreMode,
  type StampedResidency,
} from './health-registry.js';

import type { HeldDirectory, ReadMode } from './directory-patch.js';

const CHANGE_TOPIC = 'registry.change';

type Method = (typeof STORE_CALLS)[number];

export class PrimaryRegistryClient implements HealthRegistry {
  // The state is the primary's MemoryRegistry: to an operator it is the memory registry.
  readonly kind = 'memory';

  constructor(private readonly link: MessageLink) {}

  writeHeartbeat(heartbeat: Heartbeat, ttlMs: number): Promise<void> {
    return this.call('writeHeartbeat', heartbeat, ttlMs);
  }
  setOverrides(region: RegionId, overrides: RegionOverrides): Promise<void> {
    return this.call('setOverrides', region, overrides);
  }
  updateOverrides(region: RegionId, change: Partial<RegionOverrides>): Promise<void> {
    return this.call('updateOverrides', region, change);
  }
  setEjection(region: RegionId, ejection: Ejection | null): Promise<void> {
    return this.call('setEjection', region, ejection);
  }
  putFunction(record: FunctionRecord): Promise<void> {
    return this.call('putFunction', record);
  }
  putFunctionUnderResidency(record: FunctionRecord, stamp: string): Promise<boolean> {
    return this.call('putFunctionUnderResidency', record, stamp);
  }
  assertFunction(record: FunctionRecord): Promise<boolean> {
    return this.call('assertFunction', record);
  }
  deleteFunction(org: string, fn: string): Promise<boolean> {
    return this.call('deleteFunction', org, fn);
  }
  setResidency(org: string, regions: readonly RegionId[] | null): Promise<void> {
    return this.call('setResidency', org, regions);
  }
  putDomain(host: string, ref: FunctionRef): Promise<void> {
    return this.call('putDomain', host, ref);
  }
  deleteDomain(host: string): Promise<boolean> {
    return this.call('deleteDomain', host);
  }
  appendEvent(event: HealthEvent, onceKey?: string): Promise<boolean> {
    return this.call('appendEvent', event, onceKey);
  }
  shareTicketKeys(fresh: string, rotateEveryMs: number): Promise<TicketKeyRing> {
    return this.call('shareTicketKeys', fresh, rotateEveryMs);
  }
  stampGeneration(candidate: string): Promise<string> {
    return this.call('stampGeneration', candidate);
  }
  restore(state: DurableState, generation: string, mode: RestoreMode): Promise<RestoredChanges | null> {
    return this.call('restore', state, generation, mode);
  }
  readState(held?: HeldDirectory, mode?: ReadMode): Promise<RegistryState> {
    return this.call('readState', held, mode);
  }
  readAllHeartbeats(): Promise<AllHeartbeats> {
    return this.call('readAllHeartbeats');
  }
  readOverrides(): Promise<ReadonlyMap<RegionId, RegionOverrides>> {
    return this.call('readOverrides');
  }
  readResidency(org: string): Promise<StampedResidency> {
    return this.call('readResidency', org);
  }
  readEvents(limit: number): Promise<HealthEvent[]> {
    return this.call('readEvents', limit);
  }

  async subscribe(onChange: (change: RegistryChange) => void): Promise<() => Promise<void>> {
    const stop = this.link.onPush(CHANGE_TOPIC, (change) => onChange(change as RegistryChange));
    return async () => {
      stop();
    };
  }

  /** The link belongs to the worker's process, not to the registry: closing leaves it open. */
  async close(): Promise<void> {}

  private call<T>(method: Method, ...args: unknown[]): Promise<T> {
    return this.link.call<T>(`registry.${method}`, args);
  }
}

/** Serves `registry` to the worker at the other end of `link`; returns a function that stops. */
export async function serveRegistry(registry: HealthRegistry, link: MessageLink): Promise<() => Promise<void>> {
  for (const method of STORE_CALLS) {
    link.handle(`registry.${method}`, (...args: unknown[]) => (registry[method] as (...a: unknown[]) => Promise<unknown>).apply(registry, args));
  }
  return registry.subscribe((change) => link.push(CHANGE_TOPIC, change));
}
