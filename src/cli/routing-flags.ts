/** The routing-mode flags, shared by `router` (and `start`) and `explain`, so both decide alike. */
import type { RoutingMode } from '../routing/route-decider.js';
import { sourceOf, valueOf, type FlagSpec, type ParsedFlags } from './flags.js';
import { parseChoice, parseDecimal, parseInteger } from './parse-values.js';

export const ROUTING_FLAGS: readonly FlagSpec[] = [
  {
    name: 'routing',
    type: 'string',
    env: 'EDGE_ROUTING',
    valueName: 'latency|nearest',
    default: 'latency',
    description: 'latency: of the regions with room, the one expected to answer first, counting cold starts; nearest: distance, health and load only',
  },
  {
    name: 'routing-ms-per-100km',
    type: 'string',
    env: 'EDGE_ROUTING_MS_PER_100KM',
    valueName: 'ms',
    default: '1',
    description: 'round-trip cost of 100 km of distance, for --routing latency and hedging',
  },
  {
    name: 'hedge-delay',
    type: 'string',
    env: 'EDGE_HEDGE_DELAY_MS',
    valueName: 'ms',
    default: '50',
    description: "hedging (functions deployed with hedging on): wait the pick's round trip plus this long for an answer before racing it from a warm region",
  },
];

export interface RoutingSettings {
  readonly routing: RoutingMode;
  readonly msPer100Km: number;
  readonly hedgeDelayMs: number;
}

export function routingSettings(flags: ParsedFlags): RoutingSettings {
  const routing = parseChoice(valueOf(flags, 'routing'), sourceOf(flags, 'routing'), ['nearest', 'latency'] as const);
  const msPer100Km = parseDecimal(valueOf(flags, 'routing-ms-per-100km'), sourceOf(flags, 'routing-ms-per-100km'), 0, 1_000, 'a number of ms');
  const hedgeDelayMs = parseInteger(valueOf(flags, 'hedge-delay'), sourceOf(flags, 'hedge-delay'), 0, 10_000, 'a whole number of ms');
  return { routing, msPer100Km, hedgeDelayMs };
}
