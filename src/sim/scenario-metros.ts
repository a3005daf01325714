/**
 * The six client metros every scenario sends from, one or two per continent, each with an
 * obvious nearest region (the one a nearest-routing router must pick for it).
 */
import { CLIENT_METROS, type ClientMetro } from './client-metros.js';

export const SCENARIO_METRO_IDS = ['atlanta', 'seattle', 'sao-paulo', 'london', 'tokyo', 'sydney'] as const;
export type ScenarioMetroId = (typeof SCENARIO_METRO_IDS)[number];

export const NEAREST_REGION: Readonly<Record<ScenarioMetroId, string>> = {
  atlanta: 'atl',
  seattle: 'lax',
  'sao-paulo': 'atl',
  london: 'fra',
  tokyo: 'syd',
  sydney: 'syd',
};

export const SCENARIO_METROS: readonly ClientMetro[] = SCENARIO_METRO_IDS.map((id) => CLIENT_METROS.find((m) => m.id === id)!);

/** The same total rate split evenly over the scenario metros (metro id → req/s). */
export function evenly(rps: number): Record<string, number> {
  return Object.fromEntries(SCENARIO_METROS.map((m) => [m.id, rps / SCENARIO_METROS.length]));
}
