/**
 * The routing decision as operators read it (`edge-router explain`, the admin API's
 * `/api/route`): function, client location, chosen region, reason and the full ranking.
 */
import { isIP } from 'node:net';
import type { RegistrySnapshot } from '../core/types.js';
import type { RegionTrace } from './pick-region.js';
import type { RouteDecider } from './route-decider.js';

export type DescribedDecision =
  | {
      readonly ok: true;
      readonly body: {
        fn: string;
        org: string;
        client: { ip: string; country: string | null; city: string | null; lat: number | null; lon: number | null; source: string };
        region: string;
        reason: string;
        ranking: RegionTrace[];
      };
    }
  | { readonly ok: false; readonly body: { ip?: string; error: { code: string; message: string } } };

export function describeDecision(decider: RouteDecider, snapshot: RegistrySnapshot, host: string, ip: string, nowMs: number): DescribedDecision {
  if (isIP(ip) === 0) return { ok: false, body: { ip, error: { code: 'invalid_ip', message: 'not an IPv4 or IPv6 address' } } };
  const trace: RegionTrace[] = [];
  const decision = decider.decide(host, ip, snapshot, nowMs, trace);
  if (!decision.ok) return { ok: false, body: { ip, error: { code: decision.code, message: decision.message } } };
  const { client } = decision;
  return {
    ok: true,
    body: {
      fn: decision.fn,
      org: decision.org,
      client: { ip: client.ip, country: client.country, city: client.city, lat: client.lat, lon: client.lon, source: client.source },
      region: decision.candidates[0]!,
      reason: decision.reason,
      ranking: trace,
    },
  };
}
