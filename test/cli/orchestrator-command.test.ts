import { describe, expect, it } from 'vitest';
import { cli } from '../support/cli.js';

describe('edge-router orchestrator', () => {
  it('refuses a listen address that is not an IP address before it starts anything, naming the flag or variable', async () => {
    const fromFlag = await cli(['orchestrator', '--region', 'atl', '--port', '0', '--host', 'notanip']);
    expect(fromFlag.code).toBe(2);
    expect(fromFlag.stderr.split('\n')[0]).toBe('edge-router orchestrator: --host: expected an IP address, got "notanip"');
    const fromEnv = await cli(['orchestrator', '--region', 'atl', '--port', '0'], { env: { EDGE_HOST: 'notanip' } });
    expect(fromEnv.stderr.split('\n')[0]).toBe('edge-router orchestrator: EDGE_HOST: expected an IP address, got "notanip"');
  });

  it.each(['500-100', '100-60001', '0x1-5', '100'])('refuses --cold-start %j before it starts anything, naming the flag', async (range) => {
    const refused = await cli(['orchestrator', '--region', 'atl', '--port', '0', '--cold-start', range]);
    expect(refused.code).toBe(2);
    expect(refused.stderr.split('\n')[0]).toBe(`edge-router orchestrator: --cold-start: expected min-max in ms such as 100-500, at most 60000, got "${range}"`);
  });
});
