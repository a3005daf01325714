import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import { SimTopology } from '../../src/sim/topology.js';

describe('SimTopology', () => {
  it.each([
    ['malformed JSON', '{"regions": [', /regions\.json: not valid JSON at line 1, column \d+: /],
    ['no regions', '{"defaultRegion": "nyc"}', /regions\.json: regions: /],
  ])('refuses a package regions.json with %s, naming the file and what is wrong, before starting anything', async (_name, text, message) => {
    const root = await mkdtemp(join(tmpdir(), 'sim-topology-'));
    await writeFile(join(root, 'regions.json'), text);
    const started = SimTopology.start({ root });
    await expect(started).rejects.toBeInstanceOf(ConfigError);
    await expect(started).rejects.toThrow(message);
  });
});
