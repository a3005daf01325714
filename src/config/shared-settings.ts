/**
 * Resolves the settings every command shares, with one precedence rule:
 * flag > env > regions file > default. Values are validated here, at start, and frozen;
 * an error names where the bad value came from (flag, env variable or file field).
 */
import { BlockList, isIP } from 'node:net';
import { isAbsolute, join, resolve, dirname } from 'node:path';
import { ConfigError } from '../core/errors.js';
import { dnsNameFrom, isDnsName } from '../core/dns-name.js';
import { loadRegionsFile, type RegionsConfig } from './load-regions.js';
import { resolveOrchestratorTls, type OrchestratorTls, type OrchestratorTlsInputs } from './orchestrator-tls.js';

/**
 * Where the GeoIP database came from when nothing named one: the simulation's own, which places only
 * the simulation's loopback and compose addresses. The router says so at start: a deployment that
 * forgot its database (the Kubernetes base mounts none) routed every real client by the fallback.
 */
export const BUNDLED_SIMULATION_GEOIP = 'the bundled simulation database';

export const DEFAULT_ZONE = 'telnyxcompute.com';

export interface SharedSettings {
  readonly regions: RegionsConfig;
  /** Path of the GeoIP database, or null to run without one. */
  readonly geoip: string | null;
  /** Where `geoip` came from (a flag, a variable, the regions file's field, the default), for messages. */
  readonly geoipSource: string;
  readonly zone: string;
  readonly trustedProxies: readonly string[];
  /** TLS towards https orchestrators beyond the system's defaults (orchestrator-tls.ts), or null. */
  readonly orchestratorTls: OrchestratorTls | null;
  /** Where those settings came from, to read them again (a rotated client certificate); null when no flag gave any. */
  readonly orchestratorTlsInputs: OrchestratorTlsInputs | null;
}

/** What the command line and environment said (absent = not given). */
export interface SharedInputs {
  readonly regions?: { value: string; source: string };
  readonly geoip?: { value: string; source: string };
  readonly zone?: { value: string; source: string };
  readonly trustedProxies?: { value: string; source: string };
  readonly orchestratorTls?: OrchestratorTlsInputs;
  /** Read the regions file's text from this copy (loadRegionsFile's `readFrom`): a cluster worker's. */
  readonly regionsCopy?: string;
}

export async function resolveSharedSettings(inputs: SharedInputs, bundledDir: string): Promise<SharedSettings> {
  const regionsPath = inputs.regions === undefined ? join(bundledDir, 'regions.json') : givenPath(inputs.regions, 'a path to a regions file');
  const regions = await loadRegionsFile(regionsPath, inputs.regionsCopy);

  const zoneInput = inputs.zone ?? (regions.zone !== undefined ? { value: regions.zone, source: `${regions.file}: zone` } : undefined);
  const zone = normalizeZone(zoneInput?.value ?? DEFAULT_ZONE, zoneInput?.source ?? 'default zone');

  let geoip: string | null;
  let geoipSource: string;
  if (inputs.geoip !== undefined) {
    geoip = givenPath(inputs.geoip, 'a path to a .mmdb file, or "none"');
    geoipSource = inputs.geoip.source;
  } else if (regions.geoip !== undefined) {
    // A path in the file is relative to the file, like every config file people know.
    geoip = regions.geoip === 'none' || isAbsolute(regions.geoip) ? regions.geoip : resolve(dirname(regions.file), regions.geoip);
    geoipSource = `${regions.file}: geoip`;
  } else {
    geoip = join(bundledDir, 'geo', 'sim.mmdb');
    geoipSource = BUNDLED_SIMULATION_GEOIP;
  }
  if (geoip === 'none') geoip = null;

  let trustedProxies: string[];
  if (inputs.trustedProxies !== undefined) {
    const { value, source } = inputs.trustedProxies;
    const none = value.trim() === 'none';
    trustedProxies = none ? [] : splitList(value);
    // Given but naming none ("" from an unset shell variable, ","): taken as given, it silently
    // replaced regions.json's proxies with none, and every client behind the balancer became the
    // balancer. Trusting none over the file is said in so many words.
    if (!none && trustedProxies.length === 0) {
      throw new ConfigError(`${source}: expected comma-separated CIDRs such as 10.0.0.0/8, or none to trust no proxy (over the regions file's), got ${JSON.stringify(value)}`);
    }
    trustedProxyList(trustedProxies, source);
  } else {
    trustedProxies = [...(regions.trustedProxies ?? [])];
    trustedProxyList(trustedProxies, `${regions.file}: trustedProxies`);
  }

  const orchestratorTls = await resolveOrchestratorTls(inputs.orchestratorTls ?? {});
  const orchestratorTlsInputs = orchestratorTls === null ? null : inputs.orchestratorTls!;

  return Object.freeze({ regions, geoip, geoipSource, zone, trustedProxies: Object.freeze(trustedProxies), orchestratorTls, orchestratorTlsInputs });
}

/** A path given by a flag or env variable; an empty one would name the current directory. */
function givenPath(input: { value: string; source: string }, expected: string): string {
  if (input.value.trim() === '') throw new ConfigError(`${input.source}: expected ${expected}, got ${JSON.stringify(input.value)}`);
  return input.value;
}

/** A comma-separated list, each entry trimmed, empty ones dropped. */
export function splitList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function normalizeZone(raw: string, source: string): string {
  const zone = dnsNameFrom(raw);
  // As for custom domains, the top-level label may be punycode (xn--…).
  if (!isDnsName(zone)) {
    throw new ConfigError(`${source}: expected a DNS zone such as ${DEFAULT_ZONE}, got ${JSON.stringify(raw)}`);
  }
  return zone;
}

/** Parses CIDRs (a bare address means /32 or /128) into a BlockList; a bad entry is a ConfigError. */
export function trustedProxyList(cidrs: readonly string[], source: string): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [address = '', bitsText, extra] = cidr.split('/');
    const family = isIP(address);
    const max = family === 4 ? 32 : 128;
    // Digits only (Number() would read /1e1 as /10 and /0x8 as /8), and no zone id (fe80::1%eth0):
    // a zone names an interface of one host, never a set of peers.
    const bits = bitsText === undefined ? max : /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : NaN;
    if (family === 0 || address.includes('%') || extra !== undefined || !Number.isInteger(bits) || bits < 0 || bits > max) {
      throw new ConfigError(`${source}: expected a CIDR such as 10.0.0.0/8 or 2001:db8::/32, got ${JSON.stringify(cidr)}`);
    }
    // An IPv6 range holding the IPv4-mapped block (::/8, ::/0, ::fffe:0:0/79) trusts every IPv4
    // client: Node's BlockList matches an IPv4 address against an IPv6 range by its mapped form.
    // Written as a mapped address (`::ffff:10.0.0.0/8`), it reads like the IPv4 /8 but is ::/8 of
    // IPv6: a mapped address takes its IPv4 bits after /96, and the message says so.
    if (family === 6 && bits < 96 && coversMappedBlock(address, bits)) {
      throw new ConfigError(
        IPV4_MAPPED.check(address, 'ipv6')
          ? `${source}: ${JSON.stringify(cidr)} is an IPv4-mapped address with a prefix shorter than /96, which covers far more than IPv4 ` +
              `(every IPv4 address among it); write the IPv4 CIDR, e.g. 10.0.0.0/8, or the mapped one, e.g. ::ffff:10.0.0.0/104`
          : `${source}: ${JSON.stringify(cidr)} covers ::ffff:0:0/96, the IPv4-mapped block, so it would trust every IPv4 client as well; ` +
              `narrow it to the IPv6 networks meant, and list IPv4 ranges on their own (0.0.0.0/0 if every IPv4 client is meant)`,
      );
    }
    list.addSubnet(address, bits, family === 4 ? 'ipv4' : 'ipv6');
  }
  return list;
}

const IPV4_MAPPED = new BlockList();
IPV4_MAPPED.addSubnet('::ffff:0:0', 96, 'ipv6');

/** Whether the IPv6 range `address/bits` holds the IPv4-mapped block's first address (and so, being shorter than /96, all of it). */
function coversMappedBlock(address: string, bits: number): boolean {
  const range = new BlockList();
  range.addSubnet(address, bits, 'ipv6');
  return range.check('::ffff:0:0', 'ipv6');
}
