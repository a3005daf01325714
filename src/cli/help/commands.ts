/**
 * Every command's help, in the order `edge-router --help` lists them and the configuration
 * reference documents them: one list, read by run-cli.ts (which pairs each with its loader) and by
 * reference-command.ts (which run-cli loads, so it cannot read run-cli's table).
 */
import type { CommandHelp } from '../flags.js';
import { explainHelp } from './explain.js';
import { geoHelp } from './geo.js';
import { orchestratorHelp } from './orchestrator.js';
import { probeHelp } from './probe.js';
import { referenceHelp } from './reference.js';
import { registryHelp } from './registry.js';
import { routerHelp } from './router.js';
import { schemaHelp } from './schema.js';
import { simHelp } from './sim.js';
import { startHelp } from './start.js';
import { validateHelp } from './validate.js';

export const COMMAND_HELPS = [
  ['router', routerHelp],
  ['start', startHelp],
  ['orchestrator', orchestratorHelp],
  ['validate', validateHelp],
  ['explain', explainHelp],
  ['probe', probeHelp],
  ['registry', registryHelp],
  ['geo', geoHelp],
  ['sim', simHelp],
  ['schema', schemaHelp],
  ['reference', referenceHelp],
] as const satisfies ReadonlyArray<readonly [string, CommandHelp]>;

export type CommandName = (typeof COMMAND_HELPS)[number][0];
