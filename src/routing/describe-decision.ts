/**
 * The routing decision as operators read it (`edge-router explain`, the admin API's
 * `/api/route`): function, client location, chosen region, reason and the full ranking.
 */
import { isIP } from 'node:net';
import type { RegistrySnapshot } from '../core/types.js';
import type { RegionTrace } from './pick-region.js';
import type { RouteDecider } from './route-decider.js';
import type { AnswerEstimate } from './estimate-answer.js';

const round1 = (ms: number) => Math.round(ms * 10) / 10;

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
        /** With latency routing: each reorderable region's expected time to answer and its parts (ms). */
        estimates?: Array<{ region: string; expectedMs: number; rttMs: number; idleWarm: number; coldStartMs: number }>;
        /** The function hedges and the pick is cold: the warm region a copy would race from, and after how long. */
        hedge?: { region: string; afterMs: number };
      };
    }
  | { readonly ok: false; readonly body: { ip?: string; error: { code: string; message: string } } };

export function describeDecision(decider: RouteDecider, snapshot: RegistrySnapshot, host: string, ip: string, nowMs: number): DescribedDecision {
  if (isIP(ip) === 0) return { ok: false, body: { ip, error: { code: 'invalid_ip', message: 'not an IPv4 or IPv6 address' } } };
  const trace: RegionTrace[] = [];
  const estimates: AnswerEstimate[] = [];
  const decision = decider.decide(host, ip, snapshot, nowMs, trace, estimates);
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
      ...(decision.hedge === undefined ? {} : { hedge: { ...decision.hedge } }),
      ...(estimates.length === 0
        ? {}
        : {
            estimates: estimates.map((e) => ({
              region: e.region,
              expectedMs: round1(e.expectedMs),
              rttMs: round1(e.rttMs),
              idleWarm: e.idleWarm,
              coldStartMs: round1(e.coldStartMs),
            })),
          }),
    },
  };
}
