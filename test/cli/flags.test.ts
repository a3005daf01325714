import { describe, expect, it } from 'vitest';
import { defaultShown, formatHelp, parseFlags, type FlagSpec } from '../../src/cli/flags.js';
import { resolveRouterFlags, routerHelp, ROUTER_FLAGS } from '../../src/cli/router-command.js';
import { DEFAULT_CLIENT_BOUNDS } from '../../src/edge-router.js';

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
    expect(withoutDefault).toEqual(['admin-token-file', 'tls-cert', 'tls-key', 'tls-dir', 'proxy-protocol-from']);
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
