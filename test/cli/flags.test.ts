import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultShown, formatHelp, parseFlags, type FlagSpec } from '../../src/cli/flags.js';
import { routerHelp } from '../../src/cli/help/router.js';
import { resolveRouterFlags } from '../../src/cli/router-command.js';
import { DEFAULT_CLIENT_BOUNDS, ROUTER_FLAGS } from '../../src/cli/router-flags.js';
import { UsageError } from '../../src/core/errors.js';
import { cli } from '../support/cli.js';

const SPECS: FlagSpec[] = [
  { name: 'port', type: 'string', env: 'T_PORT', default: '8443', description: 'a port' },
  { name: 'zone', type: 'string', env: 'T_ZONE', defaultText: 'the regions file, else example.com', description: 'a zone' },
  { name: 'verbose', type: 'boolean', description: 'more' },
];

describe('flags as one table', () => {
  it('applies a default when neither the flag nor its env variable gives a value, and says where each value came from', () => {
    const none = parseFlags([], SPECS, {});
    expect(none.values.get('port')).toBe('8443');
    expect(none.sources.get('port')).toBe('default');
    expect(none.values.has('zone')).toBe(false);
    const env = parseFlags([], SPECS, { T_PORT: '9443', T_ZONE: '' });
    expect([env.values.get('port'), env.sources.get('port')]).toEqual(['9443', 'T_PORT']);
    const flag = parseFlags(['--port', '7443'], SPECS, { T_PORT: '9443' });
    expect([flag.values.get('port'), flag.sources.get('port')]).toEqual(['7443', '--port']);
  });

  it('refuses a list flag given twice (the first list was dropped unread), and takes the last of another flag given twice', async () => {
    const specs: FlagSpec[] = [...SPECS, { name: 'hosts', type: 'string', list: true, description: 'comma-separated names' }, { name: 'ip', type: 'string', multiple: true, description: 'an address' }];
    expect(() => parseFlags(['--hosts', 'a', '--hosts=b'], specs, {})).toThrow(new UsageError('--hosts given more than once: give its values in one, comma-separated (--hosts a,b)'));
    expect(parseFlags(['--hosts', 'a,b'], specs, {}).values.get('hosts')).toBe('a,b');
    // A wrapper's default, then the caller's: the last one, as command lines go.
    expect(parseFlags(['--port', '1', '--port', '2'], specs, {}).values.get('port')).toBe('2');
    expect(parseFlags(['--ip', 'a', '--ip', 'b'], specs, {}).values.get('ip')).toEqual(['a', 'b']);
    // As a user met it: `registry deploy --regions fra --regions nyc` deployed to nyc alone.
    const { code, stderr } = await cli(['registry', 'deploy', '--redis', 'redis://127.0.0.1:1', '--org', 'o', '--fn', 'f', '--regions', 'fra', '--regions', 'nyc']);
    expect({ code, firstLine: stderr.split('\n')[0] }).toEqual({ code: 2, firstLine: 'edge-router registry: --regions given more than once: give its values in one, comma-separated (--regions a,b)' });
    for (const flag of ['--trusted-proxies', '--admin-allowed-hosts', '--proxy-protocol-from', '--redis-sentinels']) {
      expect(() => parseFlags([flag, 'a', flag, 'b'], routerHelp.flags, {}), flag).toThrow(UsageError);
    }
  });

  it('shows in help the default parsing applies, or the words for one worked out elsewhere', () => {
    expect(defaultShown(SPECS[0]!)).toBe('8443');
    expect(defaultShown(SPECS[1]!)).toBe('the regions file, else example.com');
    expect(formatHelp({ usage: 'u', summary: 's', flags: SPECS })).toContain('a port [env T_PORT; default: 8443]');
  });

  it('the router runs on exactly the defaults its help shows', async () => {
    const resolved = await resolveRouterFlags(parseFlags(['--dev-cert'], routerHelp.flags, {}));
    const shown = (name: string) => ROUTER_FLAGS.find((f) => f.name === name)!.default!;
    expect(resolved.config.httpsPort).toBe(Number(shown('https-port')));
    expect(resolved.config.adminPort).toBe(Number(shown('admin-port')));
    expect(resolved.config.maxAttempts).toBe(Number(shown('max-attempts')));
    expect(resolved.config.tierTimeoutMs.standard).toBe(Number(shown('timeout-standard')));
    expect(resolved.config.unknownFunctions).toBe(shown('unknown-functions'));
    expect(resolved.config.limits.maxHeaderBytes).toBe(16 * 1024);
    expect(shown('max-header-size')).toBe('16KiB');
    // The client bounds the help shows are the ones the router is built with when none is given.
    expect(resolved.config.clientBounds).toMatchObject({ ...DEFAULT_CLIENT_BOUNDS, pace: { ...DEFAULT_CLIENT_BOUNDS.pace } });
  });

  it('gives every router flag a value or the words for one, except those that are off unless given', () => {
    const withoutDefault = ROUTER_FLAGS.filter((f) => f.type === 'string' && defaultShown(f) === '').map((f) => f.name);
    expect(withoutDefault).toEqual(['admin-token-file', 'tls-cert', 'tls-key', 'tls-dir', 'proxy-protocol-from', 'prewarm-token-file']);
  });
});

describe('admin token file', () => {
  it('names the flag when its path is empty, rather than an empty file name', async () => {
    await expect(resolveRouterFlags(parseFlags(['--dev-cert', '--admin-token-file', ''], routerHelp.flags, {}))).rejects.toThrow('--admin-token-file: expected the path of a file holding the admin token, got ""');
  });
});

describe('admin token sources', () => {
  const FLAG_TOKEN = 'flag-token-0123456789';
  const ENV_TOKEN = 'env-token-0123456789';
  const FILE_TOKEN = 'file-token-0123456789';
  const tokenOf = async (argv: string[], env: NodeJS.ProcessEnv = {}) =>
    (await resolveRouterFlags(parseFlags(['--dev-cert', ...argv], routerHelp.flags, env))).config.adminToken;
  const tokenFile = async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'edge-router-admin-token-')), 'token');
    await writeFile(file, `${FILE_TOKEN}\n`);
    return file;
  };

  it('lets a flag of either kind beat the environment of either kind, as flags beat env everywhere', async () => {
    const file = await tokenFile();
    expect(await tokenOf(['--admin-token', FLAG_TOKEN], { EDGE_ADMIN_TOKEN_FILE: file })).toBe(FLAG_TOKEN);
    expect(await tokenOf(['--admin-token-file', file], { EDGE_ADMIN_TOKEN: ENV_TOKEN })).toBe(FILE_TOKEN);
    expect(await tokenOf([], { EDGE_ADMIN_TOKEN_FILE: file })).toBe(FILE_TOKEN);
    expect(await tokenOf([], { EDGE_ADMIN_TOKEN: ENV_TOKEN })).toBe(ENV_TOKEN);
    expect(await tokenOf([])).toBeNull();
  });

  it('refuses a token and a token file from the same level, naming both, rather than picking one', async () => {
    const file = await tokenFile();
    await expect(tokenOf(['--admin-token', FLAG_TOKEN, '--admin-token-file', file])).rejects.toThrow(
      new UsageError('--admin-token and --admin-token-file both give the admin token: give one of them'),
    );
    await expect(tokenOf([], { EDGE_ADMIN_TOKEN: ENV_TOKEN, EDGE_ADMIN_TOKEN_FILE: file })).rejects.toThrow(
      new UsageError('EDGE_ADMIN_TOKEN and EDGE_ADMIN_TOKEN_FILE both give the admin token: give one of them'),
    );
    const { code, stderr } = await cli(['router', '--dev-cert', '--workers', '1'], { env: { EDGE_ADMIN_TOKEN: ENV_TOKEN, EDGE_ADMIN_TOKEN_FILE: file } });
    expect({ code, firstLine: stderr.split('\n')[0] }).toEqual({ code: 2, firstLine: 'edge-router router: EDGE_ADMIN_TOKEN and EDGE_ADMIN_TOKEN_FILE both give the admin token: give one of them' });
  });

  it('drops surrounding whitespace from every source, as a Kubernetes Secret leaves a newline', async () => {
    const file = await tokenFile();
    expect(await tokenOf([], { EDGE_ADMIN_TOKEN: `${ENV_TOKEN}\n` })).toBe(ENV_TOKEN);
    expect(await tokenOf(['--admin-token', ` ${FLAG_TOKEN}\r\n`])).toBe(FLAG_TOKEN);
    expect(await tokenOf(['--admin-token-file', file])).toBe(FILE_TOKEN);
    // Base64 and base64url tokens, padding included, are what clients can send as a Bearer token.
    expect(await tokenOf([], { EDGE_ADMIN_TOKEN: 'aB3+/x_y-z.w~0123456==' })).toBe('aB3+/x_y-z.w~0123456==');
  });

  it('refuses at start a token no Authorization header could carry, naming where it came from and never the token', async () => {
    const expected = 'expected an admin token of letters, digits and - . _ ~ + / only (then any = padding), as an HTTP Bearer token allows (RFC 6750)';
    await expect(tokenOf([], { EDGE_ADMIN_TOKEN: 'correct horse battery staple' })).rejects.toThrow(new UsageError(`EDGE_ADMIN_TOKEN: ${expected}; found whitespace at character 8`));
    await expect(tokenOf(['--admin-token', 'pässwört-0123456789'])).rejects.toThrow(new UsageError(`--admin-token: ${expected}; found a non-ASCII character at character 2`));
    await expect(tokenOf(['--admin-token', 'abc=def0123456789012'])).rejects.toThrow(new UsageError(`--admin-token: ${expected}; found "=" before the end at character 4`));
    await expect(tokenOf(['--admin-token', 'abc,def0123456789012'])).rejects.toThrow(new UsageError(`--admin-token: ${expected}; found "," at character 4`));
    const file = join(await mkdtemp(join(tmpdir(), 'edge-router-admin-token-')), 'token');
    await writeFile(file, 'line-one-0123456789\nline-two\n');
    await expect(tokenOf(['--admin-token-file', file])).rejects.toThrow(new UsageError(`${file}: ${expected}; found whitespace at character 20`));
    // Whitespace does not count towards the minimum length.
    await expect(tokenOf([], { EDGE_ADMIN_TOKEN: 'short          \n' })).rejects.toThrow(new UsageError('EDGE_ADMIN_TOKEN: the admin token must be at least 16 characters'));
  });
});

describe('admin allowed hosts', () => {
  it('takes host names for token-less public reads, normalised, and names a bad one with its source', async () => {
    const resolve = (argv: string[], env: NodeJS.ProcessEnv = {}) => resolveRouterFlags(parseFlags(['--dev-cert', ...argv], routerHelp.flags, env));
    expect((await resolve(['--admin-allowed-hosts', 'Edge-Admin.internal., prom.example'])).config.adminAllowedHosts).toEqual(['edge-admin.internal', 'prom.example']);
    expect((await resolve([])).config.adminAllowedHosts).toEqual([]);
    await expect(resolve([], { EDGE_ADMIN_ALLOWED_HOSTS: 'ok.example, bad host' })).rejects.toThrow('EDGE_ADMIN_ALLOWED_HOSTS: expected host names such as prometheus-target.internal, got "bad host"');
  });
});

describe('PROXY protocol peers', () => {
  const resolve = (argv: string[], env: NodeJS.ProcessEnv = {}) => resolveRouterFlags(parseFlags(['--dev-cert', ...argv], routerHelp.flags, env));

  it("takes a PROXY header only from the balancer's addresses, which must be given", async () => {
    await expect(resolve(['--proxy-protocol'])).rejects.toThrow(/--proxy-protocol needs --proxy-protocol-from <cidrs>/);
    await expect(resolve(['--proxy-protocol', '--proxy-protocol-from', ' , '])).rejects.toThrow(/needs --proxy-protocol-from/);
    const resolved = await resolve(['--proxy-protocol', '--proxy-protocol-from', '10.0.0.0/8, 2001:db8::/32,192.0.2.1']);
    expect(resolved.proxyProtocolFrom).toEqual(['10.0.0.0/8', '2001:db8::/32', '192.0.2.1']);
    expect((await resolve([])).proxyProtocolFrom).toBeNull();
  });

  it('names where a bad value came from, and refuses peers without the protocol', async () => {
    await expect(resolve([], { EDGE_PROXY_PROTOCOL: '1', EDGE_PROXY_PROTOCOL_FROM: '10.0.0.0/33' })).rejects.toThrow('EDGE_PROXY_PROTOCOL_FROM: expected a CIDR such as 10.0.0.0/8');
    await expect(resolve(['--proxy-protocol', '--proxy-protocol-from', 'lb.internal'])).rejects.toThrow('--proxy-protocol-from: expected a CIDR');
    await expect(resolve(['--proxy-protocol-from', '10.0.0.0/8'])).rejects.toThrow('--proxy-protocol-from applies only with --proxy-protocol');
  });
});

describe('boolean env variables', () => {
  const SWITCH: FlagSpec[] = [{ name: 'proxy-protocol', type: 'boolean', env: 'EDGE_PROXY_PROTOCOL', description: 'a switch' }];
  const valueFrom = (raw: string) => parseFlags([], SWITCH, { EDGE_PROXY_PROTOCOL: raw }).values.get('proxy-protocol');

  it('reads the usual words for on and off, in any case', () => {
    for (const raw of ['1', 'true', 'YES', 'On', ' on ']) expect(valueFrom(raw), raw).toBe(true);
    for (const raw of ['0', 'false', 'No', 'OFF']) expect(valueFrom(raw), raw).toBe(false);
  });

  it('takes an empty variable as unset, like an empty string variable', () => {
    const parsed = parseFlags([], SWITCH, { EDGE_PROXY_PROTOCOL: '' });
    expect(parsed.values.has('proxy-protocol')).toBe(false);
    expect(parsed.sources.has('proxy-protocol')).toBe(false);
  });

  it('refuses any other word instead of reading it as off, naming the variable', () => {
    expect(() => valueFrom('enabled')).toThrow(new UsageError('EDGE_PROXY_PROTOCOL: expected 1/true/yes/on or 0/false/no/off, got "enabled"'));
  });
});

describe('errors about a value name where it came from: the flag, or the env variable', () => {
  const resolve = (argv: string[], env: NodeJS.ProcessEnv = {}) => resolveRouterFlags(parseFlags(['--dev-cert', ...argv], routerHelp.flags, env));

  it.each([
    [{ EDGE_HTTPS_PORT: 'abc' }, 'EDGE_HTTPS_PORT: expected a whole number from 0 to 65535, got "abc"'],
    [{ EDGE_MAX_ATTEMPTS: '9' }, 'EDGE_MAX_ATTEMPTS: expected a whole number from 1 to 5, got "9"'],
    [{ EDGE_WORKERS: 'many' }, 'EDGE_WORKERS: expected a whole number from 1 to 256'],
    [{ EDGE_MAX_BODY_STANDARD: 'lots' }, 'EDGE_MAX_BODY_STANDARD: expected a size'],
    [{ EDGE_UPLOAD_SHARE: '2' }, 'EDGE_UPLOAD_SHARE: expected a fraction in (0, 1]'],
    [{ EDGE_PLAIN_HTTP: 'maybe' }, 'EDGE_PLAIN_HTTP: expected one of redirect, serve, got "maybe"'],
    [{ EDGE_ROUTING: 'fast' }, 'EDGE_ROUTING: expected one of nearest, latency, got "fast"'],
    [{ EDGE_ROUTING_MS_PER_100KM: '-1' }, 'EDGE_ROUTING_MS_PER_100KM: expected a number of ms from 0 to 1000'],
    [{ EDGE_HEDGE_DELAY_MS: 'soon' }, 'EDGE_HEDGE_DELAY_MS: expected a whole number of ms'],
    [{ EDGE_PROBE: 'yes' }, 'EDGE_PROBE: expected one of auto, on, off, got "yes"'],
    [{ EDGE_PROBE_INTERVAL_MS: '0' }, 'EDGE_PROBE_INTERVAL_MS: expected a whole number from 1 to 3600000, got "0"'],
    [{ EDGE_PROBE_PATH: 'healthz' }, 'EDGE_PROBE_PATH: expected a path starting with /, got "healthz"'],
    [{ EDGE_PREWARM_TOKEN: 'short' }, 'EDGE_PREWARM_TOKEN: expected at least 16 characters'],
    [{ EDGE_ADMIN_TOKEN: 'short' }, 'EDGE_ADMIN_TOKEN: the admin token must be at least 16 characters'],
    [{ REDIS_URL: 'redis://127.0.0.1:6379', EDGE_REDIS_SENTINELS: 'sentinel.internal' }, 'EDGE_REDIS_SENTINELS: expected host:port,host:port, got "sentinel.internal"'],
  ])('%j', async (env, message) => {
    await expect(resolve([], env)).rejects.toThrow(message);
  });

  it('names the flag when the flag gave the value, though the env variable is set too', async () => {
    await expect(resolve(['--https-port', 'abc'], { EDGE_HTTPS_PORT: '443' })).rejects.toThrow('--https-port: expected a whole number from 0 to 65535, got "abc"');
    await expect(resolve(['--routing', 'fast'])).rejects.toThrow('--routing: expected one of nearest, latency, got "fast"');
  });
});

describe('listen addresses', () => {
  const resolve = (argv: string[], env: NodeJS.ProcessEnv = {}) => resolveRouterFlags(parseFlags(['--dev-cert', ...argv], routerHelp.flags, env));

  it('are IP addresses, checked when the flags are read rather than when the listener starts', async () => {
    await expect(resolve(['--bind', 'notanip'])).rejects.toThrow(new UsageError('--bind: expected an IP address, got "notanip"'));
    await expect(resolve([], { EDGE_ADMIN_HOST: '999.1.1.1' })).rejects.toThrow(new UsageError('EDGE_ADMIN_HOST: expected an IP address, got "999.1.1.1"'));
    const resolved = await resolve(['--bind', '::', '--admin-host', '127.0.0.1']);
    expect([resolved.config.bindAddress, resolved.config.adminHost]).toEqual(['::', '127.0.0.1']);
  });
});
