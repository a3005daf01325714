/**
 * Wire format of everything stored in a shared registry, validated on every read: data written
 * by another process (or another version, or an attacker with Redis access) is untrusted. A bad
 * entry is dropped with a reason and never touches the entries around it.
 */
import { z } from 'zod';
import type { FunctionRecord, FunctionRef, RegionId } from '../core/types.js';
import type { Ejection, HealthEvent, Heartbeat, RegionOverrides } from './health-registry.js';

/** Bumped when the stored format changes incompatibly; readers refuse data from a newer schema. */
export const SCHEMA_VERSION = 1;

/** Anything longer is refused before JSON.parse: no stored record is legitimately this big. */
export const MAX_RECORD_BYTES = 1_048_576;

const count = z.number().int().min(0).max(10_000_000);
const epochMs = z.number().int().min(0).max(8.64e15);
const shortText = z.string().max(256);
const regionIdText = z.string().regex(/^[a-z][a-z0-9-]{1,15}$/);

export const heartbeatSchema = z.strictObject({
  region: regionIdText,
  status: z.enum(['up', 'degraded', 'draining', 'down']),
  reportedAt: epochMs,
  source: z.enum(['reporter', 'probe']),
  inFlight: count,
  capacity: z.strictObject({ soft: count, hard: count }).optional(),
  warmContainers: count,
  latencyMs: z.strictObject({ p50: z.number().min(0).max(3_600_000), p99: z.number().min(0).max(3_600_000) }),
  errorRate: z.number().min(0).max(1),
  warmFunctions: z.array(z.string().max(128)).max(100_000),
});

export const overridesSchema = z.strictObject({
  drained: z.boolean(),
  weight: z.number().min(0).max(100).nullable(),
});

export const ejectionSchema = z.strictObject({ until: epochMs, count: z.number().int().min(1).max(1_000), cause: shortText });

export const functionSchema = z.strictObject({
  org: z.string().regex(/^[a-z0-9]{1,63}$/),
  fn: z.string().regex(/^[a-z0-9]+(-[a-z0-9]+)*$/).max(62),
  regions: z.array(regionIdText).max(64).nullable(),
  tier: z.enum(['standard', 'extended']),
  enabled: z.boolean(),
});

export const residencySchema = z.array(regionIdText).min(1).max(64);

export const domainSchema = z.strictObject({
  fn: z.string().regex(/^[a-z0-9]+(-[a-z0-9]+)*$/).max(62),
  org: z.string().regex(/^[a-z0-9]{1,63}$/),
});

export const eventSchema = z.strictObject({
  at: epochMs,
  region: regionIdText.nullable(),
  kind: z.enum(['up', 'down', 'degraded', 'draining', 'drained', 'undrained', 'weight', 'ejected', 'deployed', 'undeployed', 'domain']),
  cause: shortText,
});

export type Decoded<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

/** Parses and validates one stored JSON value. Never throws. */
export function decodeRecord<T>(schema: z.ZodType<T>, raw: string | null | undefined): Decoded<T> {
  if (raw === null || raw === undefined) return { ok: false, reason: 'missing' };
  if (raw.length > MAX_RECORD_BYTES) return { ok: false, reason: `record of ${raw.length} bytes exceeds ${MAX_RECORD_BYTES}` };
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return { ok: false, reason: 'not valid JSON' };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { ok: false, reason: `${issue.path.join('.') || '(value)'}: ${issue.message}` };
  }
  return { ok: true, value: parsed.data };
}

/** Region ids must be configured: data about an unknown region is refused, not invented. */
export function unknownRegion(ids: readonly RegionId[], known: ReadonlySet<RegionId>): RegionId | undefined {
  return ids.find((id) => !known.has(id));
}

export function toFunctionRecord(value: z.infer<typeof functionSchema>): FunctionRecord {
  return { org: value.org, fn: value.fn, regions: value.regions === null ? null : new Set(value.regions), tier: value.tier, enabled: value.enabled };
}

export function fromFunctionRecord(record: FunctionRecord): z.infer<typeof functionSchema> {
  return { org: record.org, fn: record.fn, regions: record.regions === null ? null : [...record.regions].sort(), tier: record.tier, enabled: record.enabled };
}

// Compile-time checks that the schemas and the interface types agree.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
export const schemaMatchesTypes: [
  Same<z.infer<typeof heartbeatSchema>['status'], Heartbeat['status']>,
  Same<z.infer<typeof overridesSchema>, RegionOverrides>,
  Same<z.infer<typeof ejectionSchema>, Ejection>,
  Same<z.infer<typeof eventSchema>['kind'], HealthEvent['kind']>,
  Same<z.infer<typeof domainSchema>, FunctionRef>,
] = [true, true, true, true, true];
