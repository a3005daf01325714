/**
 * Sloppy and hostile regions files (configuration-error audit): each mistake is refused naming the
 * file, the field and what is expected, or read as the operator meant it; none is silently changed.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRegionsFile, MAX_REGIONS_FILE_BYTES, parseRegionsConfig } from '../../src/config/load-regions.js';
import { resolveOrchestratorTls } from '../../src/config/orchestrator-tls.js';
import { ConfigError } from '../../src/core/errors.js';
import { generateSelfSignedCertificate } from '../../src/ingress/certificates/dev-certificate.js';

const region = (orchestrator: string) => ({ id: 'atl', name: 'Atlanta', lat: 33.7, lon: -84.4, orchestrators: [orchestrator], capacity: { soft: 8, hard: 10 } });

function errorOf(orchestrator: string): string {
  try {
    parseRegionsConfig('regions.json', { defaultRegion: 'atl', regions: [region(orchestrator)] });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error(`expected a ConfigError for ${orchestrator}`);
}

describe('orchestrator URLs', () => {
  it('refuses a query or fragment even when it is empty: the probe of "http://h:7001/?" went to /?/healthz, that is to /', () => {
    expect(errorOf('http://127.0.0.1:7001/?')).toBe('regions.json: regions[0].orchestrators[0]: expected an http(s) origin without a query or fragment, got "http://127.0.0.1:7001/?"');
    expect(errorOf('http://127.0.0.1:7001#')).toBe('regions.json: regions[0].orchestrators[0]: expected an http(s) origin without a query or fragment, got "http://127.0.0.1:7001#"');
  });

  it('refuses port 0, which no connection can reach', () => {
    expect(errorOf('http://127.0.0.1:0')).toBe('regions.json: regions[0].orchestrators[0]: expected an http(s) origin with a port from 1 to 65535, got "http://127.0.0.1:0"');
  });

  it('keeps each orchestrator as its origin, so probes and pools use the address the check passed', () => {
    for (const written of [' http://127.0.0.1:7001', 'HTTP://127.0.0.1:7001', 'http://127.0.0.1:7001/.', 'http://127.0.0.1:7001/%2e%2e/']) {
      const cfg = parseRegionsConfig('regions.json', { defaultRegion: 'atl', regions: [region(written)] });
      expect(cfg.regions[0]!.orchestrators, written).toEqual(['http://127.0.0.1:7001']);
    }
  });
});

describe('a field written twice in one object', () => {
  it('is refused naming the file, the line and the field, rather than the later one silently winning', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edge-cfg-audit-'));
    const file = join(dir, 'regions.json');
    const one = JSON.stringify(region('http://127.0.0.1:7001'));
    await writeFile(file, `{\n  "defaultRegion": "atl",\n  "countryRegions": { "GB": "atl", "FR": "atl", "GB": "atl" },\n  "regions": [${one}]\n}\n`);
    await expect(loadRegionsFile(file)).rejects.toThrow(new ConfigError(`${file}: line 3, column 49: the field "GB" appears twice in this object (the later one would be read, the earlier ignored)`));
    const regionsTwice = join(dir, 'twice.json');
    await writeFile(regionsTwice, `{"defaultRegion":"atl","regions":[${one}],"regions":[]}`);
    await expect(loadRegionsFile(regionsTwice)).rejects.toThrow(/twice\.json: line 1, column \d+: the field "regions" appears twice in this object/);
  });

  it('still reads the same field name in different objects', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edge-cfg-audit-'));
    const file = join(dir, 'regions.json');
    await writeFile(file, JSON.stringify({ defaultRegion: 'atl', regions: [region('http://127.0.0.1:7001'), { ...region('http://127.0.0.1:7002'), id: 'nyc' }] }));
    expect((await loadRegionsFile(file)).regions.map((r) => r.id)).toEqual(['atl', 'nyc']);
  });
});

describe('the client certificate for orchestrators', () => {
  it('is refused at start while it is not valid yet, as --tls-cert is: the orchestrators would refuse every handshake', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edge-cfg-audit-'));
    const pem = await generateSelfSignedCertificate({ names: ['router.internal'], validFrom: new Date(Date.now() + 10 * 86_400_000) });
    const cert = join(dir, 'client.crt');
    const key = join(dir, 'client.key');
    await writeFile(cert, pem.cert);
    await writeFile(key, pem.key);
    const inputs = { clientCert: { value: cert, source: '--orchestrator-client-cert' }, clientKey: { value: key, source: '--orchestrator-client-key' } };
    await expect(resolveOrchestratorTls(inputs)).rejects.toThrow(new RegExp(`^--orchestrator-client-cert: ${cert.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: the certificate is not valid before \\d{4}-`));
  });
});

describe('what is given as the regions file', () => {
  it('reads only a regular file of sensible size: a FIFO would hang the start, /dev/zero fill memory, a directory say EISDIR', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'regions-kinds-'));
    const fifo = join(dir, 'regions.fifo');
    await new Promise<void>((resolve, reject) => execFile('mkfifo', [fifo], (err) => (err ? reject(err) : resolve())));
    await expect(loadRegionsFile(fifo)).rejects.toThrow(new ConfigError(`${fifo}: expected a regions file (JSON), found a FIFO, socket or device, not a regular file`));
    await expect(loadRegionsFile('/dev/zero')).rejects.toThrow(new ConfigError('/dev/zero: expected a regions file (JSON), found a FIFO, socket or device, not a regular file'));
    await expect(loadRegionsFile(dir)).rejects.toThrow(new ConfigError(`${dir}: expected a regions file (JSON), found a directory`));
    const huge = join(dir, 'huge.json');
    await writeFile(huge, '');
    await truncate(huge, MAX_REGIONS_FILE_BYTES + 1); // sparse: no real disk used
    await expect(loadRegionsFile(huge)).rejects.toThrow(new ConfigError(`${huge}: expected a regions file (JSON), found ${MAX_REGIONS_FILE_BYTES + 1} bytes, more than the ${MAX_REGIONS_FILE_BYTES} expected at most`));
  });
});
