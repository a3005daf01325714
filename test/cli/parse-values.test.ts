import { describe, expect, it } from 'vitest';
import { parseBytes, parseDecimal } from '../../src/cli/parse-values.js';
import { ROUTING_FLAGS, routingSettings } from '../../src/cli/routing-flags.js';
import { SIMULATION_FLAGS, simulationSettings } from '../../src/cli/simulation-flags.js';
import { PROBE_FLAGS, proberSettings } from '../../src/cli/probe-flags.js';
import { parseFlags } from '../../src/cli/flags.js';
import { routerHelp } from '../../src/cli/help/router.js';
import { resolveRouterFlags } from '../../src/cli/router-command.js';

describe('parseBytes', () => {
  it.each([
    ['65536', 65_536],
    ['10kb', 10_000],
    ['10 KB', 10_000],
    ['1.5KiB', 1_536],
    ['128MiB', 128 * 1024 ** 2],
    ['0', 0],
  ])('reads %s as %i bytes', (raw, bytes) => {
    expect(parseBytes(raw, '--size')).toBe(bytes);
  });

  it.each(['-1', '1.5s', '10k', '1e3', '', 'Infinity', '99999999999GiB'])('refuses %j, naming the flag', (raw) => {
    expect(() => parseBytes(raw, '--size')).toThrow(/^--size: expected a size/);
  });

  it.each([
    ['below the least', '512', 1_024, 2_048],
    ['above the most', '3KiB', 1_024, 2_048],
  ])('refuses a size %s it is given', (_name, raw, min, max) => {
    expect(() => parseBytes(raw, '--size', min, max)).toThrow(`--size: expected a size from ${min} to ${max} bytes`);
  });
});

describe('parseDecimal', () => {
  it.each([['2', 2], ['0.25', 0.25], [' 10 ', 10], ['0', 0]])('reads %j as %d', (raw, value) => {
    expect(parseDecimal(raw, '--n', 0, 100)).toBe(value);
  });

  // Number() alone takes all of these: hex, exponents, Infinity, and blank text as 0.
  it.each(['0x32', '1e2', 'Infinity', '', ' ', '-1', '101', '.5', '5.'])('refuses %j, naming the flag', (raw) => {
    expect(() => parseDecimal(raw, '--n', 0, 100)).toThrow(/^--n: expected a number from 0 to 100, got/);
  });
});

describe('routing flags', () => {
  const settings = (...args: string[]) => routingSettings(parseFlags(args, ROUTING_FLAGS, {}));

  it('reads plain decimals', () => {
    expect(settings('--routing-ms-per-100km', '1.5', '--hedge-delay', '40')).toMatchObject({ msPer100Km: 1.5, hedgeDelayMs: 40 });
  });

  it.each([
    ['--routing-ms-per-100km', '0x2'],
    ['--routing-ms-per-100km', '1e1'],
    ['--hedge-delay', '0x32'],
    ['--hedge-delay', '12.5'],
  ])('refuses %s %j, naming the flag', (flag, raw) => {
    expect(() => settings(flag, raw)).toThrow(new RegExp(`^${flag}: expected`));
  });
});

describe('simulation flags', () => {
  const settings = (...args: string[]) => simulationSettings(parseFlags(args, SIMULATION_FLAGS, {}));

  it('bounds --ms-per-100km as --routing-ms-per-100km: a delay past setTimeout\'s range fired at once', () => {
    expect(settings('--ms-per-100km', '2.5')).toMatchObject({ msPer100Km: 2.5 });
    expect(() => settings('--ms-per-100km', '100000000')).toThrow('--ms-per-100km: expected a number of ms from 0 to 1000, got "100000000"');
    expect(() => settings('--ms-per-100km', '1e3')).toThrow(/^--ms-per-100km: expected/);
  });
});

describe('probe flags', () => {
  it('bounds the interval at an hour and the timeout at ten minutes: a heartbeat living past a day flapped down between probes', () => {
    const settings = (...args: string[]) => proberSettings(parseFlags(args, PROBE_FLAGS, {}));
    expect(settings('--probe-interval', '3600000', '--probe-timeout', '600000')).toMatchObject({ intervalMs: 3_600_000, timeoutMs: 600_000 });
    expect(() => settings('--probe-interval', '86400000')).toThrow(/^--probe-interval: expected .* from 1 to 3600000/);
    expect(() => settings('--probe-timeout', '600001')).toThrow(/^--probe-timeout: expected .* from 1 to 600000/);
  });
});

describe('router size flags', () => {
  const resolve = (...args: string[]) => resolveRouterFlags(parseFlags(['--dev-cert', ...args], routerHelp.flags, {}));

  // HTTP/2 carries the header limit in a 32-bit SETTINGS field: 4GiB was accepted at start, and
  // the first HTTP/2 connection then threw ERR_HTTP2_INVALID_SETTING_VALUE out of the server.
  // 0 made every request a 431.
  it.each(['4GiB', '0', '100'])('--max-header-size %s is refused at start', async (raw) => {
    await expect(resolve('--max-header-size', raw)).rejects.toThrow(/^--max-header-size: expected a size from 1024 to 4294967295 bytes/);
  });

  it('names the env variable that gave a bad size', async () => {
    await expect(resolveRouterFlags(parseFlags(['--dev-cert'], routerHelp.flags, { EDGE_MAX_HEADER_SIZE: '8GiB' }))).rejects.toThrow(/^EDGE_MAX_HEADER_SIZE: expected a size/);
  });

  it('still takes 0 where it means none (--body-min-rate) or never (--body-buffer)', async () => {
    const { config } = await resolve('--body-min-rate', '0', '--body-buffer', '0');
    expect([config.clientBounds.pace.bodyMinBytesPerSecond, config.clientBounds.bodyBufferBytes]).toEqual([0, 0]);
  });
});

describe('router fraction flags', () => {
  it.each(['0x1', '1e-1', '0', '1.5'])('--upload-share %j is refused at start', async (raw) => {
    await expect(resolveRouterFlags(parseFlags(['--dev-cert', '--upload-share', raw], routerHelp.flags, {}))).rejects.toThrow(/^--upload-share: expected a fraction in \(0, 1\]/);
  });
});
