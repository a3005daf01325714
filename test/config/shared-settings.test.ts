import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveSharedSettings, trustedProxyList } from '../../src/config/shared-settings.js';
import { generateSelfSignedCertificate } from '../../src/ingress/certificates/dev-certificate.js';

const BUNDLED = process.cwd();

async function regionsFile(extra: Record<string, unknown>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'edge-settings-'));
  const file = join(dir, 'regions.json');
  await writeFile(
    file,
    JSON.stringify({
      defaultRegion: 'atl',
      regions: [{ id: 'atl', name: 'Atlanta', lat: 33.7, lon: -84.4, orchestrators: ['http://127.0.0.1:1'], capacity: { soft: 1, hard: 2 } }],
      ...extra,
    }),
  );
  return file;
}

describe('resolveSharedSettings', () => {
  it('uses defaults: bundled regions, bundled sim database, the telnyxcompute.com zone, no trusted proxies', async () => {
    const s = await resolveSharedSettings({}, BUNDLED);
    expect(s.regions.regions).toHaveLength(5);
    expect(s.geoip).toBe(join(BUNDLED, 'geo', 'sim.mmdb'));
    expect(s.zone).toBe('telnyxcompute.com');
    expect(s.trustedProxies).toEqual([]);
  });

  it('lets the file override defaults, resolving its geoip path against the file', async () => {
    const file = await regionsFile({ zone: 'Edge.Test.', geoip: 'db/city.mmdb', trustedProxies: ['10.0.0.0/8'] });
    const s = await resolveSharedSettings({ regions: { value: file, source: '--regions' } }, BUNDLED);
    expect(s.zone).toBe('edge.test');
    expect(s.geoip).toBe(join(file, '..', 'db', 'city.mmdb'));
    expect(s.trustedProxies).toEqual(['10.0.0.0/8']);
  });

  it('lets flags and env (already merged by the CLI) override the file', async () => {
    const file = await regionsFile({ zone: 'edge.test', geoip: 'db/city.mmdb', trustedProxies: ['10.0.0.0/8'] });
    const s = await resolveSharedSettings(
      {
        regions: { value: file, source: '--regions' },
        zone: { value: 'other.example', source: 'EDGE_ZONE' },
        geoip: { value: 'none', source: '--geoip' },
        trustedProxies: { value: '192.0.2.0/24, 2001:db8::/32', source: '--trusted-proxies' },
      },
      BUNDLED,
    );
    expect(s).toMatchObject({ zone: 'other.example', geoip: null, trustedProxies: ['192.0.2.0/24', '2001:db8::/32'] });
  });

  it('takes none from a flag or variable as no trusted proxy, over the file; a value naming no CIDR at all ("" from an unset shell variable, ",") is refused', async () => {
    const file = await regionsFile({ trustedProxies: ['10.0.0.0/8'] });
    const regions = { value: file, source: '--regions' };
    expect((await resolveSharedSettings({ regions, trustedProxies: { value: 'none', source: '--trusted-proxies' } }, BUNDLED)).trustedProxies).toEqual([]);
    // An empty variable never gets here (unset, for the CLI: test/cli/router-command.test.ts); an empty flag does.
    for (const [value, source] of [['', '--trusted-proxies'], [',', 'EDGE_TRUSTED_PROXIES'], [' , ', '--trusted-proxies']]) {
      await expect(resolveSharedSettings({ regions, trustedProxies: { value: value!, source: source! } }, BUNDLED)).rejects.toThrow(
        `${source}: expected comma-separated CIDRs such as 10.0.0.0/8, or none to trust no proxy (over the regions file's), got ${JSON.stringify(value)}`,
      );
    }
  });

  it.each([
    [{ zone: { value: 'not a zone', source: 'EDGE_ZONE' } }, 'EDGE_ZONE: expected a DNS zone such as telnyxcompute.com, got "not a zone"'],
    [{ trustedProxies: { value: '10.0.0.0/33', source: '--trusted-proxies' } }, '--trusted-proxies: expected a CIDR such as 10.0.0.0/8 or 2001:db8::/32, got "10.0.0.0/33"'],
    [{ trustedProxies: { value: 'example.com', source: '--trusted-proxies' } }, '--trusted-proxies: expected a CIDR'],
    [{ geoip: { value: '', source: '--geoip' } }, '--geoip: expected a path to a .mmdb file, or "none", got ""'],
    [{ regions: { value: ' ', source: '--regions' } }, '--regions: expected a path to a regions file, got " "'],
  ])('names the source of a bad value: %j', async (inputs, message) => {
    await expect(resolveSharedSettings(inputs, BUNDLED)).rejects.toThrow(message);
  });

  it('accepts a zone under a punycode (IDN) top-level domain', async () => {
    const s = await resolveSharedSettings({ zone: { value: 'Compute.Example.XN--P1AI.', source: 'EDGE_ZONE' } }, BUNDLED);
    expect(s.zone).toBe('compute.example.xn--p1ai');
  });

  it('names the file field for a bad CIDR in the file', async () => {
    const file = await regionsFile({ trustedProxies: ['10.0.0.0/x'] });
    await expect(resolveSharedSettings({ regions: { value: file, source: '--regions' } }, BUNDLED)).rejects.toThrow(
      `${file}: trustedProxies: expected a CIDR`,
    );
  });
});

describe('trustedProxyList', () => {
  it('matches addresses inside the CIDRs and single addresses', () => {
    const list = trustedProxyList(['10.0.0.0/8', '192.0.2.7', 'fd00::/8'], 'test');
    expect(list.check('10.200.0.1', 'ipv4')).toBe(true);
    expect(list.check('192.0.2.7', 'ipv4')).toBe(true);
    expect(list.check('192.0.2.8', 'ipv4')).toBe(false);
    expect(list.check('fd12::1', 'ipv6')).toBe(true);
  });

  it('refuses an IPv4-mapped address with an IPv4-length prefix, which would trust every IPv4 client', () => {
    expect(() => trustedProxyList(['::ffff:10.0.0.0/8'], '--trusted-proxies')).toThrow(/--trusted-proxies: "::ffff:10.0.0.0\/8" is an IPv4-mapped address/);
    expect(() => trustedProxyList(['::ffff:a00:0/8'], '--trusted-proxies')).toThrow(/IPv4-mapped/);
  });

  // Number() read /1e1 as /10 and /0x8 as /8; a zone id names one host's interface, not peers.
  it.each(['10.0.0.0/1e1', '10.0.0.0/0x8', '10.0.0.0/', '10.0.0.0/ 8', 'fe80::1%eth0', 'fe80::%eth0/64'])('refuses %j, naming the flag', (cidr) => {
    expect(() => trustedProxyList([cidr], '--trusted-proxies')).toThrow(/^--trusted-proxies: expected a CIDR such as 10\.0\.0\.0\/8/);
  });

  it('refuses an IPv6 range that holds the IPv4-mapped block, which would trust every IPv4 client too', () => {
    for (const cidr of ['::/8', '::/0', '::fffe:0:0/79', '::/80']) {
      expect(() => trustedProxyList([cidr], '--trusted-proxies')).toThrow(/covers ::ffff:0:0\/96, the IPv4-mapped block, so it would trust every IPv4 client/);
    }
    // Ranges beside it are taken, and trust no IPv4 client.
    const list = trustedProxyList(['2001:db8::/32', '::1/128', '64:ff9b::/96', 'fc00::/7'], 'test');
    expect(list.check('203.0.113.9', 'ipv4')).toBe(false);
    expect(list.check('2001:db8::5', 'ipv6')).toBe(true);
  });

  it('takes an IPv4-mapped CIDR of /96 or longer as the IPv4 network it names', () => {
    const list = trustedProxyList(['::ffff:10.0.0.0/104'], 'test');
    expect(list.check('10.1.2.3', 'ipv4')).toBe(true);
    expect(list.check('::ffff:10.1.2.3', 'ipv6')).toBe(true);
    expect(list.check('203.0.113.9', 'ipv4')).toBe(false);
  });

  it('has no orchestrator TLS settings unless a flag gives some, and reads the files a flag names', async () => {
    expect((await resolveSharedSettings({}, BUNDLED)).orchestratorTls).toBeNull();
    const pem = await generateSelfSignedCertificate({ names: ['ca.internal'] });
    const path = join(await mkdtemp(join(tmpdir(), 'edge-ca-')), 'ca.pem');
    await writeFile(path, pem.cert);
    const settings = await resolveSharedSettings({ orchestratorTls: { ca: { value: path, source: '--orchestrator-ca' } } }, BUNDLED);
    expect(settings.orchestratorTls?.ca).toContain('BEGIN CERTIFICATE');
  });
});
