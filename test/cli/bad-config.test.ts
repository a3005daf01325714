/**
 * Sloppy and hostile flags and environment variables (configuration-error audit): each is refused in
 * one line naming the flag or variable and what is expected, the same for `validate` and `router`,
 * or read as the operator meant it; never a stack trace, never a start that cannot work.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseFlags } from '../../src/cli/flags.js';
import { prewarmToken } from '../../src/cli/prewarm-token.js';
import { orchestratorHelp } from '../../src/cli/help/orchestrator.js';
import { routerHelp } from '../../src/cli/help/router.js';
import { resolveRouterFlags } from '../../src/cli/router-command.js';
import { cli } from '../support/cli.js';
import { redisKeyspace } from '../support/redis-keyspace.js';
import { REDIS_MISSING } from '../support/system-program.js';

const resolveRouter = async (argv: string[], env: NodeJS.ProcessEnv = {}) => resolveRouterFlags(parseFlags(argv, routerHelp.flags, env));

describe('an empty certificate flag', () => {
  it.each([
    [['--tls-cert=', '--tls-key='], {}, '--tls-cert: expected a path to a PEM certificate, got ""'],
    [['--tls-dir='], {}, '--tls-dir: expected a path to a directory of <name>.crt + <name>.key pairs, got ""'],
    [[], { EDGE_TLS_CERT: ' ', EDGE_TLS_KEY: ' ' }, 'EDGE_TLS_CERT: holds only whitespace (" "): leave it unset or empty for the default, or give a value'],
  ])('%j %j is refused by validate as the router refuses it, naming the flag', async (argv, env, message) => {
    // validate said "ok" for these (no certificate line at all) and exited 0; the router then refused
    // to start with "TLS: no certificate: …", or " : file not found", naming neither flag nor variable.
    const validate = await cli(['validate', ...argv], { env });
    expect({ code: validate.code, stdout: validate.stdout, stderr: validate.stderr }).toEqual({ code: 2, stdout: '', stderr: `edge-router validate: ${message}\n` });
    await expect(resolveRouter(argv, env)).rejects.toThrow(message);
  });
});

describe('environment variables with surrounding whitespace (a Kubernetes Secret or an .env file leaves a newline or a space)', () => {
  it('are read without it, as numbers, sizes and switches already were', async () => {
    const bundled = resolve('regions.json');
    const env = { EDGE_REGIONS: `${bundled} `, EDGE_GEOIP: 'none\n', EDGE_LOG_LEVEL: 'info\n', EDGE_PLAIN_HTTP: ' serve', EDGE_BIND: '0.0.0.0 ', EDGE_ZONE: 'telnyxcompute.com\n' };
    const { code, stderr } = await cli(['validate', '--dev-cert'], { env });
    // Before: "edge-router validate: /…/regions.json : file not found", the space invisible and the variable unnamed.
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const resolved = await resolveRouter(['--dev-cert'], env);
    expect([resolved.config.shared.regions.file, resolved.config.shared.geoip, resolved.logLevel, resolved.config.plainHttp, resolved.config.bindAddress]).toEqual([bundled, null, 'info', 'serve', '0.0.0.0']);
  });

  // Kept as given, " " made an empty list of trusted proxies that overrode regions.json's (every
  // client behind the balancer taken for the balancer), and a newline a Redis key prefix of its
  // own (an empty directory: every function 404) — both with `validate` passing.
  it.each(['EDGE_HTTPS_PORT', 'EDGE_TRUSTED_PROXIES', 'EDGE_REDIS_PREFIX', 'EDGE_ZONE'])('that hold only whitespace are refused, naming the variable, not taken as unset or as a value (%s)', async (variable) => {
    const { code, stderr } = await cli(['validate', '--dev-cert'], { env: { [variable]: ' \n' } });
    expect({ code, stderr }).toEqual({ code: 2, stderr: `edge-router validate: ${variable}: holds only whitespace (" \\n"): leave it unset or empty for the default, or give a value\n` });
  });

  it('a Redis key prefix with a space or a control character in it is refused', async () => {
    const { code, stderr } = await cli(['validate', '--dev-cert', '--redis-prefix', 'edge:\n']);
    expect({ code, stderr }).toEqual({ code: 2, stderr: 'edge-router validate: --redis-prefix: expected a prefix of visible ASCII characters (no spaces), got "edge:\\n"\n' });
  });
});

describe('a Redis URL with a leading space', () => {
  it('is refused in one line naming the flag, not an "unexpected error" with a stack trace and exit 1', async () => {
    for (const command of ['validate', 'router']) {
      const { code, stderr } = await cli([command, '--dev-cert', '--workers', '1', '--redis', ' redis://127.0.0.1:1']);
      expect(stderr, command).not.toMatch(/unexpected error|\n\s+at /);
      expect(code, command).toBe(2);
      expect(stderr.split('\n')[0], command).toBe(`edge-router ${command}: --redis: expected redis://[:password@]host:port[/db] or rediss://…, got " redis://127.0.0.1:1"`);
    }
  });
});

describe('the pre-warm token', () => {
  it('is read without surrounding whitespace: with it, the router sent "Bearer <token> " and every orchestrator answered 401, silently', () => {
    const token = (argv: string[], env: NodeJS.ProcessEnv = {}) => prewarmToken(parseFlags(argv, routerHelp.flags, env));
    expect(token(['--prewarm-token', 'abcdefghijklmnopq '])).toEqual({ prewarmToken: 'abcdefghijklmnopq' });
    expect(token([], { EDGE_PREWARM_TOKEN: 'abcdefghijklmnopq\n' })).toEqual({ prewarmToken: 'abcdefghijklmnopq' });
  });

  it('is refused at start when no header could carry it (undici refused each pre-warm, and the error was swallowed)', () => {
    const token = (argv: string[]) => () => prewarmToken(parseFlags(argv, routerHelp.flags, {}));
    expect(token(['--prewarm-token', 'abcdefgh\nijklmnopq'])).toThrow('--prewarm-token: expected a token of visible ASCII characters (no spaces), found a control character at character 9');
    expect(token(['--prewarm-token', 'abcdefgh ijklmnopq'])).toThrow('--prewarm-token: expected a token of visible ASCII characters (no spaces), found whitespace at character 9');
    expect(token(['--prewarm-token', 'abcdefgh€ijklmnopq'])).toThrow('--prewarm-token: expected a token of visible ASCII characters (no spaces), found a non-ASCII character at character 9');
  });
});

describe('the pre-warm token file (a mounted secret: an environment value shows in docker inspect)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-prewarm-file-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'prewarm-token');
  writeFileSync(file, 'file-token-0123456789abcdef\n');
  const token = (argv: string[], env: NodeJS.ProcessEnv = {}) => () => prewarmToken(parseFlags(argv, routerHelp.flags, env));

  it('is read without its newline, from the flag or the variable, by routers and orchestrators alike', () => {
    expect(token(['--prewarm-token-file', file])()).toEqual({ prewarmToken: 'file-token-0123456789abcdef' });
    expect(token([], { EDGE_PREWARM_TOKEN_FILE: file })()).toEqual({ prewarmToken: 'file-token-0123456789abcdef' });
    expect(prewarmToken(parseFlags([], orchestratorHelp.flags, { EDGE_PREWARM_TOKEN_FILE: file }))).toEqual({ prewarmToken: 'file-token-0123456789abcdef' });
  });

  it('follows the admin token\'s rule: a flag beats the environment, both at one level is refused', () => {
    expect(token(['--prewarm-token', 'flag-token-0123456789abcdef'], { EDGE_PREWARM_TOKEN_FILE: file })()).toEqual({ prewarmToken: 'flag-token-0123456789abcdef' });
    expect(token(['--prewarm-token-file', file], { EDGE_PREWARM_TOKEN: 'env-token-0123456789abcdef' })()).toEqual({ prewarmToken: 'file-token-0123456789abcdef' });
    expect(token(['--prewarm-token', 'flag-token-0123456789abcdef', '--prewarm-token-file', file])).toThrow('--prewarm-token and --prewarm-token-file both give the pre-warm token: give one of them');
    expect(token([], { EDGE_PREWARM_TOKEN: 'env-token-0123456789abcdef', EDGE_PREWARM_TOKEN_FILE: file })).toThrow('EDGE_PREWARM_TOKEN and EDGE_PREWARM_TOKEN_FILE both give the pre-warm token: give one of them');
  });

  it('names the file it cannot read or whose token is unfit, never the token, even one given in place of the path', () => {
    expect(token(['--prewarm-token-file', join(dir, 'missing')])).toThrow(`${join(dir, 'missing')}: cannot read the pre-warm token (ENOENT)`);
    const short = join(dir, 'short');
    writeFileSync(short, 'tiny\n');
    expect(token(['--prewarm-token-file', short])).toThrow(`${short}: expected at least 16 characters`);
    const refusal = (() => {
      try {
        token([], { EDGE_PREWARM_TOKEN_FILE: 'not-a-path-but-a-token-0123456789' })();
        return '';
      } catch (err) {
        return (err as Error).message;
      }
    })();
    expect(refusal).toMatch(/^EDGE_PREWARM_TOKEN_FILE: cannot read the pre-warm token file \(ENOENT\); its value is not shown/);
    expect(refusal).not.toContain('not-a-path-but-a-token');
    // The pre-warm token takes any visible ASCII character.
    expect(token([], { EDGE_PREWARM_TOKEN_FILE: 'Sup3r!Secret#Prewarm$Token' })).toThrow(/^EDGE_PREWARM_TOKEN_FILE: cannot read the pre-warm token file \(ENOENT\); its value is not shown/);
    expect(token(['--prewarm-token-file', ''])).toThrow('--prewarm-token-file: expected the path of a file holding the pre-warm token, got ""');
  });
});

describe.skipIf(REDIS_MISSING)('a Redis database the server does not have', () => {
  const { url, prefix } = redisKeyspace('bad-config');

  it('is refused by validate, naming it; Redis refuses SELECT and ioredis went on in database 0', async () => {
    const base = new URL(url);
    base.pathname = '/99999';
    const { code, stdout, stderr } = await cli(['validate', '--dev-cert', '--redis', base.toString(), '--redis-prefix', prefix]);
    expect({ code, stdout }).toEqual({ code: 2, stdout: '' });
    expect(stderr).toMatch(/^edge-router validate: Redis at redis:\/\/.*\/99999 has no database 99999 \(ERR DB index is out of range\): check the database number in --redis$/m);
  });
});
