import { describe, expect, it } from 'vitest';
import { parseBytes } from '../../src/cli/parse-values.js';
import { parseFlags } from '../../src/cli/flags.js';
import { resolveRouterFlags, routerHelp } from '../../src/cli/router-command.js';

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
