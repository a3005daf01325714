/**
 * A one-shot command whose registry read or write Redis refuses for a moment (LOADING while it
 * loads its dataset, BUSY behind a long script) cannot reach the registry just now: it says so as
 * `registry_unreachable` (exit 2, one line naming Redis's reply, or explain's JSON error), as it
 * does when Redis cannot be reached at all. Before, Redis's reply passed as it was, taken for a
 * fault: exit 1 and a stack.
 *
 * Real Redis (its own redis-server: ../support/redis-refusal.ts); each refusal begins once the
 * command is connected, as it calls the registry, and ends once Redis has answered that call.
 */
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { RedisRegistry } from '../../src/registry/redis-registry.js';
import { cli, type CliResult } from '../support/cli.js';
import { BUSY, LOADING, startRefusingRedis, type Refusal, type RefusingRedis } from '../support/redis-refusal.js';
import { REDIS_MISSING } from '../support/system-program.js';

const HOST = 'api-acme.telnyxcompute.com';

describe.skipIf(REDIS_MISSING)('one-shot commands whose registry call Redis refuses for a moment (own redis-server)', () => {
  let redis: RefusingRedis | undefined;
  let admin: Redis;
  let probe: Redis;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    redis = await startRefusingRedis();
    admin = new Redis(redis.server.url);
    probe = new Redis(redis.server.url);
    env = { REDIS_URL: redis.server.url, EDGE_REDIS_PREFIX: `test:${randomUUID()}:` };
    // Something to export, and to explain: acme/api, deployed everywhere.
    expect((await cli(['registry', 'deploy', '--org', 'acme', '--fn', 'api', '--regions', 'fra,nyc,atl,lax,syd'], { env })).code).toBe(0);
  });
  afterAll(async () => {
    admin?.disconnect();
    probe?.disconnect();
    await redis?.stop();
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  /**
   * Begins `refusal` when a command's registry makes `call` (after it has connected), and ends it
   * once Redis has answered: Redis itself refuses the call. Returns how many calls were refused.
   */
  function refuse(call: 'readState' | 'updateOverrides', refusal: Refusal): () => number {
    const original = RedisRegistry.prototype[call] as (...args: unknown[]) => Promise<unknown>;
    let refused = 0;
    // On the prototype: a registry takes its calls from there when it is made, inside the command.
    vi.spyOn(RedisRegistry.prototype, call).mockImplementation(async function (this: RedisRegistry, ...args: unknown[]) {
      refused++;
      const end = await refusal.begin(admin, probe);
      try {
        return await original.apply(this, args);
      } finally {
        await end();
      }
    } as never);
    return () => refused;
  }

  /** One line on stderr naming Redis's reply as registry_unreachable does, exit 2, nothing on stdout, no stack. */
  function expectOneLineRefusal(result: CliResult, command: string, refusal: Refusal): void {
    expect(result.stderr).not.toMatch(/unexpected error|^\s+at /m);
    expect(result).toEqual({ code: 2, stdout: '', stderr: expect.stringMatching(new RegExp(`^edge-router ${command}: Redis [^\\n]* \\(${refusal.word}\\); try again\\n$`)) });
  }

  it.each([LOADING, BUSY])('registry status refused $name mid-read: registry_unreachable, one line naming the reply, exit 2', async (refusal) => {
    const refused = refuse('readState', refusal);
    const result = await cli(['registry', 'status'], { env });
    expect(refused()).toBe(1);
    expectOneLineRefusal(result, 'registry', refusal);

    vi.restoreAllMocks();
    expect((await cli(['registry', 'status', '--json'], { env })).code).toBe(0);
  }, 20_000);

  it.each([LOADING, BUSY])('registry export refused $name mid-read: registry_unreachable, one line, nothing written, exit 2', async (refusal) => {
    const dir = await mkdtemp(join(tmpdir(), 'edge-router-refused-export-'));
    const out = join(dir, 'backup.json');
    const refused = refuse('readState', refusal);
    const result = await cli(['registry', 'export', '--out', out], { env });
    expect(refused()).toBe(1);
    expectOneLineRefusal(result, 'registry', refusal);
    expect(await readdir(dir)).toEqual([]);

    vi.restoreAllMocks();
    expect(await cli(['registry', 'export', '--out', out], { env })).toMatchObject({ code: 0, stderr: expect.stringContaining(`to ${out}`) });
  }, 20_000);

  it.each([LOADING, BUSY])('explain --redis refused $name mid-read: its JSON error, registry_unreachable naming the reply, exit 2', async (refusal) => {
    const argv = ['explain', '--host', HOST, '--ip', '127.8.1.2', '--json'];
    const refused = refuse('readState', refusal);
    const result = await cli(argv, { env });
    expect(refused()).toBe(1);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(2);
    expect(JSON.parse(result.stdout)).toEqual({
      error: { code: 'registry_unreachable', message: expect.stringMatching(new RegExp(`^Redis .* \\(${refusal.word}\\); try again$`)) },
    });

    vi.restoreAllMocks();
    expect(JSON.parse((await cli(argv, { env })).stdout)).toMatchObject({ fn: 'api', org: 'acme' });
  }, 20_000);

  it.each([LOADING, BUSY])('validate --redis refused $name mid-read: one problem line among the others, exit 2', async (refusal) => {
    // validate names every problem in one run (a registry it cannot reach among them): a refusal
    // of the moment is one more problem, not the only line with the others dropped.
    const argv = ['validate', '--geoip', '/nonexistent.mmdb'];
    const refused = refuse('readState', refusal);
    const result = await cli(argv, { env });
    expect(refused()).toBe(1);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).not.toMatch(/unexpected error|^\s+at /m);
    expect(result.stderr).toMatch(/^edge-router validate: no certificate: /m);
    expect(result.stderr).toMatch(/^edge-router validate: --geoip: \/nonexistent\.mmdb: file not found$/m);
    expect(result.stderr).toMatch(new RegExp(`^edge-router validate: Redis [^\\n]* \\(${refusal.word}\\); try again$`, 'm'));
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(3);
  }, 20_000);

  it.each([LOADING, BUSY])('registry drain refused $name at its write: registry_unreachable, one line naming the reply, exit 2', async (refusal) => {
    const refused = refuse('updateOverrides', refusal);
    const result = await cli(['registry', 'drain', 'nyc'], { env });
    expect(refused()).toBe(1);
    expectOneLineRefusal(result, 'registry', refusal);

    vi.restoreAllMocks();
    expect(await cli(['registry', 'undrain', 'nyc'], { env })).toMatchObject({ code: 0, stdout: 'nyc: undrained\n' });
  }, 20_000);

  /**
   * Runs `use` with the URL of a Redis user the ACL `rules` allow (and its password, which no
   * output may carry); the user is deleted afterwards.
   */
  async function asAclUser<T>(rules: readonly string[], use: (url: string, password: string) => Promise<T>): Promise<T> {
    const user = `acl-${randomUUID().slice(0, 8)}`;
    const password = `pw-${randomUUID()}`;
    await admin.call('ACL', 'SETUSER', user, 'on', `>${password}`, '~*', '&*', ...rules);
    try {
      const url = new URL(redis!.server.url);
      url.username = user;
      url.password = password;
      return await use(url.toString(), password);
    } finally {
      await admin.call('ACL', 'DELUSER', user);
    }
  }

  // A refusal that lasts until an operator acts (an ACL's NOPERM here; OOM and MISCONF alike) is
  // not "try again": registry_refused, one line in Redis's words, exit 2, and still no stack.
  it('registry drain refused NOPERM by an ACL: registry_refused, one line in Redis\'s words, no "try again", exit 2', async () => {
    await asAclUser(['+@all', '-@write'], async (url, password) => {
      const result = await cli(['registry', 'drain', 'nyc'], { env: { ...env, REDIS_URL: url } });
      expect(result.stderr).not.toMatch(/unexpected error|^\s+at |try again/m);
      expect(result.stderr).not.toContain(password);
      expect(result).toEqual({ code: 2, stdout: '', stderr: expect.stringMatching(/^edge-router registry: Redis refused the command: [^\n]*NOPERM[^\n]*\n$/) });
    });
    // Nothing was written: nyc is not drained.
    expect((await cli(['registry', 'status', '--json'], { env })).stdout).not.toMatch(/"drained":\s*true/);
  }, 20_000);

  // explain --json has one shape for a read that failed, whatever failed it.
  it('explain --redis refused NOPERM by an ACL: its JSON error, registry_refused in Redis\'s words, exit 2', async () => {
    await asAclUser(['+@all', '-@read'], async (url, password) => {
      const result = await cli(['explain', '--host', HOST, '--ip', '127.8.1.2', '--json'], { env: { ...env, REDIS_URL: url } });
      expect(result.stderr).toBe('');
      expect(result.code).toBe(2);
      expect(result.stdout).not.toContain(password);
      expect(JSON.parse(result.stdout)).toEqual({ error: { code: 'registry_refused', message: expect.stringMatching(/^Redis refused the command: .*NOPERM/) } });
    });
  }, 20_000);
});
