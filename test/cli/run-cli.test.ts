import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cli } from '../support/cli.js';

describe('edge-router (top level)', () => {
  it('says its version, from the package, with --version, -V or version', async () => {
    const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    for (const flag of ['--version', '-V', 'version']) {
      const { code, stdout } = await cli([flag]);
      expect(code).toBe(0);
      expect(stdout).toBe(`edge-router ${version} (node ${process.version})\n`);
    }
  });

  it('names --version in its help', async () => {
    const { stdout } = await cli(['--help']);
    expect(stdout).toContain('edge-router --version');
  });
});
