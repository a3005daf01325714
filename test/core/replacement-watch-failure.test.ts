/**
 * A directory watch that fails after it opened (FSWatcher 'error': rare on Linux, an inotify
 * queue overflow or the watched directory's file system going away) is reported as what it is:
 * no file was refused, what is served is unchanged. Before, the certificate store and the GeoIP
 * locator reported it as a refused reload, logged "reload refused" and counted it in
 * edge_router_reloads_refused_total. Every watch this file opens fails 20 ms after it opens.
 */
import type { FSWatcher } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mmdbDouble, writeMmdb } from '../../src/geoip/mmdb-writer.js';
import { MaxmindLocator, type GeoEvent } from '../../src/geoip/maxmind-locator.js';
import { CertificateStore, type CertEvent } from '../../src/ingress/certificates/certificate-store.js';
import { generateSelfSignedCertificate } from '../../src/ingress/certificates/dev-certificate.js';
import { until } from '../support/until.js';

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const watch = ((...args: Parameters<typeof fs.watch>) => {
    const watcher: FSWatcher = fs.watch(...args);
    setTimeout(() => watcher.emit('error', new Error('inotify queue overflow')), 20).unref();
    return watcher;
  }) as typeof fs.watch;
  return { ...fs, default: { ...fs, watch }, watch };
});

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'watch-failure-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

describe('a watch that fails after it opened', () => {
  it('is a watch failure of the certificate store, not a refused reload', async () => {
    const dir = await tempDir();
    const pem = await generateSelfSignedCertificate({ names: ['*.example.test'] });
    await Promise.all([writeFile(join(dir, 'default.crt'), pem.cert), writeFile(join(dir, 'default.key'), pem.key)]);
    const events: CertEvent[] = [];
    const store = await CertificateStore.open({ certFile: join(dir, 'default.crt'), keyFile: join(dir, 'default.key'), zone: 'example.test', watch: true, onEvent: (e) => events.push(e) });
    cleanups.push(() => store.close());
    await until('the watch failure reported', () => events.some((e) => e.type === 'watch-failed'));
    expect(events.find((e) => e.type === 'watch-failed')).toEqual({ type: 'watch-failed', dir, reason: 'inotify queue overflow' });
    expect(events.filter((e) => e.type === 'reload-failed' || e.type === 'file-refused')).toEqual([]);
    expect(store.secureContextFor('a.example.test')).toBeDefined();
  });

  it('is a watch failure of the GeoIP locator, not a refused reload', async () => {
    const dir = await tempDir();
    const file = join(dir, 'city.mmdb');
    await writeFile(file, writeMmdb({ databaseType: 'Test-City', ipVersion: 6, networks: [{ network: '198.51.100.0/24', data: { country: { iso_code: 'XX' }, location: { latitude: mmdbDouble(10), longitude: mmdbDouble(10) } } }] }));
    const events: GeoEvent[] = [];
    const locator = await MaxmindLocator.open(file, { watch: true, onEvent: (e) => events.push(e) });
    cleanups.push(() => locator.close());
    await until('the watch failure reported', () => events.some((e) => e.type === 'watch-failed'));
    expect(events.find((e) => e.type === 'watch-failed')).toEqual({ type: 'watch-failed', dir, reason: 'inotify queue overflow' });
    expect(events.filter((e) => e.type === 'reload-failed')).toEqual([]);
    expect(locator.locate('198.51.100.7').lat).toBe(10);
  });
});
