import { mkdtemp, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from '../support/cli.js';

describe('edge-router geo build-sim', () => {
  it('writes the database where --out says', async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'edge-geo-')), 'sim.mmdb');
    const { code, stdout } = await cli(['geo', 'build-sim', '--out', out]);
    expect(code).toBe(0);
    expect(stdout).toMatch(new RegExp(`^wrote ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
    expect((await stat(out)).size).toBeGreaterThan(0);
  });

  it('names a file it cannot write in one line, exit 2', async () => {
    const result = await cli(['geo', 'build-sim', '--out', '/nonexistent/dir/x.mmdb']);
    expect(result).toEqual({ code: 2, stdout: '', stderr: 'edge-router geo: /nonexistent/dir/x.mmdb: cannot write (ENOENT)\n' });
  });
});
