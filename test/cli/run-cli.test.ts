import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { cli } from '../support/cli.js';

describe('edge-router (top level)', () => {
  it('says its version, from the package, with --version, -V or version', async () => {
    const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    for (const flag of ['--version', '-V', 'version']) {
      const { code, stdout } = await cli([flag]);
      expect(code).toBe(0);
      expect(stdout).toBe(`edge-router ${version} (node ${process.version})\n`);
    }
  });

  it('names --version in its help', async () => {
    const { stdout } = await cli(['--help']);
    expect(stdout).toContain('edge-router --version');
  });

  it('lists the flags of every command it lists, with `<command> --help`, as its help promises', async () => {
    const { stdout } = await cli(['--help']);
    const commands = stdout.slice(stdout.indexOf('Commands:')).split('\n').slice(1).filter((l) => l.startsWith('  ')).map((l) => l.trim().split(' ')[0]!);
    expect(commands).toEqual(expect.arrayContaining(['schema', 'reference', 'router']));
    for (const command of commands) {
      const help = await cli([command, '--help']);
      expect({ command, code: help.code, stderr: help.stderr }).toEqual({ command, code: 0, stderr: '' });
      expect(help.stdout).toContain(`Usage: edge-router ${command}`);
      expect(help.stdout).toContain('--help');
    }
  });
});

describe('edge-router --help', () => {
  it("describes each command in whole sentences, not its summary's first line cut mid-sentence", async () => {
    // Before: "explain  … as JSON. With --redis the live registry" and "registry  … Actions:".
    const { stdout } = await cli(['--help']);
    const lines = stdout.slice(stdout.indexOf('Commands:')).split('\n').slice(1).filter((l) => l.startsWith('  '));
    expect(lines.length).toBeGreaterThan(5);
    for (const line of lines) expect(line).toMatch(/\.$/);
    expect(lines.find((l) => l.trim().startsWith('explain '))).toMatch(/as JSON\.$/);
  });
});

describe('edge-router <command> --help, with a bad environment', () => {
  it.each<[NodeJS.ProcessEnv, string]>([
    [{ EDGE_ZONE: ' ' }, 'a string variable holding only whitespace'],
    [{ EDGE_PROXY_PROTOCOL: 'enabled' }, 'a switch variable that is no switch word'],
  ])('still prints the help that says what %j takes, and exits 0 (%s)', async (env) => {
    const { code, stdout, stderr } = await cli(['router', '--help'], { env });
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toContain(Object.keys(env)[0]);
    // Without --help, the same environment is refused as before.
    expect((await cli(['router', '--dev-cert'], { env })).code).toBe(2);
  });
});

describe('edge-router, given a word that is not a flag or a value', () => {
  // A value is a flag's only when it follows it: a second address after --ip, or a value whose
  // flag was mistyped without its dashes, must not be dropped while the command goes on.
  it.each([
    ['explain', ['--host', 'echo-demo.telnyxcompute.com', '--geoip', 'none', '--ip', '81.2.69.160', '89.160.20.112'], '89.160.20.112'],
    ['validate', ['--dev-cert', 'https-port', '8443'], 'https-port'],
    ['schema', ['out.json'], 'out.json'],
  ])('%s refuses it, naming it, and exits 2', async (command, args, stray) => {
    const { code, stdout, stderr } = await cli([command, ...args]);
    expect({ code, stdout }).toEqual({ code: 2, stdout: '' });
    expect(stderr).toContain(`edge-router ${command}: unexpected argument "${stray}"`);
  });

  it.each([
    ['geo', ['build-sim', 'extra'], 'extra'],
  ])('%s refuses one beyond its action', async (command, args, stray) => {
    const { code, stderr } = await cli([command, ...args]);
    expect(code).toBe(2);
    expect(stderr).toContain(`unexpected argument "${stray}"`);
  });
});

describe('edge-router, when a port is taken', () => {
  it('says which address is in use and what to do, and exits 2', async () => {
    const taken = createServer().listen(0, '127.0.0.1');
    await once(taken, 'listening');
    const port = (taken.address() as { port: number }).port;
    try {
      const { code, stderr } = await cli(['router', '--dev-cert', '--workers', '1', '--bind', '127.0.0.1', '--https-port', String(port), '--http-port', '0', '--admin-port', '0']);
      expect(code).toBe(2);
      expect(stderr).toBe(`edge-router router: 127.0.0.1:${port} is already in use (another edge-router, or another program): free it, or choose other ports (edge-router router --help lists the --*-port flags)\n`);
    } finally {
      taken.close();
    }
  });
});

describe('edge-router, when the configuration cannot work', () => {
  const badFiles = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edge-cli-'));
    const cert = join(dir, 'bad.crt');
    const key = join(dir, 'bad.key');
    const geo = join(dir, 'bad.mmdb');
    await writeFile(cert, 'garbage\n');
    await writeFile(key, 'garbage\n');
    await writeFile(geo, 'not a database\n');
    return { cert, key, geo };
  };
  const PORTS = ['--bind', '127.0.0.1', '--https-port', '0', '--http-port', '0', '--admin-port', '0'];

  it('names a certificate that is not one, in one line, and exits 2', async () => {
    const { cert, key } = await badFiles();
    const { code, stderr } = await cli(['router', '--workers', '1', '--tls-cert', cert, '--tls-key', key, ...PORTS]);
    expect(code).toBe(2);
    expect(stderr).toBe(`edge-router router: ${cert}: not a PEM certificate (no "-----BEGIN CERTIFICATE-----" line)\n`);
  });

  it('names a GeoIP file that is not a database, in one line, and exits 2', async () => {
    const { geo } = await badFiles();
    const { code, stderr } = await cli(['router', '--workers', '1', '--dev-cert', '--geoip', geo, ...PORTS]);
    expect(code).toBe(2);
    // Named by the flag it came from too: a path alone did not say which flag, variable or field to fix.
    expect(stderr).toMatch(new RegExp(`^edge-router router: --geoip: ${geo.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not a MaxMind DB file`));
    expect(stderr.trim().split('\n')).toHaveLength(1);
  });

  it('stops a cluster whose workers fail on their configuration, instead of restarting them forever', async () => {
    const { cert, key } = await badFiles();
    const started = Date.now();
    const result = spawnSync(process.execPath, ['dist/src/main.js', 'router', '--workers', '2', '--tls-cert', cert, '--tls-key', key, ...PORTS], {
      encoding: 'utf8',
      timeout: 20_000,
      env: { ...process.env, EDGE_LOG_LEVEL: 'error' },
    });
    // The whole stderr in the failure message: an exit other than 2 says why only there.
    expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 2, stderr: expect.stringContaining(`${cert}: not a PEM certificate`) });
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});
