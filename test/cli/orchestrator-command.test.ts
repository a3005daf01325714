import { PassThrough, Readable } from 'node:stream';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/run-cli.js';
import { cli } from '../support/cli.js';
import { until } from '../support/until.js';

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

  it('cuts a function at the --timeout-extended it is given, as the router waits for it (not at its own 60 s)', async () => {
    const stderr = new PassThrough();
    let err = '';
    stderr.on('data', (c: Buffer) => (err += c.toString()));
    const stop = new AbortController();
    const argv = ['orchestrator', '--region', 'fra', '--port', '0', '--cold-start', '0-0', '--ms-per-100km', '0', '--timeout-extended', '1000'];
    const running = runCli(argv, { stdout: new PassThrough(), stderr, stdin: Readable.from([]), env: {}, signal: stop.signal });
    try {
      await until('listening', () => err.includes('"event":"listening"'), 10_000);
      const { port } = JSON.parse(err.split('\n').find((line) => line.includes('"event":"listening"'))!) as { port: number };
      const started = performance.now();
      const answer = await request(`http://127.0.0.1:${port}/?ms=3000`, { headers: { 'x-edge-fn': 'slow', 'x-edge-org': 'demo' } });
      expect(JSON.parse(await answer.body.text())).toMatchObject({ error: { code: 'function_timeout' } });
      expect(answer.statusCode).toBe(504);
      expect(performance.now() - started).toBeLessThan(2_500);
    } finally {
      stop.abort();
      expect(await running).toBe(0);
    }
  }, 20_000);
});
