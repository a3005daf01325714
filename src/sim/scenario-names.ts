/**
 * The names of `edge-router sim`'s scenarios, apart from the scenarios themselves (scenarios.ts
 * scripts exactly these, which tsc checks): its help lists them without loading the simulation.
 */
export const SCRIPTED_SCENARIOS = ['steady', 'region-outage', 'redis-outage', 'spike', 'drain'] as const;
export type ScriptedScenario = (typeof SCRIPTED_SCENARIOS)[number];

/** Every scenario `edge-router sim` runs: the scripted ones, then the two routing comparisons. */
export const SCENARIO_NAMES: readonly string[] = [...SCRIPTED_SCENARIOS, 'steady-compare', 'long-tail'];
