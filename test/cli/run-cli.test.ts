import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
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

describe('edge-router, when a port is taken', () => {
  it('says which address is in use and what to do, and exits 2', async () => {
    const taken = createServer().listen(0, '127.0.0.1');
    await once(taken, 'listening');
    const port = (taken.address() as { port: number }).port;
    try {
      const { code, stderr } = await cli(['router', '--dev-cert', '--workers', '1', '--bind', '127.0.0.1', '--https-port', String(port), '--http-port', '0', '--admin-port', '0']);
      expect(code).toBe(2);
      expect(stderr).toBe(`edge-router router: 127.0.0.1:${port} is already in use (another edge-router, or another program): free it, or choose other ports (edge-router router --help lists the --*-port flags)\n`);
    } finally {
      taken.close();
    }
  });
});
