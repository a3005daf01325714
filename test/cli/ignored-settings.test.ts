import { describe, expect, it } from 'vitest';
import { parseFlags } from '../../src/cli/flags.js';
import { routerHelp } from '../../src/cli/help/router.js';
import { ignoredSettings, type ResolvedFacts } from '../../src/cli/ignored-settings.js';

const facts: ResolvedFacts = { adminTokenFromFile: false, clientHeaderTimeoutMs: 10_000, clientRequestTimeoutMs: 300_000 };
const ignoredOf = (argv: string[], env: NodeJS.ProcessEnv = {}, given: Partial<ResolvedFacts> = {}) =>
  ignoredSettings(parseFlags(argv, routerHelp.flags, env), { ...facts, ...given });

describe('ignoredSettings', () => {
  it('names nothing for the defaults, nor for settings that go together', () => {
    expect(ignoredOf([])).toEqual([]);
    expect(ignoredOf(['--admin-public-reads', '--admin-allowed-hosts', 'prometheus-target.internal'])).toEqual([]);
    expect(ignoredOf(['--redirect-port', '443'])).toEqual([]);
    expect(ignoredOf(['--admin-token-overlap', '0'], {}, { adminTokenFromFile: true })).toEqual([]);
    expect(ignoredOf(['--client-header-timeout', '300000'])).toEqual([]);
  });

  it('names --admin-allowed-hosts without --admin-public-reads: no read is token-less, whatever the host', () => {
    expect(ignoredOf(['--admin-allowed-hosts', 'prometheus-target.internal'])).toEqual([
      '--admin-allowed-hosts is ignored: it names the hosts token-less reads are answered for, and only --admin-public-reads allows such reads; every admin request needs the token',
    ]);
  });

  it('names --redirect-port with --plain-http serve, and each by the variable that gave it', () => {
    expect(ignoredOf([], { EDGE_REDIRECT_PORT: '443', EDGE_PLAIN_HTTP: 'serve' })).toEqual([
      'EDGE_REDIRECT_PORT is ignored: it is the port of the 308 to HTTPS, and EDGE_PLAIN_HTTP serve routes plain HTTP instead of redirecting it',
    ]);
  });

  it('names --admin-token-overlap when the token is not read from a file, but not its default', () => {
    expect(ignoredOf(['--admin-token-overlap', '60000'])).toEqual([
      "--admin-token-overlap is ignored: it is how long a replaced --admin-token-file's token is still taken, and the token is not read from a file (only a restart changes it)",
    ]);
    expect(ignoredOf(['--admin-token', 'x'.repeat(32)])).toEqual([]);
  });

  it('names a head timeout longer than the whole request may take, when the head timeout was given', () => {
    const clamped = { clientHeaderTimeoutMs: 20_000, clientRequestTimeoutMs: 5_000 };
    expect(ignoredOf(['--client-header-timeout', '20000', '--client-request-timeout', '5000'], {}, clamped)).toEqual([
      '--client-header-timeout 20000 ms is longer than --client-request-timeout 5000 ms, within which the whole request, its head included, must arrive: a request head gets 5000 ms',
    ]);
    // The default head timeout under a shorter request timeout: the operator chose only the latter.
    expect(ignoredOf(['--client-request-timeout', '5000'], {}, { clientRequestTimeoutMs: 5_000 })).toEqual([]);
  });
});
