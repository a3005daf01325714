import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { registryHelp } from '../../src/cli/help/registry.js';
import { routerHelp } from '../../src/cli/help/router.js';
import { simHelp } from '../../src/cli/help/sim.js';
import { startHelp } from '../../src/cli/help/start.js';
import { configurationReference, REFERENCE_BEGIN, REFERENCE_END, withReference } from '../../src/cli/reference-command.js';
import { cli } from '../support/cli.js';

describe('the configuration reference', () => {
  it('in README.md is the one the flag definitions generate (else run `npm run docs:flags`)', () => {
    const readme = readFileSync('README.md', 'utf8');
    const section = readme.slice(readme.indexOf(REFERENCE_BEGIN), readme.indexOf(REFERENCE_END) + REFERENCE_END.length);
    expect(section).toBe(configurationReference());
  });

  it('lists every router flag with its environment variable', () => {
    const reference = configurationReference();
    for (const flag of routerHelp.flags.filter((f) => f.name !== 'help')) {
      expect(reference).toContain(`\`--${flag.name}`);
      if (flag.env !== undefined) expect(reference).toContain(`\`${flag.env}\``);
    }
  });

  it("says which router flags start does not take, and the defaults start changes", () => {
    // Before: "`edge-router router` (and `start`, which runs one with the simulation)", and start
    // refused --workers and --bind as unknown options, and logged at warn, not info.
    const reference = configurationReference();
    const startLine = reference.split('\n').find((l) => l.startsWith('`edge-router start`'));
    expect(startLine).toBeDefined();
    const startFlags = new Set(startHelp.flags.map((f) => f.name));
    const refused = routerHelp.flags.filter((f) => !startFlags.has(f.name));
    expect(refused.map((f) => f.name)).toEqual(expect.arrayContaining(['workers', 'bind']));
    for (const flag of refused) expect(startLine).toContain(`\`--${flag.name}\``);
    expect(startLine).toContain('`--log-level` warn');
  });

  it('names the commands that take the shared flags, not "every command"', () => {
    const reference = configurationReference();
    const sharedLine = reference.split('\n').find((l) => l.startsWith('Shared flags'));
    expect(sharedLine).not.toContain('every command');
    expect(sharedLine).toContain('`router`');
    // sim takes none of them; registry takes --regions-file, as --regions is its list of regions.
    expect(simHelp.flags.some((f) => f.name === 'regions')).toBe(false);
    expect(sharedLine).not.toContain('`sim`');
    expect(registryHelp.flags.some((f) => f.name === 'regions-file')).toBe(true);
    expect(sharedLine).toContain('`registry` (all but `--regions`, which it names `--regions-file`)');
  });

  it('replaces only the marked section of a file', () => {
    const text = `before\n${REFERENCE_BEGIN}\nstale\n${REFERENCE_END}\nafter\n`;
    expect(withReference(text, 'NEW')).toBe('before\nNEW\nafter\n');
    expect(() => withReference('no markers', 'NEW')).toThrow(/no configuration reference markers/);
  });

  it('names a README it cannot read in one line, exit 2', async () => {
    const result = await cli(['reference', '--readme', 'missing.md']);
    expect(result).toEqual({ code: 2, stdout: '', stderr: 'edge-router reference: missing.md: cannot read (ENOENT)\n' });
  });
});
