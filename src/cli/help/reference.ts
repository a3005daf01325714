/** What `edge-router reference` takes (reference-command.ts runs it). */
import { HELP_FLAG, type CommandHelp } from '../flags.js';

export const referenceHelp: CommandHelp = {
  usage: 'edge-router reference [--readme <file>]',
  summary: 'Print the configuration reference (flags, environment variables, defaults) as Markdown, or rewrite its section of a README.',
  flags: [{ name: 'readme', type: 'string', valueName: 'file', description: 'rewrite the section between the reference markers of this file' }, HELP_FLAG],
};
