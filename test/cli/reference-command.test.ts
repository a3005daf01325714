import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { routerHelp } from '../../src/cli/router-command.js';
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
